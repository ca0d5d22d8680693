"""One region's OpenBao goes down (R-MR-05) on a multi-region secrets world of its own.

The session Sovereign has the single-region ``sme`` topology, so this scenario builds what it needs from
another topology file (``fixtures/topologies/{name}.yaml``): one real OpenBao per region (raft mode, so data
survives a restart), the SPIRE-equivalent with its JWKS over HTTP, and per Environment one vcluster per
region on a Kubernetes emulator of its own, holding what the App repo's GitOps would apply (the repo's
ExternalSecret rendered by provisioning, a Deployment consuming its Secret) with the secrets controller of
the control plane in it. People act on OpenBao (hvac) and read the vclusters with the Kubernetes client.
What it leaves out compared with the session Sovereign: the Catalyst API, Gitea and the GitOps engine.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from pytest_bdd import given, parsers, then, when

from catalyst_sim.backends.embedded.kube import KubeEmulator
from catalyst_sim.backends.embedded.secrets_backend import RegionalOpenBao, regions_of
from catalyst_sim.clock import VirtualClock
from catalyst_sim.control.gitops.crds import bootstrap_crds
from catalyst_sim.control.gitops.kube import Kube
from catalyst_sim.control.gitops.render import substitute
from catalyst_sim.control.identity.svid import JWKS_PATH, SvidIssuer, jwks_app
from catalyst_sim.control.provisioning.manifests import AppManifestInput, render_app_repo
from catalyst_sim.control.secrets import SecretsController, SecretsService, credentials_path
from catalyst_sim.harness.steps.environments import parse_duration
from catalyst_sim.model.loader import load_one
from catalyst_sim.model.resources import Sovereign
from catalyst_sim.serving import ServerThread

TOPOLOGIES = Path(__file__).resolve().parents[3] / "fixtures" / "topologies"
STEP = timedelta(seconds=5)


@dataclass
class Placement:
    org: str
    env_type: str
    app: str
    region: str
    context: str
    api: k8s.ApiClient
    controller: SecretsController

    @property
    def es_name(self) -> str:
        return f"{self.app}-credentials"


@dataclass
class SecretsWorld:
    sovereign: Sovereign
    clock: VirtualClock
    kube: KubeEmulator
    issuer: SvidIssuer
    jwks: ServerThread
    openbao: RegionalOpenBao
    service: SecretsService
    workdir: Path
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    placements: list[Placement] = field(default_factory=list)
    remembered: dict[str, Any] = field(default_factory=dict)

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def settle(self) -> None:
        for _ in range(2):  # a watch event may be on its way after the first quiet reading
            for placement in self.placements:
                if not placement.controller.wait_settled(10.0):
                    raise TimeoutError(f"secrets controller {placement.context} did not settle")
            threading.Event().wait(0.003)

    def eventually(self, budget: timedelta, check: Callable[[], str | None]) -> None:
        deadline = self.clock.now() + budget
        while True:
            self.settle()
            problem = check()
            if problem is None:
                return
            if self.clock.now() >= deadline:
                raise AssertionError(f"after {budget} of virtual time: {problem}")
            self.clock.advance(min(STEP, deadline - self.clock.now()))

    def find(self, app: str, environment: str, region: str | None = None) -> list[Placement]:
        org, _, env_type = environment.rpartition("-")
        found = [p for p in self.placements if (p.org, p.env_type, p.app) == (org, env_type, app)
                 and (region is None or p.region == region)]
        assert found, f"{app} does not run in {environment}{f' in region {region}' if region else ''}"
        return found

    def close(self) -> None:
        for placement in self.placements:
            self.run(placement.controller.stop())
            placement.api.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        self.openbao.stop()
        self.jwks.stop()
        self.kube.stop()


@pytest.fixture
def secrets_world_factory(tmp_path: Path) -> Iterator[Callable[[str, str], SecretsWorld]]:
    worlds: list[SecretsWorld] = []

    def build(topology: str, mode: str) -> SecretsWorld:
        path = TOPOLOGIES / f"{topology}.yaml"
        sovereign = load_one(path.read_text(), source=str(path), expect=Sovereign)
        clock = VirtualClock()
        kube = KubeEmulator(clock).start()
        issuer = SvidIssuer(sovereign.metadata.name, clock)
        jwks = ServerThread(jwks_app(issuer), "svid-jwks").start()
        openbao = RegionalOpenBao(tmp_path / "openbao", regions_of(sovereign), trust_domain=sovereign.metadata.name,
                                  mode=mode)  # type: ignore[arg-type]
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="catalyst-sim:secrets-world", daemon=True)
        thread.start()
        world = SecretsWorld(sovereign, clock, kube, issuer, jwks, openbao,
                             SecretsService(sovereign=sovereign.metadata.name, clock=clock, openbao=openbao,
                                            issuer=issuer), tmp_path, loop, thread)
        worlds.append(world)
        openbao.start(jwks.url + JWKS_PATH)
        return world

    yield build
    for world in worlds:
        world.close()


@given(parsers.parse('a Sovereign from the "{topology}" topology with OpenBao in {mode} mode'),
       target_fixture="secrets_world")
def sovereign_with_openbao(secrets_world_factory: Callable[[str, str], SecretsWorld], topology: str,
                           mode: str) -> SecretsWorld:
    return secrets_world_factory(topology, mode)


def _deploy(world: SecretsWorld, org: str, env_type: str, app: str, region: str) -> Placement:
    context = f"{world.sovereign.spec.provider_code}-{region}-rtz-{env_type}-{org}"
    world.kube.add_cluster(context).set_stages(pull=2.0, start=1.0, ready=1.0)
    kubeconfig = world.kube.kubeconfig(context, world.workdir / "kubeconfigs" / f"{context}.yaml")
    setup = Kube(kubeconfig)
    try:
        for crd in bootstrap_crds():
            setup.apply(crd, field_manager="kustomize-controller")
        setup.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": app}})
        files = render_app_repo(AppManifestInput(sovereign=world.sovereign.metadata.name, organization=org, app=app,
                                                 blueprint="bp-wordpress", version="1.3.0", config={},
                                                 config_schema={}))
        es = substitute(yaml.safe_load(files["secrets/external-secrets.yaml"]),
                        {"ENV_TYPE": env_type, "ENVIRONMENT": f"{org}-{env_type}", "ORGANIZATION": org})
        es["metadata"]["namespace"] = app
        es["spec"]["refreshInterval"] = "1m"
        setup.apply(es, field_manager="kustomize-controller")
        labels = {"app.kubernetes.io/instance": app}
        setup.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": app, "namespace": app},
                     "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": {
                         "metadata": {"labels": labels}, "spec": {"containers": [{
                             "name": "web", "image": "harbor.local/library/wordpress:6.5", "env": [{
                                 "name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {
                                     "name": f"{app}-credentials", "key": "password"}}}]}]}}}},
                    field_manager="kustomize-controller")
    finally:
        setup.close()
    controller = world.service.controller(organization=org, environment=f"{org}-{env_type}", context=context,
                                          kubeconfig=kubeconfig)
    world.run(controller.start())
    placement = Placement(org, env_type, app, region, context,
                          k8s_config.new_client_from_config(config_file=str(kubeconfig)), controller)
    world.placements.append(placement)
    return placement


@given(parsers.re(r'"(?P<org>[a-z0-9-]+)" runs "(?P<app>[a-z0-9-]+)" in "(?P<environment>[a-z0-9-]+)"'
                  r'(?P<everywhere> in every region)?$'))
def runs_app(secrets_world: SecretsWorld, org: str, app: str, environment: str, everywhere: str | None) -> None:
    env_type = environment.rpartition("-")[2]
    world = secrets_world
    if org not in world.openbao.organizations:
        world.service.organization_created(org)
    world.service.ensure_credentials(org, env_type, app, ["password"])
    regions = world.openbao.regions if everywhere else world.openbao.regions[:1]
    for region in regions:
        _deploy(world, org, env_type, app, region)

    def synced() -> str | None:
        pending = [p.context for p in world.find(app, environment) if _ready(p)[0] != "True"]
        return f"ExternalSecret {app}-credentials not Ready in {pending}" if pending else None

    world.eventually(timedelta(minutes=2), synced)
    world.remembered[f"{environment}/{app}"] = _secret(world.find(app, environment)[0])


def _es(p: Placement) -> dict[str, Any]:
    return dict(k8s.CustomObjectsApi(p.api).get_namespaced_custom_object(
        "external-secrets.io", "v1beta1", p.app, "externalsecrets", p.es_name))


def _ready(p: Placement) -> tuple[str, str]:
    found = [c for c in (_es(p).get("status") or {}).get("conditions") or [] if c["type"] == "Ready"]
    return (found[0]["status"], found[0]["message"]) if found else ("Unknown", "not reconciled yet")


def _secret(p: Placement, name: str | None = None) -> dict[str, str] | None:
    try:
        found = k8s.CoreV1Api(p.api).read_namespaced_secret(name or p.es_name, p.app)
    except k8s.ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return {k: base64.b64decode(v).decode() for k, v in (found.data or {}).items()}


@when(parsers.parse('the OpenBao of region "{region}" goes down'))
def region_down(secrets_world: SecretsWorld, region: str) -> None:
    secrets_world.openbao.stop_region(region)


@when(parsers.parse('the OpenBao of region "{region}" restarts'))
def region_restarts(secrets_world: SecretsWorld, region: str) -> None:
    secrets_world.openbao.restart_region(region)


@then(parsers.parse('within {duration} the ExternalSecret of "{app}" in "{environment}" in region "{region}" '
                    'is {state} mentioning "{text}"'))
def region_external_secret(secrets_world: SecretsWorld, duration: str, app: str, environment: str, region: str,
                           state: str, text: str) -> None:
    want = {"Ready": "True", "not Ready": "False"}[state]

    def matches() -> str | None:
        p = secrets_world.find(app, environment, region)[0]
        status, message = _ready(p)
        return None if status == want and text in message else f"{p.context}: Ready={status}: {message}"

    secrets_world.eventually(parse_duration(duration), matches)


@then(parsers.parse('the credentials of "{app}" in "{environment}" are still in the OpenBao of region "{region}"'))
def credentials_survived(secrets_world: SecretsWorld, app: str, environment: str, region: str) -> None:
    org, _, env_type = environment.rpartition("-")
    found = secrets_world.openbao.read(credentials_path(org, env_type, app), region)
    assert found is not None and found == secrets_world.openbao.read(
        credentials_path(org, env_type, app), secrets_world.openbao.regions[0])
