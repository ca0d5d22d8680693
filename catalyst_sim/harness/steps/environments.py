"""J4 — Create an Environment (R-ENV, R-ENVC, R-NAME-07/09), observed through the Catalyst API
and read-only access to the host clusters."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException
from pytest_bdd import parsers, then, when

from catalyst_sim.control.kubeclient import api_client
from catalyst_sim.harness.context import ScenarioContext

DURATION = re.compile(r"(?P<amount>\d+) (?P<unit>second|minute|hour|day)s?")


def parse_duration(text: str) -> timedelta:
    match = DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a duration: {text!r} (say e.g. '60 seconds', '72 hours')")
    return timedelta(**{f"{match['unit']}s": int(match["amount"])})


@when(parsers.re(r"(?:the )?(?P<duration>\d+ (?:second|minute|hour|day)s?) pass(?:es)?$"))
def time_passes(catalyst: ScenarioContext, duration: str) -> None:
    advance = getattr(catalyst.backend, "advance", None)
    if not catalyst.backend.clock.virtual or advance is None:
        pytest.skip(f"needs virtual time to let {duration} pass; backend {catalyst.backend.name} runs on real time")
    advance(parse_duration(duration))


def create_environment(context: ScenarioContext, org: str, env_type: str, name: str | None = None) -> None:
    body = {"envType": env_type, **({"name": name} if name else {})}
    context.call("POST", f"/api/v1/organizations/{org}/environments", json=body)


@when(parsers.parse('the org-admin creates the Environment "{environment}"'))
def admin_creates_environment(catalyst: ScenarioContext, environment: str) -> None:
    org, _, env_type = environment.rpartition("-")
    create_environment(catalyst, org, env_type)


@when(parsers.parse('the org-admin creates an Environment of type "{env_type}" named "{name}"'))
def admin_creates_named_environment(catalyst: ScenarioContext, env_type: str, name: str) -> None:
    create_environment(catalyst, "acme", env_type, name)


def environment_status(context: ScenarioContext, environment: str) -> dict:
    response = context.api.get(f"/api/v1/environments/{environment}")
    assert response.status_code == 200, response.text
    return response.json()["status"]


@then(parsers.parse('the Environment "{environment}" is not ready yet'))
def environment_not_ready(catalyst: ScenarioContext, environment: str) -> None:
    status = environment_status(catalyst, environment)
    assert status["ready"] is False, status


@then(parsers.parse('the Environment "{environment}" is ready with the vcluster "{vcluster}" on host cluster "{host}"'))
def environment_ready(catalyst: ScenarioContext, environment: str, vcluster: str, host: str) -> None:
    status = environment_status(catalyst, environment)
    assert status["ready"] is True, status
    realized = {(v["hostCluster"], v["vcluster"]) for v in status["vclusters"]}
    assert realized == {(host, vcluster)}, status


def host_api(context: ScenarioContext, host: str) -> k8s.ApiClient:
    if host not in context.endpoints.kubeconfigs:
        raise AssertionError(f"no read-only kubeconfig for host cluster {host}; known: "
                             f"{sorted(context.endpoints.kubeconfigs)}")
    return api_client(context.endpoints.kubeconfigs[host])


@then(parsers.parse('the host cluster "{host}" runs the vcluster "{vcluster}" in namespace "{namespace}"'))
def host_runs_vcluster(catalyst: ScenarioContext, host: str, vcluster: str, namespace: str) -> None:
    with host_api(catalyst, host) as api:
        statefulset = k8s.AppsV1Api(api).read_namespaced_stateful_set(vcluster, namespace)
        assert (statefulset.status.ready_replicas or 0) >= 1, statefulset.status
        assert statefulset.metadata.labels.get("app") == "vcluster"
        secret = k8s.CoreV1Api(api).read_namespaced_secret(f"vc-{vcluster}", namespace)
        assert "config" in secret.data, "the vcluster publishes no kubeconfig"


@then(parsers.parse('no vcluster "{vcluster}" runs on host cluster "{host}"'))
def no_vcluster(catalyst: ScenarioContext, vcluster: str, host: str) -> None:
    with host_api(catalyst, host) as api:
        try:
            k8s.AppsV1Api(api).read_namespaced_stateful_set(vcluster, vcluster)
        except ApiException as exc:
            assert exc.status == 404, exc
        else:
            raise AssertionError(f"a vcluster {vcluster} runs on {host}")
