"""environment-controller: realize each Environment as vclusters with GitOps in them (R-ENVC-01..04).

For every (region, building block) of the Environment's placement it installs the vcluster ``{org}``
on the matching host cluster ``{prov}-{reg}-{bb}-{env_type}`` (R-NAME-08/09) — namespace ``{org}``
and a StatefulSet ``{org}`` labelled ``app=vcluster``, exactly what the vcluster chart creates —
reads the vcluster's kubeconfig from the Secret ``vc-{org}``, bootstraps the GitOps engine in it
and points it at every Application repo of the Organization on the Environment's branch (R-ENV-02,
R-ENVC-02). Everything goes through the host clusters' Kubernetes API; nothing is shared in memory
with the emulators. One reconcile per Environment at a time; a vcluster that is not up yet is
retried on the clock.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException

from catalyst_sim.clock import Clock
from catalyst_sim.control.kubeclient import api_client
from catalyst_sim.model import naming
from catalyst_sim.model.resources import Environment, Sovereign

log = logging.getLogger(__name__)

VCLUSTER_IMAGE = "harbor.local/loft-sh/vcluster:0.21.0"
RETRY_SECONDS = 5.0


class GitOps(Protocol):
    """What the environment-controller needs of the GitOps engine in one vcluster."""

    async def start(self) -> None: ...

    async def add_application(self, app: str, repo: str, branch: str) -> None: ...

    def request_reconcile(self, app: str | None = None) -> None: ...

    async def stop(self) -> None: ...


GitOpsFactory = Callable[[Environment, str, Path], GitOps]  # (environment, vcluster context, kubeconfig)


@dataclass
class VclusterState:
    host_cluster: str
    context: str
    ready: bool = False
    message: str = "installing"
    engine: GitOps | None = None
    applications: set[str] = field(default_factory=set)


class EnvironmentController:
    def __init__(self, *, sovereign: Sovereign, host_kubeconfigs: dict[str, Path], clock: Clock, workdir: Path,
                 applications: Callable[[str], list[str]], gitops: GitOpsFactory | None = None) -> None:
        self.sovereign = sovereign
        self.host_kubeconfigs = host_kubeconfigs
        self.clock = clock
        self.workdir = workdir
        self.applications = applications  # organization -> App names (repos) that exist
        self.gitops = gitops
        self.environments: dict[str, Environment] = {}
        self.vclusters: dict[str, dict[str, VclusterState]] = {}  # env -> context -> state
        self._clients: dict[str, k8s.ApiClient] = {}
        self._queue: asyncio.Queue[str] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._retries: set[asyncio.Task[None]] = set()
        self._inflight = 0  # queued or being reconciled; counted when queued, from any thread
        self._count_lock = threading.Lock()

    # -- lifecycle (on the control plane's loop) ---------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="environment-controller")

    async def stop(self) -> None:
        await self._halt()
        self._task = None

    async def _halt(self) -> None:
        """Cancel the loop and pending retries, stop every engine, close every client."""
        tasks = [t for t in (self._task, *self._retries) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._retries.clear()
        with self._count_lock:
            self._inflight = 0
        for states in self.vclusters.values():
            for state in states.values():
                if state.engine is not None:
                    await state.engine.stop()
        for api in self._clients.values():
            api.close()
        self._clients.clear()

    async def reset(self) -> None:
        """Forget every Environment (the harness wiped the Sovereign, host clusters were recreated
        with new credentials) and start over with an empty queue."""
        await self._halt()
        self.vclusters.clear()
        self.environments.clear()
        await self.start()

    # -- triggers (thread-safe) ----------------------------------------------------------------------
    def enqueue(self, environment: Environment) -> None:
        self.environments[environment.metadata.name] = environment
        self._put(environment.metadata.name)

    def applications_changed(self, organization: str) -> None:
        """New App repos exist: every Environment of the Org gains them (R-ENVC-02)."""
        for name, environment in list(self.environments.items()):
            if environment.spec.organization == organization:
                self._put(name)

    def repository_pushed(self, organization: str, app: str, branch: str) -> None:
        """A Gitea push: reconcile at once in every vcluster watching that branch (R-PROJ-07)."""
        for name, environment in list(self.environments.items()):
            if environment.spec.organization == organization and environment.branch == branch:
                for state in self.vclusters.get(name, {}).values():
                    if state.engine is not None:
                        state.engine.request_reconcile(app)

    def _put(self, name: str) -> None:
        if self._loop is None or self._queue is None:
            raise RuntimeError("the environment-controller is not running")
        with self._count_lock:
            self._inflight += 1
        self._loop.call_soon_threadsafe(self._queue.put_nowait, name)

    @property
    def idle(self) -> bool:
        """Nothing queued or running; pending retries wait for the clock, which counts as idle."""
        engines_idle = all(getattr(state.engine, "settled", lambda: True)()
                           for states in self.vclusters.values() for state in states.values()
                           if state.engine is not None)
        return self._inflight == 0 and engines_idle

    # -- the reconcile loop ---------------------------------------------------------------------------
    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            name = await self._queue.get()
            try:
                if not await self.reconcile(name):
                    self._schedule_retry(name)
            except Exception as exc:  # one broken Environment must not stop the others
                log.exception("reconcile of Environment %s failed", name)
                self._note(name, f"reconcile failed: {exc}")
                self._schedule_retry(name)
            finally:
                with self._count_lock:
                    self._inflight -= 1

    def _schedule_retry(self, name: str) -> None:
        task = asyncio.create_task(self._retry(name))
        self._retries.add(task)
        task.add_done_callback(self._retries.discard)

    async def _retry(self, name: str) -> None:
        await self.clock.sleep(RETRY_SECONDS)
        if name in self.environments:
            self._put(name)

    def _note(self, name: str, message: str) -> None:
        for state in self.vclusters.get(name, {}).values():
            if not state.ready:
                state.message = message

    async def reconcile(self, name: str) -> bool:
        """Bring one Environment to its realized state; True when every vcluster is ready."""
        environment = self.environments.get(name)
        if environment is None:
            return True
        org = environment.spec.organization
        states = self.vclusters.setdefault(name, {})
        done = True
        for host in environment.host_clusters(self.sovereign.spec.provider):
            context = naming.vcluster_context(host.name, org)
            state = states.setdefault(context, VclusterState(host_cluster=host.name, context=context))
            if not state.ready:
                kubeconfig = await asyncio.to_thread(self._install_vcluster, host.name, org, state)
                if kubeconfig is None:
                    done = False
                    continue
                path = self.workdir / "vclusters" / f"{context}.yaml"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(yaml.safe_dump(kubeconfig))
                path.chmod(0o600)
                if self.gitops is not None:
                    state.engine = self.gitops(environment, context, path)
                    await state.engine.start()
                state.ready = True
                state.message = "vcluster ready, GitOps bootstrapped"
            if state.engine is not None:
                await self._add_applications(state, org, environment.branch)
        return done

    async def _add_applications(self, state: VclusterState, org: str, branch: str) -> None:
        """Point the vcluster's GitOps engine at every App it does not follow yet, all at once: each
        first fetch waits on git processes, so a bundle's Apps are fetched side by side."""
        engine = state.engine
        assert engine is not None
        missing = [app for app in self.applications(org) if app not in state.applications]
        outcomes = await asyncio.gather(*(engine.add_application(app, f"{org}/{app}", branch) for app in missing),
                                        return_exceptions=True)
        failures = []
        for app, outcome in zip(missing, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                failures.append(outcome)
            else:
                state.applications.add(app)
        if failures:  # the ones that failed are tried again with the next reconcile, as before
            raise failures[0]

    def _client(self, host: str) -> k8s.ApiClient:
        if host not in self._clients:
            if host not in self.host_kubeconfigs:
                raise LookupError(f"host cluster {host!r} does not exist in this Sovereign "
                                  f"(known: {', '.join(sorted(self.host_kubeconfigs))})")
            self._clients[host] = api_client(self.host_kubeconfigs[host])
        return self._clients[host]

    def _install_vcluster(self, host: str, org: str, state: VclusterState) -> dict[str, Any] | None:
        """Create (or find) the vcluster ``{org}`` on ``host``; its kubeconfig once it is up."""
        try:
            api = self._client(host)
        except LookupError as exc:
            state.message = str(exc)
            return None
        core, apps = k8s.CoreV1Api(api), k8s.AppsV1Api(api)
        labels = {"app": "vcluster", "release": org, "openova.io/organization": org,
                  "openova.io/sovereign": self.sovereign.metadata.name, "openova.io/host-cluster": host,
                  "app.kubernetes.io/managed-by": "catalyst"}
        _create_if_missing(lambda: core.create_namespace({"metadata": {"name": org, "labels": labels}}))
        _create_if_missing(lambda: apps.create_namespaced_stateful_set(org, vcluster_statefulset(org, labels)))
        try:
            secret = core.read_namespaced_secret(f"vc-{org}", org)
        except ApiException as exc:
            if exc.status != 404:
                raise
            state.message = f"waiting for vcluster {org} on {host} to start"
            return None
        return yaml.safe_load(base64.b64decode(secret.data["config"]))


def _create_if_missing(create: Callable[[], Any]) -> None:
    try:
        create()
    except ApiException as exc:
        if exc.status != 409:
            raise


def vcluster_statefulset(org: str, labels: dict[str, str]) -> dict[str, Any]:
    """The vcluster control plane for ``org``, as the vcluster chart would create it."""
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": org, "namespace": org, "labels": labels},
        "spec": {
            "replicas": 1,
            "serviceName": f"{org}-headless",
            "selector": {"matchLabels": {"app": "vcluster", "release": org}},
            "template": {
                "metadata": {"labels": {"app": "vcluster", "release": org}},
                "spec": {"containers": [{"name": "syncer", "image": VCLUSTER_IMAGE}]},
            },
        },
    }
