"""The host cluster's own Flux, as far as the tethers go: source and release readiness over the network.

Every 60 virtual seconds it reconciles what is due (each object's ``spec.interval``) or changed
(``metadata.generation`` ahead of ``status.observedGeneration``): the ``flux-system``
GitRepository fetches its url with ``git ls-remote``; the Kustomization follows its source; an OCI
HelmRepository is Ready when its registry answers ``/v2/``; a HelmRelease is Ready when its chart
manifest can be pulled from its HelmRepository. Failures are ``Ready=False`` with Flux's reasons,
so a black-holed mothership shows up exactly where a real Flux would show it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from catalyst_sim.backends.embedded.mothership.oci import MANIFEST_TYPES

from .context import Context, StepFailed, Transient
from .kube import KubeClient

log = logging.getLogger(__name__)
TICK = 60.0
FLUX_NS = "flux-system"


def parse_interval(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        return float(text[:-1]) * units[text[-1]]
    except (KeyError, ValueError, IndexError):
        return 600.0


def ready_condition(obj: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)


class PlatformFlux:
    def __init__(self, context: Context) -> None:
        self.context = context
        self._due: dict[tuple[str, str, str], datetime] = {}
        self._task: asyncio.Task[None] | None = None
        self._busy = 0
        self._wake: asyncio.Event | None = None

    @property
    def idle(self) -> bool:
        return self._busy == 0

    async def start(self) -> None:
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._loop(), name="sovereignty-flux")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._busy = 0

    def reset(self) -> None:
        self._due.clear()

    async def reconcile_now(self, force: bool = False) -> None:
        """One pass over every cluster now (the cutover asks for it after a patch); ``force`` also
        reconciles what is not due, like ``flux reconcile`` with ``reconcile.fluxcd.io/requestedAt``."""
        self._busy += 1
        if force:
            self._due.clear()
        try:
            for name, kube in self.context.kubes.items():
                await asyncio.to_thread(self._reconcile_cluster, name, kube)
        finally:
            self._busy -= 1

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            woke = loop.create_future()

            def fire(woke: asyncio.Future[None] = woke) -> None:
                self._busy += 1  # counted in the clock's thread: settle never sees a gap
                loop.call_soon_threadsafe(lambda: woke.done() or woke.set_result(None))

            handle = self.context.clock.call_at(self.context.clock.now() + timedelta(seconds=TICK), fire)
            try:
                await woke
            except asyncio.CancelledError:
                handle.cancel()
                raise
            try:
                for name, kube in self.context.kubes.items():
                    await asyncio.to_thread(self._reconcile_cluster, name, kube)
            except Exception:  # a broken pass must not stop Flux: the next tick tries again
                log.exception("sovereignty flux pass failed")
            finally:
                self._busy -= 1

    # -- one pass -------------------------------------------------------------------------------------
    def _reconcile_cluster(self, cluster: str, kube: KubeClient) -> None:
        now = self.context.clock.now()
        cache: dict[str, str | None] = {}
        git = kube.list("GitRepository", FLUX_NS)
        for obj in git:
            if self._should(cluster, obj, now):
                self._set_ready(kube, obj, *self._check_git(obj, cache))
        sources = {o["metadata"]["name"]: o for o in kube.list("GitRepository", FLUX_NS)}
        for obj in kube.list("Kustomization", FLUX_NS):
            source = sources.get(((obj["spec"].get("sourceRef") or {}).get("name")) or "")
            cond = ready_condition(source or {}) or {}
            ok = cond.get("status") == "True"
            revision = (((source or {}).get("status") or {}).get("artifact") or {}).get("revision", "")
            message = f"Applied revision: {revision}" if ok else f"source not ready: {cond.get('message')}"
            self._set_ready(kube, obj, ok, "ReconciliationSucceeded" if ok else "ArtifactFailed", message)
        repos = kube.list("HelmRepository", FLUX_NS)
        for obj in repos:
            if self._should(cluster, obj, now):
                self._set_ready(kube, obj, *self._check_registry(obj["spec"].get("url", ""), cache))
        by_name = {o["metadata"]["name"]: o for o in repos}
        for obj in kube.list("HelmRelease", FLUX_NS):
            if self._should(cluster, obj, now):
                self._set_ready(kube, obj, *self._check_chart(obj, by_name, cache))

    def _should(self, cluster: str, obj: dict[str, Any], now: datetime) -> bool:
        meta = obj["metadata"]
        key = (cluster, obj["kind"], meta["name"])
        changed = meta.get("generation") != (obj.get("status") or {}).get("observedGeneration")
        due = self._due.get(key)
        if changed or due is None or now >= due:
            self._due[key] = now + timedelta(seconds=parse_interval(str(obj["spec"].get("interval", "10m"))))
            return True
        return False

    def _check_git(self, obj: dict[str, Any], cache: dict[str, str | None]) -> tuple[bool, str, str, dict[str, Any]]:
        url = obj["spec"].get("url", "")
        branch = (obj["spec"].get("ref") or {}).get("branch", "main")
        try:
            sha = self.context.ls_remote(url, f"refs/heads/{branch}")
        except (Transient, StepFailed, OSError) as exc:
            return False, "GitOperationFailed", f"failed to checkout and determine revision: {exc}", {}
        return True, "Succeeded", f"stored artifact for revision '{branch}@sha1:{sha}'", {
            "artifact": {"revision": f"{branch}@sha1:{sha}", "url": url}}

    def _probe(self, url: str, cache: dict[str, str | None]) -> str | None:
        if url not in cache:
            try:
                status, _, _ = self.context.network.fetch(url, {"Accept": ", ".join(MANIFEST_TYPES)}, method="HEAD"
                                                          if "/manifests/" in url else "GET")
                cache[url] = None if status == 200 else f"{url} answered {status}"
            except Exception as exc:  # refused, reset, unknown host
                cache[url] = f"{url}: {exc or type(exc).__name__}"
        return cache[url]

    def _check_registry(self, url: str, cache: dict[str, str | None]) -> tuple[bool, str, str, dict[str, Any]]:
        host = urlsplit(url).hostname or ""
        problem = self._probe(f"https://{host}/v2/", cache)
        if problem:
            return False, "FetchFailed", f"failed to reach OCI registry {host}: {problem}", {}
        return True, "Succeeded", f"Helm repository {url} is ready", {}

    def _check_chart(self, obj: dict[str, Any], repos: dict[str, dict[str, Any]],
                     cache: dict[str, str | None]) -> tuple[bool, str, str, dict[str, Any]]:
        spec = (obj["spec"].get("chart") or {}).get("spec") or {}
        repo = repos.get((spec.get("sourceRef") or {}).get("name", ""))
        if repo is None:
            return False, "ArtifactFailed", f"HelmRepository {spec.get('sourceRef')} not found", {}
        parts = urlsplit(repo["spec"].get("url", ""))
        url = f"https://{parts.hostname}/v2{parts.path}/{spec.get('chart')}/manifests/{spec.get('version')}"
        problem = self._probe(url, cache)
        if problem:
            return False, "ArtifactFailed", f"failed to pull chart {spec.get('chart')}: {problem}", {}
        return True, "UpgradeSucceeded", f"Helm upgrade succeeded for release {obj['metadata']['name']} " \
                                         f"with chart {spec.get('chart')}@{spec.get('version')}", {}

    def _set_ready(self, kube: KubeClient, obj: dict[str, Any], ok: bool, reason: str, message: str,
                   extra: dict[str, Any] | None = None) -> None:
        meta = obj["metadata"]
        current = ready_condition(obj) or {}
        status = "True" if ok else "False"
        observed = (obj.get("status") or {}).get("observedGeneration")
        if current.get("status") == status and current.get("message") == message and observed == meta.get("generation"):
            return
        when = self.context.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        condition = {"type": "Ready", "status": status, "reason": reason, "message": message,
                     "lastTransitionTime": current.get("lastTransitionTime", when)
                     if current.get("status") == status else when, "observedGeneration": meta.get("generation")}
        body = {"status": {"conditions": [condition], "observedGeneration": meta.get("generation"), **(extra or {})}}
        kube.patch(obj["kind"], meta.get("namespace"), meta["name"], body, sub="status")
