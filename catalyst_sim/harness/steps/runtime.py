"""What runs: Application cards through the Catalyst API, and workloads through read-only access
to the vclusters (R-CARD-02, R-FLUX-03, J5/J6/J10)."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from pytest_bdd import given, parsers, then

from catalyst_sim.control.kubeclient import api_client
from catalyst_sim.harness.context import ScenarioContext
from catalyst_sim.harness.steps.environments import host_api, parse_duration

POLL_STEP = timedelta(seconds=5)


def eventually(context: ScenarioContext, budget: timedelta, check: Callable[[], str | None], *,
               step: timedelta = POLL_STEP) -> None:
    """Let up to ``budget`` of (virtual) time pass, checking every ``step``, until ``check`` returns
    None; else fail with its last complaint. Real-time backends skip the scenario with the reason."""
    backend = context.backend
    advance = getattr(backend, "advance", None)
    if not backend.clock.virtual or advance is None:
        pytest.skip(f"needs virtual time to wait {budget}; backend {backend.name} runs on real time")
    deadline = backend.clock.now() + budget
    while True:
        problem = check()
        if problem is None:
            return
        if backend.clock.now() >= deadline:
            raise AssertionError(f"after {budget} of virtual time: {problem}")
        advance(min(step, deadline - backend.clock.now()))


def cards(context: ScenarioContext, environment: str) -> dict[str, dict]:
    response = context.api.get(f"/api/v1/environments/{environment}/applications")
    assert response.status_code == 200, response.text
    return {item["metadata"]["name"]: item["status"]["card"] for item in response.json()["items"]}


@given(parsers.parse('the Environment "{environment}" is ready'))
def environment_is_ready(catalyst: ScenarioContext, environment: str) -> None:
    org, _, env_type = environment.rpartition("-")
    response = catalyst.call("POST", f"/api/v1/organizations/{org}/environments", json={"envType": env_type})
    assert response.status_code == 201, response.text

    def ready() -> str | None:
        status = catalyst.api.get(f"/api/v1/environments/{environment}").json()["status"]
        return None if status["ready"] else f"{environment} is not ready: {status}"

    eventually(catalyst, timedelta(minutes=2), ready)


@given(parsers.parse('within {duration} every Application of "{environment}" is Running'))
@then(parsers.parse('within {duration} every Application of "{environment}" is Running'))
def every_application_running(catalyst: ScenarioContext, duration: str, environment: str) -> None:
    def all_running() -> str | None:
        current = cards(catalyst, environment)
        if not current:
            return f"{environment} has no Applications"
        waiting = {name: f"{card['state']}: {card['text']}" for name, card in current.items()
                   if card["state"] != "Running"}
        return f"not Running in {environment}: {waiting}" if waiting else None

    eventually(catalyst, parse_duration(duration), all_running)


@then(parsers.parse('within {duration} the card of "{app}" in "{environment}" is {state} mentioning "{text}"'))
def card_state_mentioning(catalyst: ScenarioContext, duration: str, app: str, environment: str, state: str,
                          text: str) -> None:
    def matches() -> str | None:
        card = cards(catalyst, environment).get(app)
        if card and card["state"] == state and text in card["text"]:
            return None
        return f"the card of {app} in {environment} is {card}"

    eventually(catalyst, parse_duration(duration), matches)


@then(parsers.parse('the card of "{app}" in "{environment}" is {state}'))
def card_state(catalyst: ScenarioContext, app: str, environment: str, state: str) -> None:
    card = cards(catalyst, environment)[app]
    assert card["state"] == state, card


@contextmanager
def vcluster_api(context: ScenarioContext, environment: str) -> Iterator[k8s.ApiClient]:
    """Read-only debugging access to the Environment's (first) vcluster, the way a person gets it:
    the kubeconfig the vcluster publishes on its host cluster."""
    status = context.api.get(f"/api/v1/environments/{environment}").json()["status"]
    assert status["vclusters"], f"{environment} has no vcluster: {status}"
    realized = status["vclusters"][0]
    with host_api(context, realized["hostCluster"]) as host:
        secret = k8s.CoreV1Api(host).read_namespaced_secret(f"vc-{realized['vcluster']}", realized["vcluster"])
    with api_client(yaml.safe_load(base64.b64decode(secret.data["config"]))) as api:
        yield api


def _time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@then(parsers.parse('in "{environment}" every dependent Application was applied only after its dependencies '
                    'were Ready'))
def dependencies_first(catalyst: ScenarioContext, environment: str) -> None:
    with vcluster_api(catalyst, environment) as api:
        custom = k8s.CustomObjectsApi(api)
        kustomizations = {k["metadata"]["name"]: k for k in custom.list_namespaced_custom_object(
            "kustomize.toolkit.fluxcd.io", "v1", "flux-system", "kustomizations")["items"]}
        checked = 0
        for name, kustomization in kustomizations.items():
            for dependency in kustomization["spec"].get("dependsOn", []):
                ready = next(c for c in kustomizations[dependency["name"]]["status"]["conditions"]
                             if c["type"] == "Ready")
                assert ready["status"] == "True", (dependency, ready)
                objects = k8s.AppsV1Api(api).list_namespaced_deployment(name).items + \
                    k8s.AppsV1Api(api).list_namespaced_stateful_set(name).items
                assert objects, f"{name} applied no workload"
                first = min(o.metadata.creation_timestamp for o in objects)
                assert first >= _time(ready["lastTransitionTime"]), (
                    f"{name}'s workloads were created at {first}, before {dependency['name']} was Ready at "
                    f"{ready['lastTransitionTime']}")
                checked += 1
        assert checked, "no Application in this Environment depends on another"


def deployment_replicas(context: ScenarioContext, environment: str, name: str) -> int:
    with vcluster_api(context, environment) as api:
        return int(k8s.AppsV1Api(api).read_namespaced_deployment(name, name).spec.replicas)


@then(parsers.parse('within {duration} the Deployment "{name}" in the "{environment}" vcluster has {replicas:d} '
                    'replicas'))
def deployment_has_replicas_within(catalyst: ScenarioContext, duration: str, name: str, environment: str,
                                   replicas: int) -> None:
    def check() -> str | None:
        found = deployment_replicas(catalyst, environment, name)
        return None if found == replicas else f"{name} in {environment} has {found} replicas"

    eventually(catalyst, parse_duration(duration), check)


@then(parsers.parse('the Deployment "{name}" in the "{environment}" vcluster has {replicas:d} replicas'))
def deployment_has_replicas(catalyst: ScenarioContext, name: str, environment: str, replicas: int) -> None:
    assert deployment_replicas(catalyst, environment, name) == replicas


def statefulset(context: ScenarioContext, environment: str, name: str) -> Any:
    with vcluster_api(context, environment) as api:
        return k8s.AppsV1Api(api).read_namespaced_stateful_set(name, name)


@then(parsers.parse('the StatefulSet "{name}" in the "{environment}" vcluster has {replicas:d} replicas'))
def statefulset_has_replicas(catalyst: ScenarioContext, name: str, environment: str, replicas: int) -> None:
    assert int(statefulset(catalyst, environment, name).spec.replicas) == replicas


@then(parsers.parse('the StatefulSet "{name}" in the "{environment}" vcluster is labelled "{key}" "{value}"'))
def statefulset_is_labelled(catalyst: ScenarioContext, name: str, environment: str, key: str, value: str) -> None:
    labels = statefulset(catalyst, environment, name).metadata.labels or {}
    assert labels.get(key) == value, f"{name} in {environment} has labels {labels}"
