"""The ``embedded`` backend: a whole Sovereign in this process, on loopback (DESIGN.md §4).

Infrastructure starts once per session: the virtual clock, the Gitea emulator over real bare
repos and ``git http-backend``, the Kubernetes API emulator hosting the Sovereign's host clusters
(and, later, one cluster per vcluster), and the reference control plane serving the Catalyst API
on its own event loop in a background thread. ``reset`` gives the next scenario a clean Sovereign
in milliseconds by wiping state rather than restarting anything.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from datetime import timedelta
from pathlib import Path

from catalyst_sim import __version__
from catalyst_sim.backends.base import BackendOptions
from catalyst_sim.backends.embedded.forge.server import EmbeddedForge
from catalyst_sim.backends.embedded.kube.kubelet import PodStages
from catalyst_sim.backends.embedded.kube.server import KubeEmulator
from catalyst_sim.backends.embedded.kube.vcluster import VClusterOperator
from catalyst_sim.backends.endpoints import Component, Endpoints
from catalyst_sim.clients.gitea import GiteaClient
from catalyst_sim.clock import VirtualClock
from catalyst_sim.control.api.app import create_app
from catalyst_sim.control.config_store import SYSTEM_ORG, SYSTEM_REPOS
from catalyst_sim.control.plane import ControlPlane, ControlPlaneConfig
from catalyst_sim.model.resources import Sovereign
from catalyst_sim.serving import ServerThread

ENV_TYPES_WITH_HOST_CLUSTERS = ("dev", "stg", "prod")
MAX_STEPS = 100  # settle points per advance at most (see EmbeddedBackend.advance)
# The vcluster control plane pod takes about a minute to come up (R-ENV-03: ready in ~60 s).
VCLUSTER_STAGES = PodStages(schedule=1.0, pull=30.0, start=15.0, ready=10.0)


def git_version() -> str:
    result = subprocess.run(["git", "--version"], capture_output=True, text=True, check=False)
    return result.stdout.strip().removeprefix("git version ")


def host_cluster_names(sovereign: Sovereign) -> list[str]:
    """Every host cluster the topology implies, one per region x building block x env_type (D-03)."""
    return [name for env_type in ENV_TYPES_WITH_HOST_CLUSTERS for name in sovereign.spec.host_clusters(env_type)]


class EmbeddedBackend:
    name = "embedded"

    def __init__(self, options: BackendOptions) -> None:
        self.options = options
        self.clock = VirtualClock()
        self.forge: EmbeddedForge | None = None
        self.kube: KubeEmulator | None = None
        self.plane: ControlPlane | None = None
        self.api: ServerThread | None = None
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
        try:
            self.forge = EmbeddedForge(self.run_dir / "forge", clock=self.clock).start()
            self.kube = KubeEmulator(self.clock).start()
            config = ControlPlaneConfig(gitea_url=self.forge.url, gitea_token=self.forge.token,
                                        workdir=self.run_dir / "control-plane")
            self._hosts = host_cluster_names(config.sovereign())
            config.host_kubeconfigs = self._add_host_clusters()
            self.plane = ControlPlane(config, self.clock)
            self.plane.start()
            self._baseline = self._system_refs()
            self.api = ServerThread(create_app(self.plane), "catalyst-api").start()
            self.plane.api_url = self.api.url
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - started
        self.endpoints = Endpoints(
            catalyst_api=self.api.url, gitea_url=self.forge.url, gitea_token=self.forge.token,
            gitea_admin=self.forge.admin,
            kubeconfigs={host: self.run_dir / "kubeconfigs" / "read-only" / f"{host}.yaml" for host in self._hosts},
            components=[
                Component("catalyst-control-plane", real=False, reference=True,
                          implementation="catalyst-sim reference control plane", version=__version__,
                          url=self.api.url),
                Component("gitea", real=False, implementation="catalyst-sim Gitea API emulator",
                          version=self.forge.version, url=self.forge.url),
                Component("git", real=True, implementation="git http-backend (smart HTTP), bare repos",
                          version=git_version()),
                self.kube.component(),
                Component("clock", real=False, implementation="catalyst-sim virtual clock"),
            ],
        )
        return self.endpoints

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
        self.api.run_coroutine(self.plane.reset())

    def settle(self, timeout: float = 30.0) -> None:
        """Wait (in real time) until the control plane has no work left that does not wait for
        the clock. Two consecutive idle readings are required: work can hand over to work."""
        assert self.plane is not None and self.forge is not None
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
        jumps are at least ``delta / MAX_STEPS`` long, so timers within one jump fire in order but
        their work runs at the jump's end. Time-based decisions still see the exact target instant.
        """
        target = self.clock.now() + delta
        resolution = delta / MAX_STEPS
        self.settle()
        while True:
            due = self.clock.next_timer_at()
            if due is None or due > target:
                break
            self.clock.set(min(target, max(due, self.clock.now() + resolution)))
            self.settle()
        self.clock.set(target)
        self.settle()

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
                     self.kube.stop if self.kube else None, self.forge.stop if self.forge else None):
            if stop is not None:
                stop()
        self.api = None
        self.endpoints = None

    def remove_run_dir(self) -> None:
        shutil.rmtree(self.options.run_dir, ignore_errors=True)
