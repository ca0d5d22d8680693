"""Fixtures for the GitOps engine: a real Kubernetes emulator, a real forge, one VirtualClock.

The emulator and forge are started once for the package (they are the expensive part); every test gets
a fresh cluster (its "vcluster"), a fresh Gitea Organization and its own engine on the test's event
loop. Pod stages are a few virtual seconds, so nothing becomes Available unless the test advances
the clock — readiness is always the result of driving time, never of waiting.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from catalyst_sim.backends.embedded.forge import EmbeddedForge
from catalyst_sim.backends.embedded.kube import Cluster, KubeEmulator
from catalyst_sim.clients.gitea import GiteaClient
from catalyst_sim.clock import VirtualClock
from catalyst_sim.control.catalog import BlueprintRegistry, flatten
from catalyst_sim.control.gitops import GitOpsEngine, advance_until
from catalyst_sim.control.gitops.crds import FLUX_NAMESPACE
from catalyst_sim.control.provisioning.manifests import AppManifestInput, render_app_repo

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "blueprints"
SOVEREIGN = "omantel"
ENV_TYPE = "prod"
BRANCH = "main"
_names = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_names)}"


@pytest.fixture(scope="package")
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture(scope="package")
def kube(clock: VirtualClock) -> Iterator[KubeEmulator]:
    with KubeEmulator(clock, bookmark_interval=60) as emulator:
        yield emulator


@pytest.fixture(scope="package")
def forge(tmp_path_factory: pytest.TempPathFactory, clock: VirtualClock) -> Iterator[EmbeddedForge]:
    with EmbeddedForge(tmp_path_factory.mktemp("forge"), clock, name=unique("gitops-forge-")) as running:
        yield running


@pytest.fixture(scope="package")
def gitea(forge: EmbeddedForge) -> Iterator[GiteaClient]:
    with GiteaClient(forge.url, forge.token) as api:
        yield api


@pytest.fixture(scope="package")
def catalog() -> BlueprintRegistry:
    return BlueprintRegistry.load(FIXTURES)


@pytest.fixture
def cluster(kube: KubeEmulator, org: Org) -> Iterator[Cluster]:
    """The Organization's vcluster, named by its qualified reference (R-NAME-09)."""
    created = kube.add_cluster(f"hz-fsn-rtz-{ENV_TYPE}-{org.name}")
    created.set_stages(pull=3.0, start=1.0, ready=1.0)
    yield created
    assert created.stats.reaction_errors == 0, created.stats.last_error
    kube.remove_cluster(created.name)


@pytest.fixture
def kubeconfig(kube: KubeEmulator, cluster: Cluster, tmp_path: Path) -> Path:
    return kube.kubeconfig(cluster.name, tmp_path / "kubeconfig")


@pytest.fixture
def api(kubeconfig: Path) -> Iterator[client.ApiClient]:
    """A second, independent client: what a person with kubectl sees."""
    api_client = config.new_client_from_config(config_file=str(kubeconfig))
    yield api_client
    api_client.close()


@dataclass
class Org:
    """One Gitea Organization and the App repos published into it (what provisioning would do)."""

    name: str
    gitea: GiteaClient
    catalog: BlueprintRegistry
    apps: dict[str, dict[str, str]] = field(default_factory=dict)

    def install(self, blueprint: str, app: str, config: dict[str, Any] | None = None, *,
                version: str | None = None) -> list[str]:
        """Flatten ``blueprint`` as ``app`` and publish one repo per new App; their names, deps first."""
        plan = flatten(self.catalog, blueprint, version or "*", app_name=app, config=config or {},
                       organization=self.name)
        for node in plan.new_apps:
            definition = self.catalog.get(node.blueprint, node.version)
            self.publish(AppManifestInput(
                sovereign=SOVEREIGN, organization=self.name, app=node.name, blueprint=node.blueprint,
                version=node.version, config=node.config, config_schema=definition.spec.configSchema or {},
                depends_on=tuple(node.depends_on), dependencies=dict(node.dependencies),
                overlay_values=definition.overlay_values(),
            ))
        return [node.name for node in plan.new_apps]

    def publish(self, inp: AppManifestInput) -> None:
        files = render_app_repo(inp)
        self.gitea.create_org_repo(self.name, inp.app, private=True)
        self.gitea.commit_files(self.name, inp.app, BRANCH, files, message=f"Install {inp.app}")
        self.apps[inp.app] = files

    def commit(self, app: str, files: dict[str, str | None], message: str = "change") -> str:
        """Commit ``files`` (None deletes) on the branch; the new head sha."""
        self.gitea.commit_files(self.name, app, BRANCH, files, message=message)
        return str(self.gitea.get_branch(self.name, app, BRANCH)["commit"]["id"])


@pytest.fixture
def org(gitea: GiteaClient, catalog: BlueprintRegistry) -> Org:
    name = unique("org")
    gitea.create_org(name)
    return Org(name, gitea, catalog)


Events = list[dict[str, Any]]


@pytest.fixture
def events() -> Events:
    return []


@pytest.fixture
async def engine(cluster: Cluster, kubeconfig: Path, forge: EmbeddedForge, catalog: BlueprintRegistry,
                 clock: VirtualClock, org: Org, tmp_path: Path, events: Events) -> AsyncIterator[GitOpsEngine]:
    running = GitOpsEngine(
        vcluster=cluster.name, organization=org.name, environment=f"{org.name}-prod", env_type=ENV_TYPE,
        kubeconfig=kubeconfig, gitea_url=forge.url, gitea_token=forge.token, catalog=catalog, clock=clock,
        workdir=tmp_path / "gitops", on_event=events.append, sovereign=SOVEREIGN,
    )
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


# ---------------------------------------------------------------------- reading the cluster


class View:
    """Read-only helpers over the cluster through the ordinary client."""

    def __init__(self, api: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)

    def ks(self, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object("kustomize.toolkit.fluxcd.io", "v1", FLUX_NAMESPACE,
                                                        "kustomizations", name)

    def gitrepo(self, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object("source.toolkit.fluxcd.io", "v1", FLUX_NAMESPACE,
                                                        "gitrepositories", name)

    def condition(self, name: str, kind: str = "Ready") -> dict[str, Any]:
        found = [c for c in (self.ks(name).get("status") or {}).get("conditions") or [] if c["type"] == kind]
        return found[0] if found else {}

    def ready(self, name: str) -> bool:
        return self.condition(name).get("status") == "True"

    def exists(self, kind: str, name: str, namespace: str) -> bool:
        reader = {"Deployment": self.apps.read_namespaced_deployment,
                  "StatefulSet": self.apps.read_namespaced_stateful_set,
                  "Service": self.core.read_namespaced_service}[kind]
        try:
            reader(name, namespace)
        except client.ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True


@pytest.fixture
def view(api: client.ApiClient) -> View:
    return View(api)


Ready = Callable[..., Any]


@pytest.fixture
def until(clock: VirtualClock, engine: GitOpsEngine) -> Ready:
    """``await until(predicate, limit=...)``: advance the virtual clock until it holds."""

    async def run(predicate: Callable[[], bool], *, limit: float = 300.0, step: float = 1.0) -> float:
        return await advance_until(clock, [engine], predicate, step=step, limit=limit)

    return run


