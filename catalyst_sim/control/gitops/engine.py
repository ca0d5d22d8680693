"""One Flux per vcluster (R-FLUX-01): :class:`GitOpsEngine`.

The engine bootstraps "Flux" into a vcluster through the Kubernetes API only (namespace
``flux-system``, the Flux and ESO CRDs, pull credentials — R-ENVC-01/03), then runs two small
reconcilers over a work queue: :mod:`.source` (GitRepository) and :mod:`.kustomization`
(Kustomization). Everything an App needs in the vcluster is a GitRepository and a Kustomization
named ``{app}`` in ``flux-system`` (D-08); :meth:`add_application` writes both, the way the
environment-controller does when provisioning creates a repo (R-ENVC-02, R-PROV-01(7)).

Time. Every interval, retry and health poll is a timer on the :class:`~catalyst_sim.clock.Clock`,
never ``asyncio.sleep``: with a :class:`~catalyst_sim.clock.VirtualClock` nothing happens until
someone advances it, and then exactly what became due happens.

Settle protocol (for callers driving a VirtualClock)::

    clock.advance(seconds)          # fires due timers; each one queues its work synchronously
    await engine.wait_idle()        # on the engine's loop: returns when that work is all done
    engine.wait_settled()           # the same from any other thread (blocks; never on the loop)

``settled()`` is true when nothing is queued or running: all that is left needs time to pass
(the next interval, the next health poll, a pod becoming ready on the simulated kubelet). Work
triggered through the API surface — :meth:`add_application`, :meth:`request_reconcile` — is
covered the same way. :mod:`.settle` wraps the loop "advance a step, wait idle, check" for
scenarios.

Threads. Blocking calls (the ``kubernetes`` client, ``git``) run on the engine's own executor,
whose threads are named ``catalyst-sim:gitops-<vcluster>``; :meth:`stop` cancels every timer and
task and shuts the executor down, so nothing of the engine outlives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from catalyst_sim.clock import Clock, TimerHandle
from catalyst_sim.control.catalog import BlueprintRegistry
from catalyst_sim.control.gitops import apply, render, specs
from catalyst_sim.control.gitops.artifacts import ArtifactError, ArtifactStorage
from catalyst_sim.control.gitops.crds import (
    FLUX_NAMESPACE,
    KUSTOMIZE_API,
    OWNER_MANAGER,
    SOURCE_API,
    bootstrap_crds,
)
from catalyst_sim.control.gitops.events import EventEmitter
from catalyst_sim.control.gitops.kube import Kube
from catalyst_sim.control.gitops.kustomization import KustomizationReconciler
from catalyst_sim.control.gitops.runtime import HEALTH, KUSTOMIZATION, SOURCE, Identity, Runtime, Timing
from catalyst_sim.control.gitops.source import SourceReconciler
from catalyst_sim.control.gitops.workqueue import WorkQueue

log = logging.getLogger(__name__)

_APP = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
GIT_USERNAME = "flux"
_T = TypeVar("_T")


class GitOpsError(RuntimeError):
    pass


@dataclass
class _App:
    name: str
    repo: str
    branch: str
    source_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    ks_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class GitOpsEngine:
    """Flux semantics for one vcluster: GitRepositories + Kustomizations reconciled on a Clock."""

    def __init__(
        self,
        *,
        vcluster: str,
        organization: str,
        environment: str,
        env_type: str,
        kubeconfig: Path,
        gitea_url: str,
        gitea_token: str,
        catalog: BlueprintRegistry,
        clock: Clock,
        workdir: Path,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        sovereign: str | None = None,
        host_cluster: str | None = None,
        workers: int = 4,
        timing: Timing | None = None,
    ) -> None:
        if host_cluster is None and vcluster.endswith(f"-{organization}"):
            host_cluster = vcluster.removesuffix(f"-{organization}")  # {prov}-{reg}-{bb}-{env_type} (R-NAME-09)
        self.identity = Identity(vcluster=vcluster, organization=organization, environment=environment,
                                 env_type=env_type, sovereign=sovereign, host_cluster=host_cluster)
        self.kubeconfig = Path(kubeconfig)
        self.gitea_url = gitea_url.rstrip("/")
        self._gitea_token = gitea_token
        self.catalog = catalog
        self.clock = clock
        self.workdir = Path(workdir)
        self.timing = timing or Timing()
        self._workers_count = max(1, workers)
        self._events = EventEmitter(on_event, clock, vcluster=vcluster, organization=organization,
                                    environment=environment)
        self._queue = WorkQueue()
        self._lock = threading.Lock()  # guards _apps membership and the _full/_forced flags
        self._apps: dict[str, _App] = {}
        self._full: set[str] = set()
        self._forced: set[str] = set()
        self._timers: dict[str, TimerHandle] = {}
        self._ops = 0
        self._stopped = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._kube: Kube | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._runtime: Runtime | None = None
        self._source: SourceReconciler | None = None
        self._ks: KustomizationReconciler | None = None
        self.ready = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Bootstrap Flux in the vcluster, then start reconciling. Idempotent per engine."""
        if self.ready:
            return
        if self._stopped:
            raise GitOpsError("a stopped GitOps engine cannot be started again; create a new one")
        self._loop = asyncio.get_running_loop()
        self._queue.bind(self._loop)
        self._executor = ThreadPoolExecutor(self._workers_count, thread_name_prefix=self.thread_name)
        for sub in ("git", "artifacts", "home"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        try:
            self._kube = await self._offload(Kube, self.kubeconfig)
            rt = Runtime(
                kube=self._kube, clock=self.clock, storage=ArtifactStorage(self.workdir / "artifacts"),
                catalog=self.catalog, identity=self.identity, timing=self.timing, events=self._events,
                offload=self._offload, schedule=self._schedule, cancel=self._cancel, enqueue=self._enqueue,
            )
            self._runtime = rt
            self._source = SourceReconciler(rt, self.workdir / "git", self.workdir / "home")
            self._ks = KustomizationReconciler(rt)
            await self._offload(self._bootstrap)
        except BaseException:
            self._stopped = True  # a half-bootstrapped engine is not restartable: make a new one
            await self._shutdown()
            raise
        self._tasks = [asyncio.create_task(self._work(), name=f"gitops:{self.identity.vcluster}:worker-{i}")
                       for i in range(self._workers_count)]
        self.ready = True

    @property
    def thread_name(self) -> str:
        return f"catalyst-sim:gitops-{self.identity.vcluster}"

    def _bootstrap(self) -> None:
        kube = self._require_kube()
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": FLUX_NAMESPACE,
            "labels": {"app.kubernetes.io/instance": FLUX_NAMESPACE, "app.kubernetes.io/part-of": "flux"}}})
        for crd in bootstrap_crds():
            kube.apply(crd, field_manager=OWNER_MANAGER)
        kube.forget_discovery()
        for api_version, kind in ((SOURCE_API, "GitRepository"), (KUSTOMIZE_API, "Kustomization")):
            kube.resource(api_version, kind)  # fails loudly if the CRDs are not served
        kube.apply(specs.credentials_secret(GIT_USERNAME, self._gitea_token), field_manager=OWNER_MANAGER)

    async def stop(self) -> None:
        """Cancel every timer and task and stop the executor; the vcluster's objects stay."""
        self._stopped = True
        self.ready = False
        await self._shutdown()

    async def _shutdown(self) -> None:
        self._queue.close()
        for handle in list(self._timers.values()):
            handle.cancel()
        self._timers.clear()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        if self._kube is not None:
            self._kube.close()
            self._kube = None
        if self._source is not None:
            self._source.close()

    # ------------------------------------------------------------------ Applications

    async def add_application(self, app: str, repo: str, branch: str) -> None:
        """Create or update GitRepository + Kustomization ``{app}`` for ``repo`` ("org/app") at
        ``branch``. The Kustomization's spec comes from the repo's kustomization.yaml at the revision
        fetched here. Idempotent; a changed ``branch`` re-points the source."""
        if not _APP.match(app):
            raise ValueError(f"invalid Application name {app!r}: must be a DNS label")
        if not _REPO.match(repo):
            raise ValueError(f"invalid repository {repo!r}: expected 'org/app'")
        if not branch or branch.startswith("-") or any(ch.isspace() for ch in branch):
            raise ValueError(f"invalid branch {branch!r}")
        self._require_started()
        with self._operation():
            with self._lock:
                state = self._apps.get(app)
                if state is None:
                    state = self._apps[app] = _App(app, repo, branch)
            state.repo, state.branch = repo, branch
            kube, source = self._require_kube(), self._require(self._source)
            async with state.source_lock:
                source_object = specs.git_repository(app, f"{self.gitea_url}/{repo}.git", branch, labels={
                    "app.kubernetes.io/managed-by": "catalyst", "openova.io/application": app,
                    "openova.io/organization": self.identity.organization,
                    "openova.io/environment": self.identity.environment})
                await self._offload(kube.apply, source_object, field_manager=OWNER_MANAGER)
                result = await source.reconcile(app)
                await self._sync_kustomization(app, result.artifact if result else None)
            self._enqueue(KUSTOMIZATION, app)
            await self._require(self._ks).kick_dependents(app)  # their "not found" is stale now

    async def remove_application(self, app: str) -> None:
        """Delete the App's Flux objects; with ``prune`` (the default) everything it applied too."""
        self._require_started()
        with self._operation():
            with self._lock:
                state = self._apps.get(app)
            kube, rt, ks = self._require_kube(), self._require(self._runtime), self._require(self._ks)
            locks = (state.source_lock, state.ks_lock) if state else ()
            async with contextlib.AsyncExitStack() as stack:
                for lock in locks:
                    await stack.enter_async_context(lock)
                for what in (SOURCE, KUSTOMIZATION, HEALTH):
                    self._cancel(what, app)
                ks.forget(app)
                obj = await self._offload(kube.get, KUSTOMIZE_API, "Kustomization", app, FLUX_NAMESPACE)
                revision = str(((obj or {}).get("status") or {}).get("lastAppliedRevision", ""))
                if obj is not None and (obj.get("spec") or {}).get("prune", False):
                    await self._offload(self._prune_all, app, apply.inventory_of(obj.get("status")))
                await self._offload(kube.delete, KUSTOMIZE_API, "Kustomization", app, FLUX_NAMESPACE)
                await self._offload(kube.delete, SOURCE_API, "GitRepository", app, FLUX_NAMESPACE)
                await self._offload(rt.storage.remove, FLUX_NAMESPACE, app)
                await self._offload(self._require(self._source).mirror(app).remove)
                with self._lock:
                    self._apps.pop(app, None)
                    self._full.discard(app)
                    self._forced.discard(app)
            rt.events.kustomization(app, "deleted", revision=revision, ready="False", reason="Deleted",
                                    message="Kustomization deleted; its objects were garbage-collected")
            await ks.kick_dependents(app)

    def _prune_all(self, app: str, entries: list[apply.Entry]) -> None:
        kube = self._require_kube()
        for entry in sorted(entries, key=lambda e: e.kind == "Namespace"):
            apply.delete_owned(kube, entry, app)

    @property
    def applications(self) -> dict[str, tuple[str, str]]:
        """App -> (repo, branch) of every Application this engine follows."""
        with self._lock:
            return {name: (a.repo, a.branch) for name, a in self._apps.items()}

    def request_reconcile(self, app: str | None = None) -> None:
        """Reconcile ``app`` (or every App) now — source first, then its Kustomization — instead of
        at the next interval: what a Gitea push webhook triggers (R-PROJ-07). Thread-safe."""
        with self._lock:
            apps = [app] if app is not None else list(self._apps)
            apps = [a for a in apps if a in self._apps]
            self._forced.update(apps)
        for name in apps:
            self._queue.add(f"{SOURCE}/{name}")

    # ------------------------------------------------------------------ settling

    def settled(self) -> bool:
        """True when no reconcile is queued or running (thread-safe): what remains needs time."""
        return self._ops == 0 and self._queue.idle()

    def wait_settled(self, timeout: float = 10.0) -> bool:
        """Block until :meth:`settled` (from any thread but the engine's loop); False on timeout."""
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if current is not None and current is self._loop:
            raise GitOpsError("wait_settled() would block the engine's own loop; await wait_idle() instead")
        return self._queue.wait_settled_blocking(self.settled, timeout)

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """On the engine's loop: wait until :meth:`settled`; :class:`TimeoutError` names what is left."""
        await self._queue.wait_settled(self.settled, timeout, f"GitOps engine {self.identity.vcluster}")

    # ------------------------------------------------------------------ scheduling

    def _schedule(self, what: str, app: str, seconds: float) -> None:
        if self._stopped:
            return
        key = f"{what}/{app}"
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        self._timers[key] = self.clock.call_at(self.clock.now() + timedelta(seconds=seconds),
                                               functools.partial(self._enqueue, what, app))

    def _cancel(self, what: str, app: str) -> None:
        handle = self._timers.pop(f"{what}/{app}", None)
        if handle is not None:
            handle.cancel()

    def _enqueue(self, what: str, app: str) -> None:
        """Queue ``what`` for ``app``; thread-safe (clock timers call this from the advancing thread)."""
        if self._stopped:
            return
        if what == SOURCE:
            self._queue.add(f"{SOURCE}/{app}")
            return
        if what == KUSTOMIZATION:
            with self._lock:
                self._full.add(app)
        self._queue.add(f"{KUSTOMIZATION}/{app}")  # a health poll shares the key: never concurrent

    async def _offload(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._executor is None:
            raise GitOpsError("the GitOps engine is stopped")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    @contextlib.contextmanager
    def _operation(self) -> Iterator[None]:
        self._ops += 1
        try:
            yield
        finally:
            self._ops -= 1

    # ------------------------------------------------------------------ workers

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            try:
                await self._process(key)
            except asyncio.CancelledError:
                raise
            except Exception:
                # An unexpected error (an API hiccup, a bug) must not end the loop: retry later.
                log.exception("GitOps engine %s: reconcile of %s failed", self.identity.vcluster, key)
                what, _, app = key.partition("/")
                self._schedule(what, app, self.timing.dependency_retry)
            finally:
                self._queue.done(key)

    async def _process(self, key: str) -> None:
        what, _, app = key.partition("/")
        with self._lock:
            state = self._apps.get(app)
            full = app in self._full if what == KUSTOMIZATION else False
            if what == KUSTOMIZATION:
                self._full.discard(app)
        if state is None:
            return
        if what == SOURCE:
            async with state.source_lock:
                result = await self._require(self._source).reconcile(app)
                with self._lock:
                    forced = app in self._forced
                    self._forced.discard(app)
                if result is not None and result.changed:
                    await self._sync_kustomization(app, result.artifact)
            if result is not None and (result.changed or forced):
                self._enqueue(KUSTOMIZATION, app)
        else:
            async with state.ks_lock:
                await self._require(self._ks).reconcile(app, full=full)

    async def _sync_kustomization(self, app: str, artifact: dict[str, Any] | None) -> None:
        """Write Kustomization ``{app}`` from the repo's kustomization.yaml at ``artifact``.

        A revision whose kustomization.yaml is unreadable keeps the last good spec; the reconciler
        then reports the broken file as a build failure on the Kustomization itself.
        """
        kube, rt = self._require_kube(), self._require(self._runtime)
        repo_doc: dict[str, Any] | None = None
        if artifact:
            try:
                files = await self._offload(rt.storage.open, str(artifact.get("path", "")), artifact.get("digest"))
                repo_doc = render.repo_kustomization(files)
            except (ArtifactError, render.BuildError):
                repo_doc = None
        if repo_doc is None:
            existing = await self._offload(kube.get, KUSTOMIZE_API, "Kustomization", app, FLUX_NAMESPACE)
            if existing is not None:
                return
        desired = specs.kustomization(app, repo_doc, self.identity.variables())
        await self._offload(kube.apply, desired, field_manager=OWNER_MANAGER)

    # ------------------------------------------------------------------ helpers

    def _require_started(self) -> None:
        if not self.ready:
            raise GitOpsError("the GitOps engine is not started (await start() first)")

    def _require_kube(self) -> Kube:
        return self._require(self._kube)

    @staticmethod
    def _require(value: _T | None) -> _T:
        if value is None:
            raise GitOpsError("the GitOps engine is not started")
        return value
