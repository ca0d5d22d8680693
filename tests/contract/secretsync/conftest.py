"""Real OpenBao servers (two regions, dev mode), the SVID issuer's JWKS over HTTP, the Kubernetes emulator.

Started once for the package; every test gets its own Organization (policy + jwt role in OpenBao), its
own vcluster with ESO's CRDs and a namespace ``blog``, and its own secrets controller on the test's loop.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from catalyst_sim.backends.embedded.kube import KubeEmulator
from catalyst_sim.backends.embedded.secrets_backend import RegionalOpenBao
from catalyst_sim.clock import VirtualClock
from catalyst_sim.control.gitops.crds import bootstrap_crds
from catalyst_sim.control.gitops.kube import Kube
from catalyst_sim.control.identity.svid import JWKS_PATH, SvidIssuer, jwks_app
from catalyst_sim.control.secrets import SecretsController, SecretsService
from catalyst_sim.serving import ServerThread

SOVEREIGN = "omantel"
_names = itertools.count(1)


@pytest.fixture(scope="package")
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture(scope="package")
def kube(clock: VirtualClock) -> Iterator[KubeEmulator]:
    with KubeEmulator(clock, bookmark_interval=60) as emulator:
        yield emulator


@pytest.fixture(scope="package")
def issuer(clock: VirtualClock) -> SvidIssuer:
    return SvidIssuer(SOVEREIGN, clock)


@pytest.fixture(scope="package")
def jwks(issuer: SvidIssuer) -> Iterator[ServerThread]:
    with ServerThread(jwks_app(issuer), "svid-jwks") as server:
        yield server


@pytest.fixture(scope="package")
def openbao(tmp_path_factory: pytest.TempPathFactory, jwks: ServerThread) -> Iterator[RegionalOpenBao]:
    regional = RegionalOpenBao(tmp_path_factory.mktemp("openbao"), ["fsn", "hel"], trust_domain=SOVEREIGN)
    try:
        yield regional.start(jwks.url + JWKS_PATH)
    finally:
        regional.stop()


@pytest.fixture
def service(clock: VirtualClock, openbao: RegionalOpenBao, issuer: SvidIssuer) -> SecretsService:
    return SecretsService(sovereign=SOVEREIGN, clock=clock, openbao=openbao, issuer=issuer)


@dataclass
class Vcluster:
    org: str
    context: str
    kubeconfig: Path
    api: client.ApiClient

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def external_secret(self, name: str, data: list[dict[str, Any]] | None = None, *, namespace: str = "blog",
                        refresh: str = "1m", spec: dict[str, Any] | None = None) -> dict[str, Any]:
        body = {"apiVersion": "external-secrets.io/v1beta1", "kind": "ExternalSecret",
                "metadata": {"name": name, "namespace": namespace,
                             "labels": {"openova.io/application": "blog",
                                        "openova.io/environment": f"{self.org}-dev"}},
                "spec": spec if spec is not None else {
                    "refreshInterval": refresh, "secretStoreRef": {"kind": "ClusterSecretStore", "name": "openbao"},
                    "target": {"name": name}, "data": data or []}}
        return dict(self.custom.create_namespaced_custom_object("external-secrets.io", "v1beta1", namespace,
                                                                 "externalsecrets", body))

    def status(self, name: str, namespace: str = "blog") -> dict[str, Any]:
        obj = self.custom.get_namespaced_custom_object("external-secrets.io", "v1beta1", namespace,
                                                       "externalsecrets", name)
        return dict(obj.get("status") or {})

    def ready(self, name: str) -> dict[str, Any]:
        found = [c for c in self.status(name).get("conditions") or [] if c["type"] == "Ready"]
        return found[0] if found else {}

    def secret(self, name: str, namespace: str = "blog") -> dict[str, str] | None:
        import base64

        try:
            found = self.core.read_namespaced_secret(name, namespace)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return {k: base64.b64decode(v).decode() for k, v in (found.data or {}).items()}

    def deployment(self, name: str, secret: str) -> None:
        labels = {"app": name}
        self.apps.create_namespaced_deployment("blog", {
            "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "harbor.local/library/web:1", "env": [
                    {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": secret, "key": "password"}}}]}]}}}})


def new_vcluster(kube: KubeEmulator, tmp_path: Path, org: str, region: str) -> Vcluster:
    context = f"hz-{region}-rtz-dev-{org}"
    cluster = kube.add_cluster(context)
    cluster.set_stages(pull=1.0, start=1.0, ready=1.0)
    kubeconfig = kube.kubeconfig(context, tmp_path / f"{context}.yaml")
    setup = Kube(kubeconfig)
    try:
        for crd in bootstrap_crds():
            setup.apply(crd, field_manager="test")
        setup.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "blog"}})
    finally:
        setup.close()
    return Vcluster(org, context, kubeconfig, config.new_client_from_config(config_file=str(kubeconfig)))


@pytest.fixture
def org(openbao: RegionalOpenBao, service: SecretsService) -> str:
    name = f"org{next(_names)}"
    service.organization_created(name)
    return name


@pytest.fixture
def vcluster(kube: KubeEmulator, tmp_path: Path, org: str) -> Iterator[Vcluster]:
    created = new_vcluster(kube, tmp_path, org, "fsn")
    yield created
    created.api.close()
    kube.remove_cluster(created.context)


@pytest.fixture
async def controller(service: SecretsService, vcluster: Vcluster) -> AsyncIterator[SecretsController]:
    running = service.controller(organization=vcluster.org, environment=f"{vcluster.org}-dev",
                                 context=vcluster.context, kubeconfig=vcluster.kubeconfig)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()
