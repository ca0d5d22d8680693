"""The secrets controller against real OpenBao servers and the Kubernetes emulator (R-SEC-01/02, R-ID-01)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path

import hvac.exceptions
import pytest

from catalyst_sim.backends.embedded.kube import KubeEmulator
from catalyst_sim.backends.embedded.secrets_backend import RegionalOpenBao
from catalyst_sim.clock import VirtualClock
from catalyst_sim.control.identity.svid import SvidIssuer
from catalyst_sim.control.secrets import SecretsController, SecretsService
from catalyst_sim.control.secrets.provider import LoginRefused, OpenBaoProvider

from .conftest import SOVEREIGN, Vcluster, new_vcluster


async def until(clock: VirtualClock, controllers: Iterable[SecretsController], check: Callable[[], bool], *,
                step: float = 1.0, limit: float = 600.0) -> float:
    """Advance virtual time in steps, letting the controllers settle, until ``check()``; the seconds taken."""
    group = list(controllers)
    elapsed = 0.0
    while True:
        for controller in group:
            await controller.wait_idle()
        await asyncio.sleep(0.003)  # a watch event on its way
        for controller in group:
            await controller.wait_idle()
        if check():
            return elapsed
        if elapsed >= limit:
            raise AssertionError(f"not reached within {limit}s of virtual time")
        clock.advance(step)
        elapsed += step


def data(key: str, prop: str = "password", secret_key: str = "password") -> list[dict[str, object]]:
    return [{"secretKey": secret_key, "remoteRef": {"key": key, "property": prop}}]


async def test_an_external_secret_becomes_a_secret_with_eso_status(
        clock: VirtualClock, openbao: RegionalOpenBao, vcluster: Vcluster, controller: SecretsController) -> None:
    path = f"org/{vcluster.org}/env/dev/blog/credentials"
    openbao.write(path, {"password": "first"})
    es = vcluster.external_secret("blog-credentials", data(path))
    await until(clock, [controller], lambda: vcluster.ready("blog-credentials").get("status") == "True")
    assert vcluster.secret("blog-credentials") == {"password": "first"}
    ready = vcluster.ready("blog-credentials")
    assert (ready["reason"], ready["message"]) == ("SecretSynced", "Secret was synced")
    status = vcluster.status("blog-credentials")
    assert status["binding"] == {"name": "blog-credentials"} and status["refreshTime"]
    owner = vcluster.core.read_namespaced_secret("blog-credentials", "blog").metadata.owner_references[0]
    assert (owner.kind, owner.uid) == ("ExternalSecret", es["metadata"]["uid"])


async def test_rotation_follows_within_the_refresh_interval_rolls_pods_and_revokes_after_grace(
        clock: VirtualClock, openbao: RegionalOpenBao, service: SecretsService, vcluster: Vcluster,
        controller: SecretsController) -> None:
    path = f"org/{vcluster.org}/env/dev/blog/credentials"
    openbao.write(path, {"password": "old"})
    vcluster.deployment("web", "blog-credentials")
    vcluster.external_secret("blog-credentials", data(path), refresh="1m")
    await until(clock, [controller], lambda: vcluster.secret("blog-credentials") == {"password": "old"})
    template_before = vcluster.apps.read_namespaced_deployment("web", "blog").spec.template.metadata.annotations

    rotation = service.rotate(path)
    assert vcluster.secret("blog-credentials") == {"password": "old"}  # not before the next refresh
    took = await until(clock, [controller], lambda: vcluster.secret("blog-credentials") != {"password": "old"})
    assert took <= 60
    new_value = vcluster.secret("blog-credentials")
    assert new_value == openbao.read(path, "fsn") and new_value != {"password": "old"}
    template_after = vcluster.apps.read_namespaced_deployment("web", "blog").spec.template.metadata.annotations
    assert template_after != template_before  # Reloader changed the pod template: a rolling update
    await until(clock, [controller], lambda: len(vcluster.apps.list_namespaced_replica_set("blog").items) == 2)

    admin = openbao.admin("hel")
    sub = path.removeprefix("org/")
    old = admin.secrets.kv.v2.read_secret_version(path=sub, mount_point="org", version=rotation.previous,
                                                raise_on_deleted_version=False)
    assert old["data"]["data"] == {"password": "old"}  # inside the 24 h grace window the old value works
    clock.advance(timedelta(hours=24, seconds=1))
    await controller.wait_idle()
    for region in ("fsn", "hel"):  # after it, OpenBao has destroyed the old version everywhere
        versions = openbao.admin(region).secrets.kv.v2.read_secret_metadata(path=sub, mount_point="org")["data"]
        assert versions["versions"][str(rotation.previous)]["destroyed"] is True
        assert versions["versions"][str(rotation.version)]["destroyed"] is False


async def test_a_path_of_another_org_is_refused_by_openbao(
        clock: VirtualClock, openbao: RegionalOpenBao, service: SecretsService, vcluster: Vcluster,
        controller: SecretsController) -> None:
    other = f"{vcluster.org}x"
    service.organization_created(other)
    openbao.write(f"org/{other}/env/dev/blog/credentials", {"password": "theirs"})
    vcluster.external_secret("stolen", data(f"org/{other}/env/dev/blog/credentials"))
    vcluster.external_secret("outside", data("secret/anything"))
    await until(clock, [controller], lambda: all(vcluster.ready(n).get("status") == "False"
                                                 for n in ("stolen", "outside")))
    for name in ("stolen", "outside"):
        ready = vcluster.ready(name)
        assert ready["reason"] == "SecretSyncedError" and "permission denied" in ready["message"], ready
        assert vcluster.secret(name) is None


async def test_openbao_refuses_expired_foreign_and_other_org_svids(
        clock: VirtualClock, openbao: RegionalOpenBao, issuer: SvidIssuer, service: SecretsService,
        org: str) -> None:
    provider = OpenBaoProvider(openbao.url("fsn"), org)
    svid = issuer.issue(org, "external-secrets")
    assert provider.login(svid.token(clock.now()))  # fresh: accepted
    clock.advance(timedelta(minutes=5, seconds=1))
    with pytest.raises(LoginRefused, match="token is expired"):
        provider.login(svid.token(clock.now()))
    foreign = SvidIssuer(SOVEREIGN, clock).issue(org, "external-secrets")
    with pytest.raises(LoginRefused, match="signature"):
        provider.login(foreign.token(clock.now()))
    service.organization_created(f"{org}y")
    neighbour = issuer.issue(f"{org}y", "external-secrets")
    with pytest.raises(LoginRefused, match="sub"):
        provider.login(neighbour.token(clock.now()))


async def test_a_missing_secret_is_not_ready_with_the_reason_retried_with_backoff_then_recovers(
        clock: VirtualClock, openbao: RegionalOpenBao, service: SecretsService, vcluster: Vcluster,
        controller: SecretsController) -> None:
    path = f"org/{vcluster.org}/env/dev/blog/smtp"
    vcluster.external_secret("smtp", data(path), refresh="1h")
    await until(clock, [controller], lambda: vcluster.ready("smtp").get("status") == "False")
    first = vcluster.ready("smtp")["message"]
    assert "secret not found in OpenBao" in first and "attempt 1, retrying in 5s" in first
    await until(clock, [controller], lambda: "attempt 3," in vcluster.ready("smtp")["message"])
    assert "retrying in 20s" in vcluster.ready("smtp")["message"]
    assert [p.name for p in service.problems(f"{vcluster.org}-dev", "blog")] == ["smtp"]
    card = service.card(f"{vcluster.org}-dev", "blog", {"state": "Running", "glyph": "●", "text": "2/2 pods"})
    assert card["state"] == "Degraded" and "secret not found" in card["text"]
    openbao.write(path, {"password": "now-here"})
    took = await until(clock, [controller], lambda: vcluster.ready("smtp").get("status") == "True")
    assert took <= 20
    assert service.problems(f"{vcluster.org}-dev", "blog") == []


async def test_malformed_and_oversized_external_secrets_are_reported_without_stopping_the_others(
        clock: VirtualClock, openbao: RegionalOpenBao, vcluster: Vcluster, controller: SecretsController) -> None:
    good = f"org/{vcluster.org}/env/dev/blog/credentials"
    big = f"org/{vcluster.org}/env/dev/blog/big"
    openbao.write(good, {"password": "fine"})
    openbao.write(big, {"password": "x" * (1024 * 1024 + 1)})
    vcluster.external_secret("broken", spec={"secretStoreRef": {"kind": "ClusterSecretStore", "name": "openbao"},
                                             "data": [{"secretKey": "pass word", "remoteRef": {"key": good}}]})
    vcluster.external_secret("nokey", spec={"secretStoreRef": {"name": "openbao", "kind": "ClusterSecretStore"},
                                            "data": [{"secretKey": "password", "remoteRef": {}}]})
    vcluster.external_secret("huge", data(big))
    vcluster.external_secret("fine", data(good))
    await until(clock, [controller], lambda: all(vcluster.ready(n).get("status") for n in
                                                 ("broken", "nokey", "huge", "fine")))
    assert "spec.data[0].secretKey" in vcluster.ready("broken")["message"]
    assert "spec.data[0].remoteRef.key: required" in vcluster.ready("nokey")["message"]
    assert "Too long: must have at most 1048576 bytes" in vcluster.ready("huge")["message"]
    assert vcluster.secret("huge") is None
    assert vcluster.ready("fine")["status"] == "True"


async def test_unreachable_and_sealed_openbao_are_visible_and_retried(
        clock: VirtualClock, kube: KubeEmulator, tmp_path: Path, openbao: RegionalOpenBao,
        service: SecretsService, org: str) -> None:
    hel = new_vcluster(kube, tmp_path, org, "hel")
    controller = service.controller(organization=org, environment=f"{org}-dev", context=hel.context,
                                    kubeconfig=hel.kubeconfig)
    await controller.start()
    try:
        path = f"org/{org}/env/dev/blog/credentials"
        openbao.write(path, {"password": "p"})
        openbao.admin("hel").sys.seal()
        hel.external_secret("creds", data(path))
        await until(clock, [controller], lambda: "sealed" in vcluster_message(hel, "creds"))
        openbao.stop_region("hel")
        await until(clock, [controller], lambda: "unreachable" in vcluster_message(hel, "creds"))
        assert "retrying in" in vcluster_message(hel, "creds")
        openbao.restart_region("hel")  # dev mode: back empty; the values must be written again
        with pytest.raises(hvac.exceptions.InvalidPath):
            openbao.admin("hel").secrets.kv.v2.read_secret_version(path=path.removeprefix("org/"),
                                                                   mount_point="org", raise_on_deleted_version=True)
        openbao.write(path, {"password": "p"}, regions=["hel"])
        await until(clock, [controller], lambda: hel.ready("creds").get("status") == "True", limit=900)
    finally:
        await controller.stop()
        hel.api.close()
        kube.remove_cluster(hel.context)


def vcluster_message(vc: Vcluster, name: str) -> str:
    return str(vc.ready(name).get("message", ""))
