"""The controllers a real control plane runs, reduced to what clients observe (KWOK-style).

* Deployment → ReplicaSets named ``<deployment>-<pod-template-hash>``; rolling updates honour
  ``maxSurge``/``maxUnavailable`` with upstream's arithmetic, ``Recreate`` scales old to zero first;
  status replicas/updated/ready/available/unavailable, ``observedGeneration``, the ``Available`` and
  ``Progressing`` conditions (``ProgressDeadlineExceeded`` on the clock) and revision annotations.
* ReplicaSet → Pods from the template (``<rs>-<5 chars>``), surplus pods removed in upstream's
  preference order, ``minReadySeconds`` honoured on the clock.
* StatefulSet → ``<name>-0..n-1`` created in order (``OrderedReady``) or all at once (``Parallel``),
  scaled down from the highest ordinal, rolling updates one pod at a time from the top.
* Job → pods up to ``parallelism`` until ``completions`` succeed (``SuccessCriteriaMet`` +
  ``Complete``), or ``backoffLimit`` failures (``FailureTarget`` + ``Failed``).
* Namespace termination and the garbage collector (background / foreground / orphan).

Every controller reacts to store events and re-reads what it needs through indexes (owner uid →
dependents); none lists the whole store. Reconciles are keyed and de-duplicated, and status writes
that change nothing are no-ops in the store, so reconcile chains always settle.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from .errors import ApiError
from .patch import clone
from .resources import GR, ResourceType
from .selectors import from_label_selector, labels_match
from .store import CRDS, FOREGROUND, NAMESPACES, ClusterStore, Event, parse_time

PODS: GR = ("", "pods")
REPLICASETS: GR = ("apps", "replicasets")
DEPLOYMENTS: GR = ("apps", "deployments")
STATEFULSETS: GR = ("apps", "statefulsets")
JOBS: GR = ("batch", "jobs")
HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: dict[str, Any], collision_count: int = 0) -> str:
    """A stable short hash of a pod template, spelled like upstream's (FNV-32a, safe alphabet)."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode() + str(collision_count).encode()
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(_SAFE[ord(ch) % len(_SAFE)] for ch in str(value))


def controller_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def owner_ref(owner: dict[str, Any], controller: bool = True) -> dict[str, Any]:
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def condition(conditions: list[dict[str, Any]] | None, kind: str) -> dict[str, Any] | None:
    return next((c for c in conditions or [] if c.get("type") == kind), None)


def set_condition(
    conditions: list[dict[str, Any]] | None,
    kind: str,
    status: str,
    reason: str,
    message: str,
    now: str,
    *,
    update_time: bool = False,
    touched: bool = False,
) -> list[dict[str, Any]]:
    """Upsert a condition; timestamps move only when something changed (keeps reconciles idempotent)."""
    out = [dict(c) for c in conditions or []]
    existing = next((c for c in out if c.get("type") == kind), None)
    if existing is None:
        entry: dict[str, Any] = {"type": kind, "status": status}
        if update_time:
            entry["lastUpdateTime"] = now
        entry.update({"lastTransitionTime": now, "reason": reason, "message": message})
        out.append(entry)
        return out
    changed = existing.get("reason") != reason or existing.get("message") != message
    if existing.get("status") != status:
        existing["lastTransitionTime"] = now
        changed = True
    existing.update({"status": status, "reason": reason, "message": message})
    if update_time and (changed or touched):
        existing["lastUpdateTime"] = now
    return out


def pod_ready(pod: dict[str, Any]) -> bool:
    ready = condition((pod.get("status") or {}).get("conditions"), "Ready")
    return bool(ready and ready.get("status") == "True")


def pod_active(pod: dict[str, Any]) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and (pod.get("status") or {}).get("phase") not in (
        "Succeeded",
        "Failed",
    )


def resolve_int_or_percent(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        scaled = int(value[:-1]) * total / 100
        return math.ceil(scaled) if round_up else math.floor(scaled)
    return int(value or 0)


def record_event(
    store: ClusterStore, involved: dict[str, Any], kind: str, reason: str, message: str, component: str
) -> None:
    """Write a core/v1 Event about ``involved`` (what ``kubectl describe`` and ``get events`` show).

    A repeat of the same event (object, type, reason, message, source) bumps ``count`` and
    ``lastTimestamp`` of the existing one, as the kubelet's event correlator does, so a pod that
    backs off for days of virtual time adds a handful of events, not thousands.
    """
    if not store.record_events:
        return
    rt = store.registry.require("", "v1", "events")
    meta = involved["metadata"]
    namespace = meta.get("namespace") or "default"
    now = store.timestamp()
    key = (meta.get("uid", ""), kind, reason, message, component)
    seen = store.event_keys.get(key)
    if seen is not None and store.find(rt, namespace, seen) is not None:

        def again(current: dict[str, Any]) -> dict[str, Any]:
            current["count"] = int(current.get("count", 1)) + 1
            current["lastTimestamp"] = now
            return current

        with contextlib.suppress(ApiError):
            store.mutate(rt, namespace, seen, again)
        return
    event = {
        "metadata": {"name": f"{meta['name']}.{store.random_suffix(10)}", "namespace": namespace},
        "involvedObject": {
            "kind": involved.get("kind"),
            "namespace": meta.get("namespace"),
            "name": meta["name"],
            "uid": meta.get("uid"),
            "apiVersion": involved.get("apiVersion"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "reason": reason,
        "message": message,
        "type": kind,
        "source": {"component": component},
        "reportingComponent": component,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    with contextlib.suppress(ApiError):  # the namespace is going away; upstream drops such events too
        store.event_keys[key] = store.create(rt, namespace, event)["metadata"]["name"]


class Controllers:
    """Installs every controller's reactions on one cluster's store."""

    def __init__(self, store: ClusterStore) -> None:
        self.store = store
        reg = store.registry

        def rt(group: str, plural: str) -> ResourceType:
            found = reg.storage_type((group, plural))
            assert found is not None
            return found

        self.pods = rt("", "pods")
        self.replicasets = rt("apps", "replicasets")
        self.deployments = rt("apps", "deployments")
        self.statefulsets = rt("apps", "statefulsets")
        self.jobs = rt("batch", "jobs")
        self.namespaces = rt("", "namespaces")
        self._wakeups: dict[tuple[Callable[[Any], None], Any], tuple[Any, Any]] = {}
        store.add_reaction(self._react)
        for ns in list(store.iter_objects(NAMESPACES, "")):  # namespaces that predate the controllers
            store.after(0, self.default_service_account, ns["metadata"]["name"])

    def _cancel_wake(self, handler: Callable[[Any], None], key: Any) -> None:
        pending = self._wakeups.pop((handler, key), None)
        if pending is not None and pending[1] is not None:
            pending[1].cancel()

    def _wake(self, handler: Callable[[Any], None], key: Any, seconds: float) -> None:
        """Re-run ``handler(key)`` after ``seconds`` of clock time; one pending wake-up per key."""
        due = self.store.clock.now() + timedelta(seconds=seconds)
        pending = self._wakeups.get((handler, key))
        if pending is not None:
            if pending[0] <= due and pending[0] > self.store.clock.now():
                return
            if pending[1] is not None:
                pending[1].cancel()

        def fire(arg: Any) -> None:
            self._wakeups.pop((handler, key), None)
            handler(arg)

        self._wakeups[(handler, key)] = (due, None)
        handle = self.store.after(seconds, fire, key)
        if (handler, key) in self._wakeups:
            self._wakeups[(handler, key)] = (due, handle)

    # ------------------------------------------------------------------ dispatch

    def _react(self, event: Event) -> None:
        store = self.store
        gr = event.gr
        if gr == DEPLOYMENTS and event.type != "DELETED":
            store.enqueue(self.reconcile_deployment, (event.namespace, event.name))
        elif gr == REPLICASETS:
            if event.type != "DELETED":
                store.enqueue(self.reconcile_replicaset, (event.namespace, event.name))
            self._enqueue_owner(event, "Deployment", self.reconcile_deployment)
        elif gr == STATEFULSETS and event.type != "DELETED":
            store.enqueue(self.reconcile_statefulset, (event.namespace, event.name))
        elif gr == JOBS and event.type != "DELETED":
            store.enqueue(self.reconcile_job, (event.namespace, event.name))
        elif gr == PODS:
            self._enqueue_owner(event, "ReplicaSet", self.reconcile_replicaset)
            self._enqueue_owner(event, "StatefulSet", self.reconcile_statefulset)
            self._enqueue_owner(event, "Job", self.reconcile_job)
        if gr == NAMESPACES and event.type == "MODIFIED" and event.obj["metadata"].get("deletionTimestamp"):
            store.enqueue(self.reconcile_namespace, event.name)
        elif gr == NAMESPACES and event.type == "ADDED":
            store.enqueue(self.default_service_account, event.name)
        # Garbage collection and namespace emptiness, for every resource.
        meta = event.obj["metadata"]
        if event.type == "DELETED":
            store.enqueue(self.collect_dependents, meta["uid"])
            for ref in meta.get("ownerReferences") or []:
                store.enqueue(self.finish_foreground, ref.get("uid"))
            if event.namespace:
                ns = store.find(self.namespaces, "", event.namespace)
                if ns is not None and ns["metadata"].get("deletionTimestamp"):
                    store.enqueue(self.reconcile_namespace, event.namespace)
        elif (
            event.type == "MODIFIED" and FOREGROUND in (meta.get("finalizers") or ()) and meta.get("deletionTimestamp")
        ):
            store.enqueue(self.delete_foreground_dependents, meta["uid"])

    def _enqueue_owner(self, event: Event, kind: str, handler: Callable[[Any], None]) -> None:
        for obj in (event.obj, event.old):
            ref = controller_of(obj) if obj else None
            if ref is not None and ref.get("kind") == kind:
                self.store.enqueue(handler, (event.namespace, ref.get("name")))

    def _live(self, rt: ResourceType, key: tuple[str, str]) -> dict[str, Any] | None:
        obj = self.store.find(rt, key[0], key[1])
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return None
        return obj

    def _owned(self, owner: dict[str, Any], gr: GR) -> list[dict[str, Any]]:
        uid = owner["metadata"]["uid"]
        return [o for o in self.store.dependents(uid, gr) if (controller_of(o) or {}).get("uid") == uid]

    def _write_status(self, rt: ResourceType, obj: dict[str, Any], status: dict[str, Any]) -> None:
        if obj.get("status") == status:
            return
        meta = obj["metadata"]

        def change(current: dict[str, Any]) -> dict[str, Any]:
            current["status"] = status
            return current

        self.store.mutate(rt, meta.get("namespace"), meta["name"], change, subresource="status")

    def _set_spec_replicas(
        self, rt: ResourceType, obj: dict[str, Any], replicas: int, annotations: dict[str, str] | None = None
    ) -> dict[str, Any]:
        meta = obj["metadata"]

        def change(current: dict[str, Any]) -> dict[str, Any]:
            current.setdefault("spec", {})["replicas"] = replicas
            if annotations:
                current["metadata"].setdefault("annotations", {}).update(annotations)
            return current

        return self.store.mutate(rt, meta.get("namespace"), meta["name"], change)

    def _pod_from_template(
        self,
        owner: dict[str, Any],
        template: dict[str, Any],
        *,
        name: str = "",
        generate_name: str = "",
        labels: dict[str, str] | None = None,
        spec_extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        template_meta = template.get("metadata") or {}
        meta: dict[str, Any] = {
            "namespace": owner["metadata"]["namespace"],
            "labels": {**(template_meta.get("labels") or {}), **(labels or {})},
            "ownerReferences": [owner_ref(owner)],
        }
        if template_meta.get("annotations"):
            meta["annotations"] = dict(template_meta["annotations"])
        if template_meta.get("finalizers"):
            meta["finalizers"] = list(template_meta["finalizers"])
        if name:
            meta["name"] = name
        else:
            meta["generateName"] = generate_name
        spec = clone(template.get("spec") or {})
        spec.update(spec_extra or {})
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
        return self.store.create(self.pods, meta["namespace"], pod)

    # ------------------------------------------------------------------ ReplicaSet

    def reconcile_replicaset(self, key: tuple[str, str]) -> None:
        store = self.store
        rs = self._live(self.replicasets, key)
        if rs is None:
            return
        spec = rs.get("spec") or {}
        want = int(spec.get("replicas", 1))
        pods = self._owned(rs, PODS)
        active = [p for p in pods if pod_active(p)]
        diff = want - len(active)
        name = rs["metadata"]["name"]
        if diff > 0:
            for _ in range(diff):
                pod = self._pod_from_template(rs, spec.get("template") or {}, generate_name=f"{name}-")
                record_event(
                    store,
                    rs,
                    "Normal",
                    "SuccessfulCreate",
                    f"Created pod: {pod['metadata']['name']}",
                    "replicaset-controller",
                )
        elif diff < 0:
            for pod in sorted(active, key=_deletion_rank)[:-diff]:
                try:
                    store.delete(self.pods, key[0], pod["metadata"]["name"])
                except ApiError:
                    continue
                record_event(
                    store,
                    rs,
                    "Normal",
                    "SuccessfulDelete",
                    f"Deleted pod: {pod['metadata']['name']}",
                    "replicaset-controller",
                )
        rs = self._live(self.replicasets, key)
        if rs is None:
            return
        pods = [p for p in self._owned(rs, PODS) if pod_active(p)]
        template_labels = ((rs.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}
        ready = [p for p in pods if pod_ready(p)]
        available, wake = self._available(ready, int((rs.get("spec") or {}).get("minReadySeconds", 0)))
        if wake is not None:
            self._wake(self.reconcile_replicaset, key, wake)
        status: dict[str, Any] = {
            "replicas": len(pods),
            "fullyLabeledReplicas": sum(
                1
                for p in pods
                if labels_match(
                    tuple(from_label_selector({"matchLabels": template_labels})), p["metadata"].get("labels")
                )
            ),
            "readyReplicas": len(ready),
            "availableReplicas": available,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        status = {k: v for k, v in status.items() if v or k in ("replicas", "observedGeneration")}
        old_conditions = (rs.get("status") or {}).get("conditions")
        if old_conditions:
            status["conditions"] = old_conditions
        self._write_status(self.replicasets, rs, status)

    def _available(self, ready: list[dict[str, Any]], min_ready: int) -> tuple[int, float | None]:
        """Pods ready for at least ``minReadySeconds``, and when to look again for the rest."""
        if min_ready <= 0:
            return len(ready), None
        now = self.store.clock.now()
        available, wake = 0, None
        for pod in ready:
            since = condition((pod.get("status") or {}).get("conditions"), "Ready") or {}
            try:
                at = parse_time(since.get("lastTransitionTime", "")) + timedelta(seconds=min_ready)
            except ValueError:
                available += 1
                continue
            if at <= now:
                available += 1
            else:
                delay = (at - now).total_seconds()
                wake = delay if wake is None else min(wake, delay)
        return available, wake

    # ------------------------------------------------------------------ Deployment

    def reconcile_deployment(self, key: tuple[str, str]) -> None:
        dep = self._live(self.deployments, key)
        if dep is None:
            return
        spec = dep.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        template = spec.get("template") or {}
        rss = sorted(
            self._owned(dep, REPLICASETS),
            key=lambda r: (r["metadata"]["creationTimestamp"], r["metadata"]["name"]),
        )
        new_rs = next((r for r in rss if _equal_ignore_hash((r.get("spec") or {}).get("template"), template)), None)
        old_rss = [r for r in rss if r is not new_rs]
        revisions = [int((r["metadata"].get("annotations") or {}).get(REVISION, "0") or 0) for r in rss]
        max_revision = max(revisions, default=0)
        strategy = spec.get("strategy") or {}
        rolling = strategy.get("rollingUpdate") or {}
        max_surge = resolve_int_or_percent(rolling.get("maxSurge", "25%"), replicas, True)
        max_unavailable = resolve_int_or_percent(rolling.get("maxUnavailable", "25%"), replicas, False)
        if max_surge == 0 and max_unavailable == 0:
            max_unavailable = 1
        recreate = strategy.get("type") == "Recreate"
        if recreate:
            max_surge, max_unavailable = 0, replicas
        paused = bool(spec.get("paused"))
        created = False
        if new_rs is None and not paused:
            new_rs = self._create_replicaset(dep, template, max_revision + 1, replicas, rss, recreate, max_surge)
            created = new_rs is not None
        elif new_rs is not None:
            revision = (new_rs["metadata"].get("annotations") or {}).get(REVISION, "0")
            if old_rss and int(revision or 0) < max_revision:
                new_rs = self._annotate(new_rs, {REVISION: str(max_revision + 1)})
        if new_rs is not None and not paused:
            if recreate:
                self._recreate(dep, new_rs, old_rss, replicas)
            else:
                self._rolling(dep, new_rs, old_rss, replicas, max_surge, max_unavailable)
        elif (
            paused
            and new_rs is not None
            and not old_rss
            and int((new_rs.get("spec") or {}).get("replicas", 0)) != replicas
        ):
            self._scale_rs(dep, new_rs, replicas)
        self._cleanup(dep, new_rs)
        dep = self._live(self.deployments, key)
        if dep is None:
            return
        rss = self._owned(dep, REPLICASETS)
        new_rs = next((r for r in rss if _equal_ignore_hash((r.get("spec") or {}).get("template"), template)), None)
        self._deployment_status(dep, rss, new_rs, replicas, max_unavailable, created)
        revision = (new_rs["metadata"].get("annotations") or {}).get(REVISION) if new_rs else None
        if revision and (dep["metadata"].get("annotations") or {}).get(REVISION) != revision:
            self._annotate(dep, {REVISION: revision}, rt=self.deployments)

    def _create_replicaset(
        self,
        dep: dict[str, Any],
        template: dict[str, Any],
        revision: int,
        replicas: int,
        rss: list[dict[str, Any]],
        recreate: bool,
        max_surge: int,
    ) -> dict[str, Any] | None:
        store = self.store
        spec = dep.get("spec") or {}
        collision = int((dep.get("status") or {}).get("collisionCount", 0))
        phash = template_hash(template, collision)
        rs_template = clone(template)
        rs_template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = phash
        selector = clone(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = phash
        current = sum(int((r.get("spec") or {}).get("replicas", 0)) for r in rss)
        # Recreate starts the new ReplicaSet only once old pods are gone; RollingUpdate may surge.
        surge_room = max(0, min(replicas, replicas + max_surge - current))
        initial = (0 if current else replicas) if recreate else surge_room
        name = f"{dep['metadata']['name']}-{phash}"
        labels = dict((rs_template.get("metadata") or {}).get("labels") or {})
        body = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": dep["metadata"]["namespace"],
                "labels": labels,
                "annotations": {
                    REVISION: str(revision),
                    "deployment.kubernetes.io/desired-replicas": str(replicas),
                    "deployment.kubernetes.io/max-replicas": str(replicas + max_surge),
                },
                "ownerReferences": [owner_ref(dep)],
            },
            "spec": {
                "replicas": initial,
                "minReadySeconds": int(spec.get("minReadySeconds", 0)),
                "selector": selector,
                "template": rs_template,
            },
        }
        try:
            rs = store.create(self.replicasets, dep["metadata"]["namespace"], body)
        except ApiError as exc:
            if exc.code != 409:
                raise
            # A hash collision with a ReplicaSet this Deployment does not own: bump collisionCount
            # and let the status write re-trigger us, exactly upstream's recovery.
            status = dict(dep.get("status") or {}, collisionCount=collision + 1)
            self._write_status(self.deployments, dep, status)
            return None
        record_event(
            store,
            dep,
            "Normal",
            "ScalingReplicaSet",
            f"Scaled up replica set {name} from 0 to {initial}",
            "deployment-controller",
        )
        return rs

    def _annotate(
        self, obj: dict[str, Any], annotations: dict[str, str], rt: ResourceType | None = None
    ) -> dict[str, Any]:
        meta = obj["metadata"]

        def change(current: dict[str, Any]) -> dict[str, Any]:
            current["metadata"].setdefault("annotations", {}).update(annotations)
            return current

        return self.store.mutate(rt or self.replicasets, meta.get("namespace"), meta["name"], change)

    def _scale_rs(self, dep: dict[str, Any], rs: dict[str, Any], replicas: int) -> dict[str, Any]:
        before = int((rs.get("spec") or {}).get("replicas", 0))
        if before == replicas:
            return rs
        spec = dep.get("spec") or {}
        rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        want = int(spec.get("replicas", 1))
        surge = resolve_int_or_percent(rolling.get("maxSurge", "25%"), want, True)
        updated = self._set_spec_replicas(
            self.replicasets,
            rs,
            replicas,
            {
                "deployment.kubernetes.io/desired-replicas": str(want),
                "deployment.kubernetes.io/max-replicas": str(want + surge),
            },
        )
        verb = "up" if replicas > before else "down"
        record_event(
            self.store,
            dep,
            "Normal",
            "ScalingReplicaSet",
            f"Scaled {verb} replica set {rs['metadata']['name']} from {before} to {replicas}",
            "deployment-controller",
        )
        return updated

    def _rolling(
        self,
        dep: dict[str, Any],
        new_rs: dict[str, Any],
        old_rss: list[dict[str, Any]],
        replicas: int,
        max_surge: int,
        max_unavailable: int,
    ) -> None:
        def spec_replicas(rs: dict[str, Any]) -> int:
            return int((rs.get("spec") or {}).get("replicas", 0))

        def available(rs: dict[str, Any]) -> int:
            return int((rs.get("status") or {}).get("availableReplicas", 0))

        # Scale the new ReplicaSet up (or down, if the Deployment shrank).
        new_replicas = spec_replicas(new_rs)
        if new_replicas > replicas:
            new_rs = self._scale_rs(dep, new_rs, replicas)
        elif new_replicas < replicas:
            current = sum(spec_replicas(r) for r in [new_rs, *old_rss])
            max_total = replicas + max_surge
            if current < max_total:
                scale_up = min(max_total - current, replicas - new_replicas)
                new_rs = self._scale_rs(dep, new_rs, new_replicas + scale_up)
        # Scale old ReplicaSets down without dropping below minAvailable.
        old_count = sum(spec_replicas(r) for r in old_rss)
        if old_count == 0:
            return
        all_count = old_count + spec_replicas(new_rs)
        min_available = replicas - max_unavailable
        new_unavailable = spec_replicas(new_rs) - available(new_rs)
        max_scaled_down = all_count - min_available - new_unavailable
        if max_scaled_down <= 0:
            return
        scaled = 0
        remaining_old: list[dict[str, Any]] = []
        for rs in old_rss:  # unhealthy old replicas go first
            unhealthy = spec_replicas(rs) - available(rs)
            if unhealthy <= 0 or scaled >= max_scaled_down:
                remaining_old.append(rs)
                continue
            down = min(unhealthy, max_scaled_down - scaled)
            scaled += down
            remaining_old.append(self._scale_rs(dep, rs, spec_replicas(rs) - down))
        available_total = sum(available(r) for r in [new_rs, *remaining_old])
        if available_total <= min_available:
            return
        budget = available_total - min_available
        done = 0
        for rs in remaining_old:
            if done >= budget:
                break
            down = min(spec_replicas(rs), budget - done)
            if down > 0:
                self._scale_rs(dep, rs, spec_replicas(rs) - down)
                done += down

    def _recreate(
        self, dep: dict[str, Any], new_rs: dict[str, Any], old_rss: list[dict[str, Any]], replicas: int
    ) -> None:
        for rs in old_rss:
            if int((rs.get("spec") or {}).get("replicas", 0)):
                self._scale_rs(dep, rs, 0)
        still_running = sum(int((r.get("status") or {}).get("replicas", 0)) for r in old_rss)
        if still_running == 0 and int((new_rs.get("spec") or {}).get("replicas", 0)) != replicas:
            self._scale_rs(dep, new_rs, replicas)

    def _cleanup(self, dep: dict[str, Any], new_rs: dict[str, Any] | None) -> None:
        limit = int((dep.get("spec") or {}).get("revisionHistoryLimit", 10))
        old = [
            r
            for r in self._owned(dep, REPLICASETS)
            if r is not new_rs
            and (new_rs is None or r["metadata"]["uid"] != new_rs["metadata"]["uid"])
            and not int((r.get("spec") or {}).get("replicas", 0))
            and not int((r.get("status") or {}).get("replicas", 0))
        ]
        if len(old) <= limit:
            return
        old.sort(key=lambda r: int((r["metadata"].get("annotations") or {}).get(REVISION, "0") or 0))
        for rs in old[: len(old) - limit]:
            try:
                self.store.delete(self.replicasets, rs["metadata"]["namespace"], rs["metadata"]["name"])
            except ApiError:
                continue

    def _deployment_status(
        self,
        dep: dict[str, Any],
        rss: list[dict[str, Any]],
        new_rs: dict[str, Any] | None,
        replicas: int,
        max_unavailable: int,
        created: bool,
    ) -> None:
        def total(field: str, items: list[dict[str, Any]]) -> int:
            return sum(int((r.get("status") or {}).get(field, 0)) for r in items)

        old = dep.get("status") or {}
        now = self.store.timestamp()
        status: dict[str, Any] = {
            "observedGeneration": dep["metadata"].get("generation", 1),
            "replicas": total("replicas", rss),
            "updatedReplicas": total("replicas", [new_rs]) if new_rs else 0,
            "readyReplicas": total("readyReplicas", rss),
            "availableReplicas": total("availableReplicas", rss),
        }
        status["unavailableReplicas"] = max(0, replicas - status["availableReplicas"])
        status = {k: v for k, v in status.items() if v or k == "observedGeneration"}
        if old.get("collisionCount"):
            status["collisionCount"] = old["collisionCount"]
        conditions = old.get("conditions")
        if status.get("availableReplicas", 0) >= replicas - max_unavailable:
            conditions = set_condition(
                conditions,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                now,
                update_time=True,
            )
        else:
            conditions = set_condition(
                conditions,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                now,
                update_time=True,
            )
        rs_name = new_rs["metadata"]["name"] if new_rs else ""
        complete = (
            new_rs is not None
            and status.get("updatedReplicas", 0) == replicas
            and status.get("replicas", 0) == replicas
            and status.get("availableReplicas", 0) == replicas
        )
        progressed = any(
            status.get(f, 0) > old.get(f, 0) for f in ("updatedReplicas", "readyReplicas", "availableReplicas")
        ) or (status.get("replicas", 0) < old.get("replicas", 0))
        deadline = (dep.get("spec") or {}).get("progressDeadlineSeconds", 600)
        progressing = condition(conditions, "Progressing")
        if (dep.get("spec") or {}).get("paused"):
            conditions = set_condition(
                conditions,
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused",
                now,
                update_time=True,
            )
        elif complete:
            conditions = set_condition(
                conditions,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{rs_name}" has successfully progressed.',
                now,
                update_time=True,
            )
        elif created:
            conditions = set_condition(
                conditions,
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                f'Created new replica set "{rs_name}"',
                now,
                update_time=True,
                touched=True,
            )
        elif (
            progressed
            or progressing is None
            or progressing.get("reason") in ("NewReplicaSetAvailable", "DeploymentPaused", "DeploymentResumed")
        ):
            conditions = set_condition(
                conditions,
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                f'ReplicaSet "{rs_name}" is progressing.',
                now,
                update_time=True,
                touched=True,
            )
        elif progressing.get("status") == "True" and deadline is not None:
            since = parse_time(progressing.get("lastUpdateTime") or progressing["lastTransitionTime"])
            due = since + timedelta(seconds=int(deadline))
            if self.store.clock.now() >= due:
                conditions = set_condition(
                    conditions,
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    f'ReplicaSet "{rs_name}" has timed out progressing.',
                    now,
                    update_time=True,
                )
        progressing = condition(conditions, "Progressing")
        if (
            not complete
            and progressing
            and progressing.get("status") == "True"
            and deadline is not None
            and not (dep.get("spec") or {}).get("paused")
        ):
            since = parse_time(progressing.get("lastUpdateTime") or progressing["lastTransitionTime"])
            wait = (since + timedelta(seconds=int(deadline)) - self.store.clock.now()).total_seconds()
            meta = dep["metadata"]
            self._wake(self.reconcile_deployment, (meta["namespace"], meta["name"]), max(wait, 0) + 1e-3)
        else:
            meta = dep["metadata"]
            self._cancel_wake(self.reconcile_deployment, (meta["namespace"], meta["name"]))
        status["conditions"] = _ordered_conditions(conditions, ("Available", "Progressing"))
        self._write_status(self.deployments, dep, status)

    # ------------------------------------------------------------------ StatefulSet

    def reconcile_statefulset(self, key: tuple[str, str]) -> None:
        store = self.store
        sts = self._live(self.statefulsets, key)
        if sts is None:
            return
        spec = sts.get("spec") or {}
        name = sts["metadata"]["name"]
        replicas = int(spec.get("replicas", 1))
        template = spec.get("template") or {}
        update_revision = f"{name}-{template_hash(template)}"
        status = sts.get("status") or {}
        current_revision = status.get("currentRevision") or update_revision
        parallel = spec.get("podManagementPolicy") == "Parallel"
        pods = {self._ordinal(p, name): p for p in self._owned(sts, PODS)}
        pods.pop(-1, None)

        def healthy(pod: dict[str, Any]) -> bool:
            return pod_active(pod) and (pod.get("status") or {}).get("phase") == "Running" and pod_ready(pod)

        # Replace terminal pods, create missing ones (in order unless Parallel).
        for ordinal in range(replicas):
            pod = pods.get(ordinal)
            if (
                pod is not None
                and (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
                and not pod["metadata"].get("deletionTimestamp")
            ):
                store.delete(self.pods, key[0], pod["metadata"]["name"])
                pods.pop(ordinal)
                pod = None
            if pod is None:
                revision = (
                    update_revision
                    if ordinal >= _partition(spec) or current_revision == update_revision
                    else current_revision
                )
                pod_name = f"{name}-{ordinal}"
                pods[ordinal] = self._pod_from_template(
                    sts,
                    template,
                    name=pod_name,
                    labels={
                        "controller-revision-hash": revision,
                        "statefulset.kubernetes.io/pod-name": pod_name,
                        "apps.kubernetes.io/pod-index": str(ordinal),
                    },
                    spec_extra={
                        "hostname": pod_name,
                        **({"subdomain": spec["serviceName"]} if spec.get("serviceName") else {}),
                    },
                )
                record_event(
                    store,
                    sts,
                    "Normal",
                    "SuccessfulCreate",
                    f"create Pod {pod_name} in StatefulSet {name} successful",
                    "statefulset-controller",
                )
                if not parallel:
                    break
            elif not parallel and not healthy(pod):
                break
        # Scale down from the highest ordinal, one at a time unless Parallel.
        surplus = sorted((o for o in pods if o >= replicas), reverse=True)
        everyone_healthy = all(healthy(p) for o, p in pods.items() if o < replicas)
        for ordinal in surplus:
            pod = pods[ordinal]
            if pod["metadata"].get("deletionTimestamp"):
                if not parallel:
                    break
                continue
            if not parallel and not everyone_healthy:
                break
            store.delete(self.pods, key[0], pod["metadata"]["name"])
            record_event(
                store,
                sts,
                "Normal",
                "SuccessfulDelete",
                f"delete Pod {pod['metadata']['name']} in StatefulSet {name} successful",
                "statefulset-controller",
            )
            if not parallel:
                break
        # Rolling update: replace the highest outdated pod once all pods are healthy.
        update = spec.get("updateStrategy") or {}
        live = {o: p for o, p in pods.items() if o < replicas and store.find(self.pods, key[0], p["metadata"]["name"])}
        if (
            update.get("type", "RollingUpdate") == "RollingUpdate"
            and len(live) == replicas
            and all(healthy(p) for p in live.values())
        ):
            for ordinal in sorted(live, reverse=True):
                if ordinal < _partition(spec):
                    break
                pod = live[ordinal]
                if (pod["metadata"].get("labels") or {}).get("controller-revision-hash") != update_revision:
                    store.delete(self.pods, key[0], pod["metadata"]["name"])
                    break
        # Status.
        sts = self._live(self.statefulsets, key)
        if sts is None:
            return
        pods_now = [p for p in self._owned(sts, PODS) if not p["metadata"].get("deletionTimestamp")]
        ready = [p for p in pods_now if pod_ready(p)]
        updated = [
            p
            for p in pods_now
            if (p["metadata"].get("labels") or {}).get("controller-revision-hash") == update_revision
        ]
        current = [
            p
            for p in pods_now
            if (p["metadata"].get("labels") or {}).get("controller-revision-hash") == current_revision
        ]
        if len(updated) == replicas and len(pods_now) == replicas:
            current_revision = update_revision
            current = updated
        new_status: dict[str, Any] = {
            "observedGeneration": sts["metadata"].get("generation", 1),
            "replicas": len(pods_now),
            "readyReplicas": len(ready),
            "currentReplicas": len(current),
            "updatedReplicas": len(updated),
            "availableReplicas": len(ready),
            "currentRevision": current_revision,
            "updateRevision": update_revision,
            "collisionCount": 0,
        }
        new_status = {
            k: v
            for k, v in new_status.items()
            if v or k in ("replicas", "observedGeneration", "availableReplicas", "collisionCount")
        }
        self._write_status(self.statefulsets, sts, new_status)

    @staticmethod
    def _ordinal(pod: dict[str, Any], name: str) -> int:
        suffix = pod["metadata"]["name"][len(name) + 1 :]
        return int(suffix) if pod["metadata"]["name"].startswith(f"{name}-") and suffix.isdigit() else -1

    # ------------------------------------------------------------------ Job

    def reconcile_job(self, key: tuple[str, str]) -> None:
        store = self.store
        job = self._live(self.jobs, key)
        if job is None:
            return
        spec = job.get("spec") or {}
        status = dict(job.get("status") or {})
        conditions = status.get("conditions")
        now = store.timestamp()
        finished = any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions or [])
        pods = self._owned(job, PODS)
        active = [p for p in pods if pod_active(p)]
        succeeded = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Succeeded")
        failed = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Failed")
        name = job["metadata"]["name"]
        if finished:
            return
        if spec.get("suspend"):
            for pod in active:
                store.delete(self.pods, key[0], pod["metadata"]["name"])
            conditions = set_condition(
                conditions, "Suspended", "True", "JobSuspended", "Job suspended", now, update_time=False
            )
            active = []
        else:
            if condition(conditions, "Suspended"):
                conditions = set_condition(conditions, "Suspended", "False", "JobResumed", "Job resumed", now)
            status.setdefault("startTime", now)
        completions = spec.get("completions")
        parallelism = int(spec.get("parallelism", 1))
        backoff_limit = int(spec.get("backoffLimit", 6))
        done = (succeeded >= int(completions)) if completions is not None else (succeeded > 0 and not active)
        deadline = spec.get("activeDeadlineSeconds")
        if done:
            for pod in active:
                store.delete(self.pods, key[0], pod["metadata"]["name"])
            active = []
            conditions = set_condition(
                conditions,
                "SuccessCriteriaMet",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                now,
            )
            conditions = set_condition(
                conditions,
                "Complete",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                now,
            )
            status["completionTime"] = now
            record_event(store, job, "Normal", "Completed", "Job completed", "job-controller")
        elif failed > backoff_limit or (
            deadline is not None
            and status.get("startTime")
            and (store.clock.now() - parse_time(status["startTime"])).total_seconds() >= int(deadline)
        ):
            reason, message = (
                ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
                if failed > backoff_limit
                else ("DeadlineExceeded", "Job was active longer than specified deadline")
            )
            for pod in active:
                store.delete(self.pods, key[0], pod["metadata"]["name"])
            active = []
            conditions = set_condition(conditions, "FailureTarget", "True", reason, message, now)
            conditions = set_condition(conditions, "Failed", "True", reason, message, now)
            record_event(store, job, "Warning", reason, message, "job-controller")
        elif not spec.get("suspend"):
            remaining = (int(completions) - succeeded) if completions is not None else parallelism
            want = max(0, min(parallelism, remaining))
            for _ in range(want - len(active)):
                pod = self._pod_from_template(job, spec.get("template") or {}, generate_name=f"{name}-")
                active.append(pod)
                record_event(
                    store,
                    job,
                    "Normal",
                    "SuccessfulCreate",
                    f"Created pod: {pod['metadata']['name']}",
                    "job-controller",
                )
            if deadline is not None and status.get("startTime"):
                left = int(deadline) - (store.clock.now() - parse_time(status["startTime"])).total_seconds()
                self._wake(self.reconcile_job, key, max(left, 0) + 1e-3)
        status.update(
            {
                "active": len(active),
                "succeeded": succeeded,
                "failed": failed,
                "ready": sum(1 for p in active if pod_ready(p)),
                "terminating": 0,
                "uncountedTerminatedPods": {},
            }
        )
        status = {k: v for k, v in status.items() if v or k in ("ready", "terminating", "uncountedTerminatedPods")}
        if conditions:
            status["conditions"] = conditions
        job = self._live(self.jobs, key)
        if job is not None:
            self._write_status(self.jobs, job, status)

    # ------------------------------------------------------------------ Namespace

    def reconcile_namespace(self, name: str) -> None:
        store = self.store
        ns = store.find(self.namespaces, "", name)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        for gr in store.registry.storage_grs():
            rt = store.registry.storage_type(gr)
            if rt is None or not rt.namespaced:
                continue
            for obj in list(store.iter_objects(gr, name)):
                if obj["metadata"].get("deletionTimestamp"):
                    continue
                try:
                    store.delete(rt, name, obj["metadata"]["name"], grace_period=0)
                except ApiError:
                    continue
        if store.namespace_is_empty(name) and (ns.get("spec") or {}).get("finalizers"):

            def finalize(current: dict[str, Any]) -> dict[str, Any]:
                current.setdefault("spec", {})["finalizers"] = [
                    f for f in current["spec"].get("finalizers") or [] if f != "kubernetes"
                ]
                return current

            store.mutate(self.namespaces, "", name, finalize, subresource="finalize")

    def default_service_account(self, namespace: str) -> None:
        """Every namespace gets a ``default`` ServiceAccount, as the serviceaccount controller does."""
        rt = self.store.registry.require("", "v1", "serviceaccounts")
        assert rt is not None
        ns = self.store.find(self.namespaces, "", namespace)
        if ns is None or ns["metadata"].get("deletionTimestamp") or self.store.find(rt, namespace, "default"):
            return
        self.store.create(rt, namespace, {"metadata": {"name": "default"}})

    # ------------------------------------------------------------------ garbage collection

    def collect_dependents(self, owner_uid: str) -> None:
        """Background deletion: dependents whose every owner is gone are deleted; others lose the ref."""
        store = self.store
        if store.by_uid(owner_uid) is not None:
            return
        for dependent in store.dependents(owner_uid):
            meta = dependent["metadata"]
            rt = store.registry.storage_type(_gr_of(dependent, store))
            if rt is None:
                continue
            refs = meta.get("ownerReferences") or []
            alive = [r for r in refs if r.get("uid") != owner_uid and store.by_uid(r.get("uid", "")) is not None]
            if alive:

                def drop_ref(current: dict[str, Any], _uid: str = owner_uid) -> dict[str, Any]:
                    kept = [r for r in current["metadata"].get("ownerReferences") or [] if r.get("uid") != _uid]
                    current["metadata"]["ownerReferences"] = kept
                    return current

                store.mutate(rt, meta.get("namespace"), meta["name"], drop_ref)
            elif not meta.get("deletionTimestamp"):
                store.delete(rt, meta.get("namespace"), meta["name"], propagation="Background")

    def delete_foreground_dependents(self, owner_uid: str) -> None:
        """Foreground deletion: dependents go first; one that still has a live owner only loses the ref."""
        store = self.store
        for dependent in store.dependents(owner_uid):
            meta = dependent["metadata"]
            rt = store.registry.storage_type(_gr_of(dependent, store))
            if rt is None:
                continue
            solid = [
                r
                for r in meta.get("ownerReferences") or []
                if r.get("uid") != owner_uid
                and (owner := store.by_uid(r.get("uid", ""))) is not None
                and not owner["metadata"].get("deletionTimestamp")
            ]
            if solid:

                def drop_ref(current: dict[str, Any], _uid: str = owner_uid) -> dict[str, Any]:
                    current["metadata"]["ownerReferences"] = [
                        r for r in current["metadata"].get("ownerReferences") or [] if r.get("uid") != _uid
                    ]
                    return current

                store.mutate(rt, meta.get("namespace"), meta["name"], drop_ref)
            elif not meta.get("deletionTimestamp"):
                store.delete(rt, meta.get("namespace"), meta["name"], propagation="Foreground")
        self.finish_foreground(owner_uid)

    def finish_foreground(self, owner_uid: str | None) -> None:
        store = self.store
        if not owner_uid:
            return
        owner = store.by_uid(owner_uid)
        if owner is None:
            return
        meta = owner["metadata"]
        if FOREGROUND not in (meta.get("finalizers") or ()) or not meta.get("deletionTimestamp"):
            return
        if any(True for _ in store.dependents(owner_uid)):
            return
        rt = store.registry.storage_type(_gr_of(owner, store))
        if rt is None:
            return

        def drop(current: dict[str, Any]) -> dict[str, Any]:
            current["metadata"]["finalizers"] = [
                f for f in current["metadata"].get("finalizers") or [] if f != FOREGROUND
            ]
            return current

        store.mutate(rt, meta.get("namespace"), meta["name"], drop)


def _gr_of(obj: dict[str, Any], store: ClusterStore) -> GR:
    found = store.registry.kind_for(obj.get("apiVersion", ""), obj.get("kind", ""))
    if found is not None:
        return found.gr
    return CRDS if obj.get("kind") == "CustomResourceDefinition" else ("", "")


def _equal_ignore_hash(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    def strip(template: dict[str, Any] | None) -> dict[str, Any]:
        template = clone(template or {})
        labels = (template.get("metadata") or {}).get("labels")
        if labels is not None:
            labels.pop(HASH_LABEL, None)
        return template

    return strip(a) == strip(b)


def _partition(spec: dict[str, Any]) -> int:
    return int(((spec.get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition", 0))


def _deletion_rank(pod: dict[str, Any]) -> tuple[Any, ...]:
    """Upstream's preference for which surplus pod to delete first (ActivePodsWithRanks)."""
    status = pod.get("status") or {}
    phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get(status.get("phase", "Pending"), 0)
    restarts = sum(int(c.get("restartCount", 0)) for c in status.get("containerStatuses") or [])
    ready_since = (condition(status.get("conditions"), "Ready") or {}).get("lastTransitionTime", "")
    created = pod["metadata"].get("creationTimestamp", "")
    return (
        bool((pod.get("spec") or {}).get("nodeName")),
        phase_rank,
        pod_ready(pod),
        _invert(ready_since),
        -restarts,
        _invert(created),
    )


def _invert(text: str) -> tuple[int, ...]:
    return tuple(-ord(ch) for ch in text)


def _ordered_conditions(conditions: list[dict[str, Any]], order: tuple[str, ...]) -> list[dict[str, Any]]:
    ranked = {kind: i for i, kind in enumerate(order)}
    return sorted(conditions, key=lambda c: ranked.get(c.get("type", ""), len(order)))
