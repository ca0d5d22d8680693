"""The Kustomization reconciler (kustomize-controller's part of Flux, R-FLUX-02/03).

One full pass, in Flux's order:

1. **source** — the GitRepository must have an artifact (else ``ArtifactFailed``, retried);
2. **dependencies** — every ``dependsOn`` Kustomization must be ``Ready=True`` at its current
   generation; otherwise ``Ready=False/DependencyNotReady`` "dependency 'flux-system/x' is not
   ready" — *pending*, not failed (R-FLUX-03) — and the pass ends before anything is built or
   applied. A ``dependsOn`` cycle can never resolve, so it is ``Stalled`` with the cycle named;
3. **build** (:mod:`.render`) — errors in the revision are terminal for it: ``Stalled`` with
   ``BuildFailed``/``ArtifactFailed`` and the message, retried only at the interval (a stalled App
   holds no worker and no lock, so every other App keeps reconciling);
4. **apply + prune** (:mod:`.apply`), recording ``status.inventory`` and ``lastAttemptedRevision``;
5. **health** (:mod:`.health`) — healthy at once: ``Ready=True/ReconciliationSucceeded``,
   ``lastAppliedRevision``. Otherwise the pass *waits without blocking*: ``Ready=Unknown/Progressing``
   (for a new revision) naming what is unhealthy and why, re-checked every ``health_poll`` seconds of
   the Clock until healthy, failed early (kstatus ``Failed``), or past ``spec.timeout`` (default: the
   interval) — ``Ready=False/HealthCheckFailed``.

The next full pass comes at ``spec.interval`` (drift correction: the apply reverts manual edits),
at ``retryInterval`` after a failure, at once when the source has a new revision, when a dependency
turns Ready, or when asked (:meth:`GitOpsEngine.request_reconcile`). A full pass that arrives while a
health check is pending supersedes it; for the same revision it keeps the original deadline, so
repeated nudges cannot postpone a verdict forever.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from catalyst_sim.control.gitops import apply, health, render, specs
from catalyst_sim.control.gitops import conditions as c
from catalyst_sim.control.gitops.apply import Entry
from catalyst_sim.control.gitops.artifacts import ArtifactError
from catalyst_sim.control.gitops.crds import FLUX_NAMESPACE, KUSTOMIZE_API, SOURCE_API
from catalyst_sim.control.gitops.kube import KubeError
from catalyst_sim.control.gitops.runtime import HEALTH, KUSTOMIZATION, Runtime

log = logging.getLogger(__name__)


@dataclass
class HealthWait:
    revision: str
    generation: int
    started: datetime
    deadline: datetime
    timeout: float
    retry: float
    interval: float
    entries: list[Entry]


def find_cycle(start: str, graph: dict[str, list[str]]) -> list[str] | None:
    """The first ``dependsOn`` path from ``start`` back to itself, as names (``None``: no cycle)."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for dep in graph.get(node, []):
            if dep == start:
                return [*path, start]
            if dep not in seen:
                seen.add(dep)
                stack.append((dep, [*path, dep]))
    return None


def is_ready(ks: dict[str, Any]) -> bool:
    """A dependency counts as ready when it is Ready=True for its current generation (Flux's rule)."""
    status = ks.get("status") or {}
    return (c.status_of(ks) == "True"
            and status.get("observedGeneration") == (ks.get("metadata") or {}).get("generation"))


class KustomizationReconciler:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.waits: dict[str, HealthWait] = {}
        # The last build per Kustomization, keyed on (artifact digest, target namespace, substitutions).
        self.builds: dict[str, tuple[tuple[Any, ...], render.Build]] = {}

    def forget(self, name: str) -> None:
        self.waits.pop(name, None)
        self.rt.cancel(HEALTH, name)

    async def _get(self, name: str) -> dict[str, Any] | None:
        return await self.rt.offload(self.rt.kube.get, KUSTOMIZE_API, "Kustomization", name, FLUX_NAMESPACE)

    async def reconcile(self, name: str, *, full: bool) -> None:
        ks = await self._get(name)
        if ks is None:
            self.forget(name)
            self.builds.pop(name, None)
            return
        if full:
            await self._full(name, ks)
        elif name in self.waits:
            await self._poll(name, ks)

    # ------------------------------------------------------------------ the full pass

    async def _full(self, name: str, ks: dict[str, Any]) -> None:
        rt = self.rt
        spec, status = ks.get("spec") or {}, ks.get("status") or {}
        generation = int(ks["metadata"].get("generation", 1))
        try:
            interval = c.parse_duration(spec.get("interval"), 60.0)
            retry = c.parse_duration(spec.get("retryInterval"), interval)
            timeout = c.parse_duration(spec.get("timeout"), interval)
        except c.DurationError as exc:
            await self._fail(ks, c.RECONCILIATION_FAILED, str(exc), revision="", stalled=True, retry=60.0)
            return
        if spec.get("suspend"):
            self.forget(name)
            rt.schedule(KUSTOMIZATION, name, interval)
            return

        # 1. source
        ref = spec.get("sourceRef") or {}
        source_ns = str(ref.get("namespace") or FLUX_NAMESPACE)
        source = await rt.offload(rt.kube.get, SOURCE_API, "GitRepository", str(ref.get("name", name)), source_ns)
        artifact = ((source or {}).get("status") or {}).get("artifact")
        if source is None or not artifact:
            message = (f"Source 'GitRepository/{source_ns}/{ref.get('name', name)}' not found" if source is None
                       else f"Source artifact not found, retrying in {c.format_duration(rt.timing.dependency_retry)}")
            await self._fail(ks, c.ARTIFACT_FAILED, message, revision="", stalled=False,
                             retry=rt.timing.dependency_retry)
            return
        revision = str(artifact.get("revision", ""))
        new_revision = revision != status.get("lastAppliedRevision") or generation != status.get("observedGeneration")

        # 2. dependencies
        blocked = await self._dependencies(name, ks)
        if blocked is not None:
            cycle, message = blocked
            if cycle:
                await self._fail(ks, c.DEPENDENCY_CYCLE, message, revision=revision, stalled=True, retry=interval)
            else:
                await self._pending(ks, message, revision)
            return

        if new_revision or c.status_of(ks) != "True":
            ks = await self._progressing(ks, revision, new_revision,
                                         f"Reconciliation in progress for revision {revision}") or ks

        # 3. build (once per artifact and build inputs: the periodic pass re-applies the same objects)
        target = str(spec.get("targetNamespace") or name)
        variables = {str(k): str(v) for k, v in ((spec.get("postBuild") or {}).get("substitute") or {}).items()}
        build_key = (str(artifact.get("digest") or artifact.get("path")), target, tuple(sorted(variables.items())))
        cached = self.builds.get(name)
        try:
            if cached is not None and cached[0] == build_key:
                objects = copy.deepcopy(cached[1].objects)
            else:
                try:
                    files = await rt.offload(rt.storage.open, str(artifact.get("path", "")), artifact.get("digest"))
                except ArtifactError as exc:
                    await self._fail(ks, c.ARTIFACT_FAILED, str(exc), revision=revision, stalled=False, retry=retry)
                    return
                built = await rt.offload(
                    render.build, files, app=name, kustomization=name, env_type=rt.identity.env_type,
                    target_namespace=target, catalog=rt.catalog, workload_labels=rt.identity.workload_labels(),
                    variables=variables, organization=rt.identity.organization,
                )
                self.builds[name] = (build_key, built)
                objects = copy.deepcopy(built.objects)
            resolved = await rt.offload(apply.resolve, rt.kube, objects, target)
        except render.BuildError as exc:
            await self._fail(ks, exc.reason, exc.message, revision=revision, stalled=True, retry=interval)
            return
        except KubeError as exc:
            await self._fail(ks, c.RECONCILIATION_FAILED, exc.message, revision=revision, stalled=False, retry=retry)
            return

        # 4. apply + prune
        previous = apply.inventory_of(status)
        try:
            result = await rt.offload(apply.apply_all, rt.kube, resolved, previous=previous, kustomization=name,
                                      prune=bool(spec.get("prune", False)))
        except apply.ApplyError as exc:
            await self._fail(ks, c.RECONCILIATION_FAILED, exc.message, revision=revision, stalled=False, retry=retry)
            return
        ks = await rt.write_status(ks, {**(ks.get("status") or {}), "inventory": result.inventory(),
                                        "lastAttemptedRevision": revision}) or ks
        if result.created or result.pruned:
            log.info("%s: %s", name, result.summary().replace("\n", ", "))

        # 5. health
        wait = self.waits.get(name)
        if wait is None or wait.revision != revision or wait.generation != generation:
            now = rt.clock.now()
            wait = HealthWait(revision, generation, now, now + timedelta(seconds=timeout), timeout, retry, interval,
                              result.entries)
        else:
            wait.entries, wait.retry, wait.interval = result.entries, retry, interval
        self.waits[name] = wait
        if not spec.get("wait", False) and not spec.get("healthChecks"):
            await self._succeed(ks, wait)
            return
        await self._judge(name, ks, wait, first=True)

    async def _dependencies(self, name: str, ks: dict[str, Any]) -> tuple[bool, str] | None:
        """``None`` when every dependency is ready; else (is-a-cycle, message)."""
        deps = specs.depends_on(ks)
        if not deps:
            return None
        rt = self.rt
        listed = await rt.offload(rt.kube.list, KUSTOMIZE_API, "Kustomization", FLUX_NAMESPACE)
        by_name = {o["metadata"]["name"]: o for o in listed}
        graph = {n: [d for ns, d in specs.depends_on(o) if ns == FLUX_NAMESPACE] for n, o in by_name.items()}
        cycle = find_cycle(name, graph)
        if cycle:
            return True, f"dependency cycle detected: {' -> '.join(cycle)}"
        for namespace, dep in deps:
            found = (by_name.get(dep) if namespace == FLUX_NAMESPACE
                     else await rt.offload(rt.kube.get, KUSTOMIZE_API, "Kustomization", dep, namespace))
            if found is None:
                return False, (f"unable to get '{namespace}/{dep}' dependency: "
                               f"Kustomization.kustomize.toolkit.fluxcd.io \"{dep}\" not found")
            if not is_ready(found):
                return False, f"dependency '{namespace}/{dep}' is not ready"
        return None

    # ------------------------------------------------------------------ health

    async def _poll(self, name: str, ks: dict[str, Any]) -> None:
        wait = self.waits[name]
        if int(ks["metadata"].get("generation", 1)) != wait.generation:
            self.forget(name)
            self.rt.enqueue(KUSTOMIZATION, name)
            return
        await self._judge(name, ks, wait, first=False)

    async def _judge(self, name: str, ks: dict[str, Any], wait: HealthWait, *, first: bool) -> None:
        rt = self.rt
        results = await rt.offload(health.check, rt.kube, wait.entries)
        bad = health.unhealthy(results)
        now = rt.clock.now()
        elapsed = c.format_duration((now - wait.started).total_seconds())
        if not bad:
            await self._succeed(ks, wait)
            return
        listing = ", ".join(r.describe() for r in bad)
        if any(r.status == health.FAILED for r in bad):
            await self._fail(ks, c.HEALTH_CHECK_FAILED,
                             f"health check failed after {elapsed}: failed early due to stalled resources: [{listing}]",
                             revision=wait.revision, stalled=False, retry=wait.retry)
            return
        if now >= wait.deadline:
            await self._fail(ks, c.HEALTH_CHECK_FAILED,
                             f"health check failed after {c.format_duration(wait.timeout)}: timeout waiting for: "
                             f"[{listing}]", revision=wait.revision, stalled=False, retry=wait.retry)
            return
        new_revision = wait.revision != (ks.get("status") or {}).get("lastAppliedRevision")
        updated = await self._progressing(
            ks, wait.revision, new_revision,
            f"Running health checks for revision {wait.revision} with a timeout of "
            f"{c.format_duration(wait.timeout)}: waiting for: [{listing}]",
        )
        if first and updated is not None:
            rt.events.kustomization(name, "progressing", revision=wait.revision, ready=c.status_of(updated),
                                    reason=c.PROGRESSING, message=listing)
        rt.schedule(HEALTH, name, rt.timing.health_poll)

    # ------------------------------------------------------------------ outcomes

    async def _progressing(self, ks: dict[str, Any], revision: str, new_revision: bool, message: str
                           ) -> dict[str, Any] | None:
        """Reconciling=True with ``message``; Ready=Unknown too while a new revision is rolling out
        (a Ready App being re-checked at the same revision stays Ready until a verdict)."""
        now = self.rt.clock.now()
        status = dict(ks.get("status") or {})
        generation = int(ks["metadata"].get("generation", 1))
        conds = c.drop(status.get("conditions"), c.STALLED)
        conds = c.put(conds, c.RECONCILING, "True", c.PROGRESSING, message, generation=generation, now=now)
        if new_revision:
            conds = c.put(conds, c.READY, "Unknown", c.PROGRESSING, message, generation=generation, now=now)
        return await self.rt.write_status(ks, {**status, "conditions": conds})

    async def _succeed(self, ks: dict[str, Any], wait: HealthWait) -> None:
        rt = self.rt
        name = ks["metadata"]["name"]
        now = rt.clock.now()
        status = dict(ks.get("status") or {})
        was_ready = c.status_of(ks) == "True" and status.get("lastAppliedRevision") == wait.revision
        message = f"Applied revision: {wait.revision}"
        conds = c.drop(status.get("conditions"), c.RECONCILING, c.STALLED)
        conds = c.put(conds, c.HEALTHY, "True", c.SUCCEEDED,
                      f"Health check passed in {c.format_duration((now - wait.started).total_seconds())}",
                      generation=wait.generation, now=now)
        conds = c.put(conds, c.READY, "True", c.RECONCILIATION_SUCCEEDED, message, generation=wait.generation,
                      now=now)
        await rt.write_status(ks, {**status, "conditions": conds, "lastAppliedRevision": wait.revision,
                                   "lastAttemptedRevision": wait.revision, "observedGeneration": wait.generation})
        self.forget(name)
        rt.schedule(KUSTOMIZATION, name, wait.interval)
        rt.events.kustomization(name, "reconciled", revision=wait.revision, ready="True",
                                reason=c.RECONCILIATION_SUCCEEDED, message=message)
        if not was_ready:
            await self.kick_dependents(name)

    async def _pending(self, ks: dict[str, Any], message: str, revision: str) -> None:
        rt = self.rt
        name = ks["metadata"]["name"]
        now = rt.clock.now()
        status = dict(ks.get("status") or {})
        generation = int(ks["metadata"].get("generation", 1))
        conds = c.drop(status.get("conditions"), c.STALLED)
        conds = c.put(conds, c.RECONCILING, "True", c.PROGRESSING, message, generation=generation, now=now)
        conds = c.put(conds, c.READY, "False", c.DEPENDENCY_NOT_READY, message, generation=generation, now=now)
        await rt.write_status(ks, {**status, "conditions": conds})
        self.forget(name)
        rt.schedule(KUSTOMIZATION, name, rt.timing.dependency_retry)
        rt.events.kustomization(name, "pending", revision=revision, ready="False", reason=c.DEPENDENCY_NOT_READY,
                                message=message)

    async def _fail(self, ks: dict[str, Any], reason: str, message: str, *, revision: str, stalled: bool,
                    retry: float) -> None:
        rt = self.rt
        name = ks["metadata"]["name"]
        now = rt.clock.now()
        status = dict(ks.get("status") or {})
        generation = int(ks["metadata"].get("generation", 1))
        conds = c.drop(status.get("conditions"), c.RECONCILING, c.STALLED)
        if stalled:
            conds = c.put(conds, c.STALLED, "True", reason, message, generation=generation, now=now)
        if reason == c.HEALTH_CHECK_FAILED:
            conds = c.put(conds, c.HEALTHY, "False", reason, message, generation=generation, now=now)
        conds = c.put(conds, c.READY, "False", reason, message, generation=generation, now=now)
        new_status = {**status, "conditions": conds, "observedGeneration": generation}
        if revision:
            new_status["lastAttemptedRevision"] = revision
        await rt.write_status(ks, new_status)
        self.forget(name)
        rt.schedule(KUSTOMIZATION, name, retry)
        rt.events.kustomization(name, "stalled" if stalled else "failed", revision=revision, ready="False",
                                reason=reason, message=message)

    async def kick_dependents(self, name: str) -> None:
        """Queue every Kustomization that depends on ``name`` (it just became Ready, or went away)."""
        rt = self.rt
        listed = await rt.offload(rt.kube.list, KUSTOMIZE_API, "Kustomization", FLUX_NAMESPACE)
        for other in listed:
            if (FLUX_NAMESPACE, name) in specs.depends_on(other):
                rt.enqueue(KUSTOMIZATION, other["metadata"]["name"])
