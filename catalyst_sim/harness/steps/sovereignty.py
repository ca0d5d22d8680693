"""Self-sovereignty: the cutover through the Catalyst API, the mothership's WAN through Toxiproxy's API, and
the handed-over cluster read with read-only kube access (ADR-0002, R-CUT, R-DOD).

Ahmed, a sovereign-admin, starts the cutover; time moves on the Sovereign's virtual clock until the status
says it stopped running. The mothership (github.com, ghcr.io, harbor.openova.io) is reachable only through
Toxiproxy proxies named ``mothership-<host>``; steps disable nothing themselves (the egress-block Job does),
they observe the proxies and add toxics as a flaky WAN would.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from kubernetes import client as k8s
from pytest_bdd import given, parsers, then, when

from catalyst_sim.harness.context import ScenarioContext
from catalyst_sim.harness.personas import Persona
from catalyst_sim.harness.steps.environments import host_api
from catalyst_sim.harness.steps.identity import call_as, personas

JOBS = ("gitea-mirror", "harbor-projects", "harbor-prewarm", "registry-pivot", "flux-gitrepository-patch",
        "helmrepo-patches", "catalyst-api-env-patch", "egress-block-test")
START = "/api/v1/sovereign/cutover/start"
STATUS = "/api/v1/sovereign/cutover/status"
MOTHERSHIP_PREFIX = "mothership-"
CUTOVER_BUDGET = timedelta(hours=1)  # virtual; a full cutover with its 10-minute hold takes about 20
STEP = timedelta(minutes=5)
HOLD_SECONDS = 600  # R-DOD-01
PROOF_FAILED = "the egress block did not hold: "
PERSON = r"(?P<person>[A-Z][a-z]+)"


# -- the Sovereign and its mothership -----------------------------------------------------------------------


def toxiproxy_url(context: ScenarioContext) -> str:
    url = context.endpoints.toxiproxy_url
    if not url:
        pytest.skip(f"backend {context.backend.name} has no mothership behind Toxiproxy: nothing to cut over")
    return url


@contextmanager
def toxiproxy(context: ScenarioContext) -> Iterator[httpx.Client]:
    """A client of the Toxiproxy HTTP API, closed after use."""
    with httpx.Client(base_url=toxiproxy_url(context), timeout=10) as client:
        yield client


def mothership_proxies(context: ScenarioContext) -> dict[str, dict[str, Any]]:
    with toxiproxy(context) as api:
        response = api.get("/proxies")
    assert response.status_code == 200, response.text
    proxies = {name: proxy for name, proxy in response.json().items() if name.startswith(MOTHERSHIP_PREFIX)}
    assert proxies, f"Toxiproxy has no {MOTHERSHIP_PREFIX}* proxies: {sorted(response.json())}"
    return proxies


def status(context: ScenarioContext) -> dict[str, Any]:
    response = call_as(context, "Ahmed", "GET", STATUS)
    assert response.status_code == 200, response.text
    return response.json()


def steps_of(current: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in current["steps"]}


def advance_until(context: ScenarioContext, what: str, done: Any, budget: timedelta = CUTOVER_BUDGET,
                  step: timedelta = STEP) -> dict[str, Any]:
    """Let virtual time pass in steps until ``done(status)``; the cutover's own timers fire on the way."""
    advance = getattr(context.backend, "advance", None)
    if advance is None or not context.backend.clock.virtual:
        pytest.skip(f"the cutover's 10-minute hold needs virtual time; backend {context.backend.name} runs on "
                    "real time")
    deadline = context.backend.clock.now() + budget
    while True:
        current = status(context)
        if done(current):
            return current
        if context.backend.clock.now() >= deadline:
            raise AssertionError(f"after {budget} of virtual time the cutover has not {what}: {current}")
        advance(min(step, deadline - context.backend.clock.now()))


def handed_over_cluster(context: ScenarioContext) -> str:
    response = call_as(context, "Ahmed", "GET", "/api/v1/sovereign/tethers")
    assert response.status_code == 200, response.text
    clusters = sorted(response.json()["clusters"])
    assert clusters, "no handed-over cluster"
    return clusters[0]


@contextmanager
def custom_objects(context: ScenarioContext) -> Iterator[k8s.CustomObjectsApi]:
    with host_api(context, handed_over_cluster(context)) as api:
        yield k8s.CustomObjectsApi(api)


@given(parsers.re(rf"{PERSON} is the sovereign-admin of the Sovereign$"))
def sovereign_admin(catalyst: ScenarioContext, person: str) -> None:
    personas(catalyst).register(Persona(person.lower(), None, ("sovereign-admin",)))


@given("the Sovereign was just handed over and is still tethered to the mothership")
def handed_over(catalyst: ScenarioContext) -> None:
    proxies = mothership_proxies(catalyst)
    assert all(p["enabled"] and not p["toxics"] for p in proxies.values()), proxies
    current = status(catalyst)
    assert current["phase"] == "Dormant" and current["cutoverComplete"] is False, current
    response = call_as(catalyst, "Ahmed", "GET", "/api/v1/sovereign/tethers")
    for cluster, tethers in response.json()["clusters"].items():
        attached = [t["number"] for t in tethers if t["tethered"]]
        assert attached == list(range(1, 9)), f"{cluster}: only tethers {attached} are attached"  # R-CUT-01
        with host_api(catalyst, cluster) as api:  # dormant: zero Jobs (R-CUT-03)
            jobs = k8s.BatchV1Api(api).list_namespaced_job("flux-system").items
        assert jobs == [], [j.metadata.name for j in jobs]


# -- starting ------------------------------------------------------------------------------------------------


@when(parsers.re(rf"{PERSON} starts the self-sovereignty cutover$"))
def starts_cutover(catalyst: ScenarioContext, person: str) -> None:
    toxiproxy_url(catalyst)
    call_as(catalyst, person, "POST", START, json={})


@when(parsers.re(rf'{PERSON} starts the cutover as a drill that skips the Job "(?P<job>[^"]+)"$'))
def starts_drill(catalyst: ScenarioContext, person: str, job: str) -> None:
    toxiproxy_url(catalyst)
    call_as(catalyst, person, "POST", START, json={"skip": [job]})


@then("the cutover is accepted and running")
def accepted(catalyst: ScenarioContext) -> None:
    response = catalyst.last_response
    assert response is not None and response.status_code == 202, response.text if response else "no request"
    body = response.json()
    assert body["phase"] == "Running" and body["operator"] == "ahmed", body
    assert [s["name"] for s in body["steps"]] == list(JOBS), body["steps"]


@then("exactly one cutover is running")
def one_cutover(catalyst: ScenarioContext) -> None:
    current = status(catalyst)
    assert current["phase"] == "Running" and current["running"] is True, current
    with host_api(catalyst, handed_over_cluster(catalyst)) as api:
        jobs = [j.metadata.name for j in k8s.BatchV1Api(api).list_namespaced_job("flux-system").items]
    assert len(jobs) == len(set(jobs)) <= 1, jobs  # at most the first Job, once


# -- time -----------------------------------------------------------------------------------------------------


@when("the cutover reaches the egress-block test")
def reaches_egress(catalyst: ScenarioContext) -> None:
    current = advance_until(catalyst, "reached its egress-block test", lambda s: (
        s["currentStep"] == "egress-block-test" and s["holdRemainingSeconds"] > 0) or not s["running"])
    assert current["currentStep"] == "egress-block-test", current


@when("the cutover has run to its end")
def run_to_end(catalyst: ScenarioContext) -> None:
    catalyst.state["cutover"] = advance_until(catalyst, "stopped running", lambda s: not s["running"])


@when(parsers.parse('the cutover has finished the Job "{job}"'))
def finished_job(catalyst: ScenarioContext, job: str) -> None:
    current = advance_until(catalyst, f"finished {job}", lambda s: steps_of(s)[job]["state"] not in (
        "Pending", "Running") or not s["running"], step=timedelta(seconds=30))
    assert steps_of(current)[job]["state"] == "Succeeded", current
    catalyst.state["before crash"] = current


@when("the control plane crashes and restarts")
def control_plane_restarts(catalyst: ScenarioContext) -> None:
    restart = getattr(catalyst.backend, "restart_control_plane_cutover", None)
    if restart is None:
        pytest.skip(f"backend {catalyst.backend.name} cannot crash its control plane")
    restart()


# -- outcomes -------------------------------------------------------------------------------------------------


def final(context: ScenarioContext) -> dict[str, Any]:
    current = context.state.get("cutover")
    assert current is not None, "say 'When the cutover has run to its end' first"
    return current


@then("the cutover is complete with all eight Jobs succeeded in order")
def complete(catalyst: ScenarioContext) -> None:
    current = final(catalyst)
    states = {name: (step["state"], step.get("message", "")) for name, step in steps_of(current).items()}
    assert current["phase"] == "Succeeded" and current["cutoverComplete"] is True, states
    assert [s["state"] for s in current["steps"]] == ["Succeeded"] * len(JOBS), states
    finished = [datetime.fromisoformat(s["finishedAt"]) for s in current["steps"]]
    started = [datetime.fromisoformat(s["startedAt"]) for s in current["steps"]]
    assert all(started[i] >= finished[i - 1] for i in range(1, len(JOBS))), "the Jobs overlapped"  # R-CUT-05


@then("the egress block held for 10 minutes with GitOps reconciles, image pulls and catalyst-api calls green")
def held(catalyst: ScenarioContext) -> None:
    step = steps_of(final(catalyst))["egress-block-test"]
    held_for = datetime.fromisoformat(step["finishedAt"]) - datetime.fromisoformat(step["startedAt"])
    assert held_for >= timedelta(seconds=HOLD_SECONDS), held_for
    assert step["message"].startswith(f"held for {HOLD_SECONDS}s with "), step
    assert catalyst.state.get("api calls during the hold", 0) > 0, "no Catalyst API call was made during the hold"


@then("every mothership proxy is disabled")
def proxies_disabled(catalyst: ScenarioContext) -> None:
    proxies = mothership_proxies(catalyst)
    enabled = sorted(name for name, proxy in proxies.items() if proxy["enabled"])
    assert not enabled, f"still reachable during the hold: {enabled}"
    for proxy in proxies.values():  # disabled means refused, as a black-holing firewall would
        host, _, port = proxy["listen"].rpartition(":")
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://{host}:{port}/", timeout=2)


@then(parsers.re(rf"the Catalyst API still answers {PERSON}$"))
def api_answers(catalyst: ScenarioContext, person: str) -> None:
    for path in ("/api/v1/organizations", "/api/v1/blueprints", STATUS):
        response = call_as(catalyst, person, "GET", path)
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:300]}"
        catalyst.state["api calls during the hold"] = catalyst.state.get("api calls during the hold", 0) + 1


@then("Flux reconciles the platform from the Sovereign's own Gitea")
def flux_local(catalyst: ScenarioContext) -> None:
    with custom_objects(catalyst) as api:
        git = api.get_namespaced_custom_object("source.toolkit.fluxcd.io", "v1", "flux-system",
                                               "gitrepositories", "flux-system")
        helm = api.list_namespaced_custom_object("source.toolkit.fluxcd.io", "v1", "flux-system",
                                                 "helmrepositories")["items"]
    assert git["spec"]["url"].startswith("http://gitea-http.gitea"), git["spec"]
    ready = next(c for c in git["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True", ready
    remote = [h["metadata"]["name"] for h in helm if "ghcr.io" in h["spec"]["url"]]
    assert helm and not remote, f"HelmRepositories still on ghcr.io: {remote}"


@then("no tether the cutover pivots is still attached")
def untethered(catalyst: ScenarioContext) -> None:
    response = call_as(catalyst, "Ahmed", "GET", "/api/v1/sovereign/tethers")
    for cluster, tethers in response.json()["clusters"].items():
        attached = {t["number"]: t["evidence"] for t in tethers if t["tethered"] and t["pivotedBy"]}
        assert not attached, f"{cluster}: {attached}"


@then(parsers.re(r"every mothership proxy is enabled again(?P<clean> without toxics)?$"))
def proxies_restored(catalyst: ScenarioContext, clean: str | None) -> None:
    proxies = mothership_proxies(catalyst)
    broken = {name: (p["enabled"], [t["name"] for t in p["toxics"]]) for name, p in proxies.items()
              if not p["enabled"] or (clean and p["toxics"])}
    assert not broken, broken


@then(parsers.parse('the Job "{job}" is shown as skipped'))
def shown_skipped(catalyst: ScenarioContext, job: str) -> None:
    step = steps_of(final(catalyst))[job]
    assert step["state"] == "Skipped", step


@then(parsers.parse('the cutover failed at the Job "{job}" for "{reason}"'))
def failed_at(catalyst: ScenarioContext, job: str, reason: str) -> None:
    current = final(catalyst)
    steps = steps_of(current)
    assert current["phase"] == "Failed" and steps[job]["state"] == "Failed", {n: s["state"] for n, s in steps.items()}
    message = steps[job]["message"]
    assert reason in message and current["error"] == f"{job}: {message}", (message, current["error"])
    later = [name for name in JOBS[JOBS.index(job) + 1:] if steps[name]["state"] != "Pending"]
    assert not later, f"Jobs after the failed one ran: {later}"  # strictly in order (R-CUT-05)
    if job == "egress-block-test":  # the proof names the tether that broke, and only that one
        named = {part.split(":")[0].strip() for part in message.removeprefix(PROOF_FAILED).split(";")}
        assert message.startswith(PROOF_FAILED) and named == {reason.split(":")[0]}, message


@then("the cutover is not complete")
def not_complete(catalyst: ScenarioContext) -> None:
    current = status(catalyst)
    assert current["cutoverComplete"] is False and current["running"] is False, current


@then(parsers.parse('the Job "{job}" retried before it succeeded'))
def retried(catalyst: ScenarioContext, job: str) -> None:
    step = steps_of(final(catalyst))[job]
    assert step["state"] == "Succeeded" and step.get("retries", 0) > 0, step


@then("each cutover Job ran exactly once")
def jobs_once(catalyst: ScenarioContext) -> None:
    with host_api(catalyst, handed_over_cluster(catalyst)) as api:
        jobs = sorted(j.metadata.name for j in k8s.BatchV1Api(api).list_namespaced_job("flux-system").items)
    assert jobs == [f"self-sovereign-cutover-{i:02d}-{name}" for i, name in enumerate(JOBS, start=1)], jobs


@then("the Jobs finished before the crash were not run again")
def not_rerun(catalyst: ScenarioContext) -> None:
    before = catalyst.state.get("before crash")
    assert before is not None, "say 'When the cutover has finished the Job ...' first"
    after = steps_of(final(catalyst))
    done = [s for s in before["steps"] if s["state"] == "Succeeded"]
    assert done, before
    for step in done:
        assert after[step["name"]]["finishedAt"] == step["finishedAt"], (step, after[step["name"]])


# -- the flaky mothership (Toxiproxy's API) ---------------------------------------------------------------------


def proxy_of(context: ScenarioContext, host: str) -> str:
    name = MOTHERSHIP_PREFIX + host.replace(".", "-")
    assert name in mothership_proxies(context), f"{host} is not a mothership host behind Toxiproxy"
    return name


@given(parsers.parse('the mothership\'s registry "{host}" serves garbage instead of the blobs asked for'))
def garbage_registry(catalyst: ScenarioContext, host: str) -> None:
    corrupt = getattr(catalyst.backend, "serve_garbage_from_mothership", None)
    if corrupt is None:
        pytest.skip(f"backend {catalyst.backend.name} cannot make the mothership serve garbage")
    corrupt(host)


@then(parsers.parse('the tether {number:d} is still attached on every handed-over cluster'))
def still_tethered(catalyst: ScenarioContext, number: int) -> None:
    """Nothing half-pivoted: the tether the later Jobs would have moved still points at the mothership."""
    response = call_as(catalyst, "Ahmed", "GET", "/api/v1/sovereign/tethers")
    clusters = response.json()["clusters"]
    assert clusters
    for cluster, tethers in clusters.items():
        found = next(t for t in tethers if t["number"] == number)
        assert found["tethered"], f"{cluster}: tether {number} was pivoted: {found}"


@given(parsers.parse("the mothership answers with {latency:d} ms of latency"))
def slow_mothership(catalyst: ScenarioContext, latency: int) -> None:
    with toxiproxy(catalyst) as api:
        for name in mothership_proxies(catalyst):
            response = api.post(f"/proxies/{name}/toxics", json={
                "name": "wan-latency", "type": "latency", "stream": "downstream",
                "attributes": {"latency": latency, "jitter": latency // 2}})
            assert response.status_code == 200, response.text


@given(parsers.parse('the mothership\'s "{host}" resets every connection'))
def resetting_host(catalyst: ScenarioContext, host: str) -> None:
    with toxiproxy(catalyst) as api:  # reset_peer with timeout 0: an RST as soon as a connection opens
        response = api.post(f"/proxies/{proxy_of(catalyst, host)}/toxics", json={
            "name": "wan-reset", "type": "reset_peer", "stream": "downstream", "toxicity": 1.0,
            "attributes": {"timeout": 0}})
        assert response.status_code == 200, response.text


@when(parsers.parse('"{host}" stops resetting connections'))
def stops_resetting(catalyst: ScenarioContext, host: str) -> None:
    with toxiproxy(catalyst) as api:
        response = api.delete(f"/proxies/{proxy_of(catalyst, host)}/toxics/wan-reset")
        assert response.status_code == 204, response.text


@then(parsers.parse('the cutover is still at the Job "{job}"'))
def still_at(catalyst: ScenarioContext, job: str) -> None:
    current = status(catalyst)
    assert current["running"] and current["currentStep"] == job, current
    assert steps_of(current)[job]["state"] == "Running", current


# -- bad input to Toxiproxy ------------------------------------------------------------------------------------


@when(parsers.parse('a toxic of type "{kind}" is added to the Toxiproxy proxy "{proxy}"'))
def add_toxic(catalyst: ScenarioContext, kind: str, proxy: str) -> None:
    with toxiproxy(catalyst) as api:
        catalyst.state["toxiproxy response"] = api.post(f"/proxies/{proxy}/toxics",
                                                        json={"name": "bad", "type": kind, "attributes": {}})


@when(parsers.parse('the Toxiproxy proxy "{proxy}" is disabled'))
def disable_proxy(catalyst: ScenarioContext, proxy: str) -> None:
    with toxiproxy(catalyst) as api:
        catalyst.state["toxiproxy response"] = api.post(f"/proxies/{proxy}", json={"enabled": False})


@then(parsers.parse('Toxiproxy answers {code:d} with "{text}"'))
def toxiproxy_answers(catalyst: ScenarioContext, code: int, text: str) -> None:
    response: httpx.Response = catalyst.state["toxiproxy response"]
    assert response.status_code == code, response.text
    assert response.json() == {"error": text, "status": code}, response.text

