"""Secrets journeys on the session Sovereign (J11, R-SEC-01/02/05, R-ID-01): OpenBao → ExternalSecret in the
App repo → External Secrets in the vcluster → Secret → Pod, with Reloader rolling the pods.

People act through public surfaces only: the Catalyst API (force-rotate), ``git push`` to an App repo, the
OpenBao API of the Sovereign (the endpoint's URL and token, as a security officer with OpenBao access has
them), and read-only access to the vclusters.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import hvac
import hvac.exceptions
import pytest
import requests
import yaml
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException
from pytest_bdd import given, parsers, then, when

from catalyst_sim.harness.context import ScenarioContext
from catalyst_sim.harness.steps.environments import parse_duration
from catalyst_sim.harness.steps.runtime import eventually, vcluster_api

ESO_GROUP, ESO_VERSION = "external-secrets.io", "v1beta1"
POLLS = 12  # checks within a long budget ("within 1 hour": every 5 minutes of virtual time)


def within(context: ScenarioContext, budget: timedelta, check: Callable[[], str | None]) -> None:
    """Like :func:`runtime.eventually`, but checking about :data:`POLLS` times over the budget: a refresh
    interval is an hour, and checking every 5 seconds of it would cost wall time for nothing."""
    eventually(context, budget, check, step=max(timedelta(seconds=5), budget / POLLS))


@contextmanager
def openbao(context: ScenarioContext) -> Iterator[hvac.Client]:
    """The Sovereign's OpenBao, as someone holding its admin token reaches it."""
    url, token = context.endpoints.openbao_url, context.endpoints.openbao_token
    if not url or not token:
        pytest.skip(f"backend {context.backend.name} exposes no OpenBao endpoint")
    session = requests.Session()
    session.trust_env = False
    client = hvac.Client(url=url, token=token, session=session, timeout=10)
    try:
        yield client
    finally:
        session.close()


def credentials_location(environment: str, app: str) -> tuple[str, str]:
    """(mount, path) of an App's credentials in an Environment: ``org/{org}/env/{env_type}/{app}/credentials``."""
    org, _, env_type = environment.rpartition("-")
    return "org", f"{org}/env/{env_type}/{app}/credentials"


def read_credentials(context: ScenarioContext, environment: str, app: str, version: int | None = None
                     ) -> dict[str, str] | None:
    """The App's credentials in OpenBao (a version, default the current one); None if gone or destroyed."""
    mount, path = credentials_location(environment, app)
    with openbao(context) as client:
        try:
            found = client.secrets.kv.v2.read_secret_version(path=path, mount_point=mount, version=version,
                                                             raise_on_deleted_version=True)
        except hvac.exceptions.InvalidPath:
            return None
    data = (found.get("data") or {}).get("data")
    return {str(k).replace(".", "-"): str(v) for k, v in data.items()} if data is not None else None


def vcluster_secret(context: ScenarioContext, environment: str, namespace: str, name: str) -> dict[str, str] | None:
    with vcluster_api(context, environment) as api:
        try:
            found = k8s.CoreV1Api(api).read_namespaced_secret(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
    return {k: base64.b64decode(v).decode() for k, v in (found.data or {}).items()}


def external_secret_ready(context: ScenarioContext, environment: str, namespace: str, name: str
                          ) -> dict[str, Any] | None:
    """The Ready condition of an ExternalSecret in the Environment's vcluster (None: not there or no status)."""
    with vcluster_api(context, environment) as api:
        try:
            found = k8s.CustomObjectsApi(api).get_namespaced_custom_object(ESO_GROUP, ESO_VERSION, namespace,
                                                                           "externalsecrets", name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
    return next((c for c in (found.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"), None)


def _time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


# -- the Secret follows OpenBao ------------------------------------------------------------------------

@given(parsers.parse('within {duration} the Secret "{secret}" of "{app}" in "{environment}" holds its credentials '
                     'from OpenBao'))
@then(parsers.parse('within {duration} the Secret "{secret}" of "{app}" in "{environment}" holds its credentials '
                    'from OpenBao'))
def secret_holds_credentials(catalyst: ScenarioContext, duration: str, secret: str, app: str,
                             environment: str) -> None:
    def synced() -> str | None:
        stored = read_credentials(catalyst, environment, app)
        if not stored:
            return f"OpenBao holds no credentials of {app} in {environment}"
        found = vcluster_secret(catalyst, environment, app, secret)
        return None if found == stored else f"the Secret {app}/{secret} holds {sorted(found or {})}, not the " \
                                             "credentials in OpenBao"

    eventually(catalyst, parse_duration(duration), synced)
    catalyst.state.setdefault("credentials", {})[(environment, app)] = read_credentials(catalyst, environment, app)


# -- J11: force-rotate, the Secret follows, pods roll, the old value lives through its grace window -------

@when(parsers.parse('{person}, the security officer, force-rotates the credentials of "{app}" in "{environment}"'))
def force_rotate(catalyst: ScenarioContext, person: str, app: str, environment: str) -> None:
    catalyst.state.setdefault("credentials", {})[(environment, app)] = read_credentials(catalyst, environment, app)
    response = catalyst.call("POST", f"/api/v1/environments/{environment}/applications/{app}/credentials/rotate")
    if response.status_code == 200:
        catalyst.state["rotation"] = response.json()["rotation"]


@then(parsers.parse('the new credentials are not in the response'))
def values_not_returned(catalyst: ScenarioContext) -> None:
    assert catalyst.last_response is not None
    environment, app = next(iter(catalyst.state["credentials"]))
    current = read_credentials(catalyst, environment, app) or {}
    assert current, "OpenBao holds no credentials"
    assert not any(value in catalyst.last_response.text for value in current.values()), "a value was returned"


@then(parsers.parse('within {duration} the Secret "{secret}" of "{app}" in "{environment}" holds the new '
                    'credentials'))
def secret_follows_rotation(catalyst: ScenarioContext, duration: str, secret: str, app: str, environment: str) -> None:
    before = catalyst.state["credentials"][(environment, app)]
    current = read_credentials(catalyst, environment, app)
    assert current and current != before, f"OpenBao holds no new credentials of {app} in {environment}"

    def follows() -> str | None:
        found = vcluster_secret(catalyst, environment, app, secret)
        return None if found == current else f"the Secret {app}/{secret} still holds the previous credentials"

    within(catalyst, parse_duration(duration), follows)


@then(parsers.parse('within {duration} every pod of "{app}" in "{environment}" was started after the rotation'))
def pods_rolled(catalyst: ScenarioContext, duration: str, app: str, environment: str) -> None:
    rotated = _time(catalyst.state["rotation"]["rotatedAt"])

    def rolled() -> str | None:
        with vcluster_api(catalyst, environment) as api:
            pods = k8s.CoreV1Api(api).list_namespaced_pod(
                app, label_selector=f"app.kubernetes.io/instance={app}").items
        live = [p for p in pods if p.metadata.deletion_timestamp is None]
        if not live:
            return f"{app} has no pods in {environment}"
        old = [p.metadata.name for p in live if p.metadata.creation_timestamp < rotated]
        unready = [p.metadata.name for p in live if not any(
            c.type == "Ready" and c.status == "True" for c in (p.status.conditions or []))]
        if old or unready:
            return f"pods of {app} from before the rotation: {old}; not Ready: {unready}"
        return None

    eventually(catalyst, parse_duration(duration), rolled)


@then(parsers.parse('the previous credentials of "{app}" in "{environment}" can still be read from OpenBao'))
def previous_still_readable(catalyst: ScenarioContext, app: str, environment: str) -> None:
    previous = read_credentials(catalyst, environment, app, catalyst.state["rotation"]["previousVersion"])
    assert previous == catalyst.state["credentials"][(environment, app)], "the previous version is gone"


@then(parsers.parse('the previous credentials of "{app}" in "{environment}" are destroyed in OpenBao'))
def previous_destroyed(catalyst: ScenarioContext, app: str, environment: str) -> None:
    version = catalyst.state["rotation"]["previousVersion"]
    assert read_credentials(catalyst, environment, app, version) is None, f"version {version} still reads"
    mount, path = credentials_location(environment, app)
    with openbao(catalyst) as client:
        versions = client.secrets.kv.v2.read_secret_metadata(path=path, mount_point=mount)["data"]["versions"]
    assert versions[str(version)]["destroyed"] is True, versions
    assert read_credentials(catalyst, environment, app) is not None, "the current version must stay"


# -- what OpenBao refuses, and what is missing -----------------------------------------------------------

@when(parsers.parse('{person} pushes to "{branch}" of "{repo}" an ExternalSecret "{name}" reading "{path}"'))
def push_external_secret(catalyst: ScenarioContext, person: str, branch: str, repo: str, name: str,
                         path: str) -> None:
    clone = catalyst.clone(repo, branch)
    app = repo.split("/", 1)[1]
    document = {"apiVersion": f"{ESO_GROUP}/{ESO_VERSION}", "kind": "ExternalSecret",
                "metadata": {"name": name, "labels": {"openova.io/application": app}},
                "spec": {"refreshInterval": "1h", "secretStoreRef": {"kind": "ClusterSecretStore", "name": "openbao"},
                         "target": {"name": name},
                         "data": [{"secretKey": "password", "remoteRef": {"key": path, "property": "password"}}]}}
    (clone / "secrets" / f"{name}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    catalyst.git("add", f"secrets/{name}.yaml", cwd=clone)
    catalyst.git("-c", f"user.name={person}", "-c", f"user.email={person.lower()}@example.com", "commit",
                 "--quiet", "-m", f"Read {path} into the Secret {name}", cwd=clone)
    catalyst.git("push", "--quiet", "origin", f"HEAD:{branch}", cwd=clone)


@then(parsers.parse('within {duration} the ExternalSecret "{name}" of "{app}" in "{environment}" is not Ready '
                    'mentioning "{text}"'))
def external_secret_not_ready(catalyst: ScenarioContext, duration: str, name: str, app: str, environment: str,
                              text: str) -> None:
    def refused() -> str | None:
        ready = external_secret_ready(catalyst, environment, app, name)
        if ready and ready["status"] == "False" and text in ready["message"]:
            return None
        return f"the ExternalSecret {app}/{name} in {environment} has Ready={ready}"

    eventually(catalyst, parse_duration(duration), refused)


@then(parsers.parse('no Secret "{secret}" exists in the namespace "{namespace}" of "{environment}"'))
def no_secret(catalyst: ScenarioContext, secret: str, namespace: str, environment: str) -> None:
    assert vcluster_secret(catalyst, environment, namespace, secret) is None, f"the Secret {secret} exists"


@when(parsers.parse('the security officer deletes the credentials of "{app}" in "{environment}" from OpenBao'))
def delete_credentials(catalyst: ScenarioContext, app: str, environment: str) -> None:
    catalyst.state.setdefault("credentials", {})[(environment, app)] = read_credentials(catalyst, environment, app)
    mount, path = credentials_location(environment, app)
    with openbao(catalyst) as client:
        client.secrets.kv.v2.delete_metadata_and_all_versions(path=path, mount_point=mount)


@then(parsers.parse('the Secret "{secret}" of "{app}" in "{environment}" still holds the last credentials synced'))
def secret_kept(catalyst: ScenarioContext, secret: str, app: str, environment: str) -> None:
    last = catalyst.state["credentials"][(environment, app)]
    assert last and vcluster_secret(catalyst, environment, app, secret) == last, "the Secret lost its data"
