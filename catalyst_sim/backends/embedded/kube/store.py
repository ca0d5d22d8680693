"""One emulated cluster's object store: the API server semantics, apart from HTTP.

What lives here is what a client can observe regardless of transport: a cluster-wide, monotonically
increasing ``resourceVersion``; uid, creationTimestamp and generation; generateName; namespace
existence; label/field selectors; ``limit``/``continue`` paging over a consistent snapshot; a
bounded event history serving watches (older → 410 Expired); finalizers and deletionTimestamp;
ownerReference garbage collection (background, foreground, orphan); status subresource isolation;
namespace termination; CRDs registering their types.

Cost model: objects are indexed by (group, resource) → namespace → name, by uid, and owner uid →
dependents, so create/get/update/delete touch O(1) objects (:attr:`ClusterStore.stats` counts them,
which is how the scale test checks it without timing). Lists and selector filtering are linear in
the objects of that resource (in that namespace), as upstream.

Threading: every public method holds the store's re-entrant lock. Reactions to a change —
controllers, the simulated kubelet, garbage collection — are queued and run by the outermost call
before it returns (:meth:`ClusterStore._drain`), so an HTTP request, a virtual-clock ``advance()``
or a wall-clock timer thread each leave the cluster settled. Watchers are told through a
non-blocking callback, so a slow watch client never blocks a writer.
"""

from __future__ import annotations

import base64
import bisect
import builtins
import json
import logging
import random
import threading
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ....clock import Clock, TimerHandle
from . import errors
from .errors import ApiError
from .patch import clone
from .resources import GR, ResourceRegistry, ResourceType
from .selectors import FieldSelector, LabelSelector, fields_match, labels_match
from .strategies import prepare_create, prepare_update

log = logging.getLogger(__name__)

NAMESPACES: GR = ("", "namespaces")
CRDS: GR = ("apiextensions.k8s.io", "customresourcedefinitions")
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # upstream's utilrand alphabet: no vowels, no 0/1/3


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@dataclass(frozen=True)
class Event:
    """One change, as watchers and controllers see it. ``old`` is None for ADDED."""

    type: str  # ADDED | MODIFIED | DELETED
    gr: GR
    namespace: str
    name: str
    obj: dict[str, Any]
    old: dict[str, Any] | None
    rv: int


@dataclass
class Stats:
    """Work counters: how many stored objects each kind of operation touched.

    Tests compare these across store sizes to prove per-operation cost is constant, which timing
    on a shared machine cannot.
    """

    reads: int = 0
    writes: int = 0
    removes: int = 0
    watch_offers: int = 0
    history_scanned: int = 0
    list_scanned: int = 0
    reactions: int = 0
    reaction_errors: int = 0
    last_error: str = ""

    def touched(self) -> int:
        return self.reads + self.writes + self.removes


@dataclass(eq=False)
class Watcher:
    """A registered watch: a filter plus a non-blocking sink for (type, object) pairs."""

    gr: GR
    namespace: str | None
    labels: LabelSelector
    fields: FieldSelector
    getters: dict[str, Callable[[Any], str]]
    sink: Callable[[str, dict[str, Any]], None]
    closed: bool = False

    def matches(self, obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return False
        meta = obj.get("metadata") or {}
        return labels_match(self.labels, meta.get("labels")) and (
            not self.fields or fields_match(self.fields, obj, self.getters)
        )

    def offer(self, event: Event) -> None:
        """Translate a change for this watcher's selector, as upstream's watch cache does.

        An update that moves an object into the selection is ADDED, one that moves it out is
        DELETED, so a client's view of "objects matching X" stays exact.
        """
        if self.closed or (self.namespace is not None and event.namespace != self.namespace):
            return
        now_matches = self.matches(event.obj)
        if event.type == "MODIFIED":
            was = self.matches(event.old)
            if was and now_matches:
                self.sink("MODIFIED", event.obj)
            elif was:
                self.sink("DELETED", event.obj)
            elif now_matches:
                self.sink("ADDED", event.obj)
        elif now_matches:
            self.sink(event.type, event.obj)

    def close(self) -> None:
        self.closed = True


@dataclass
class ListResult:
    items: list[dict[str, Any]]
    resource_version: int
    continue_token: str = ""
    remaining: int | None = None


@dataclass
class _Snapshot:
    rv: int
    keys: list[tuple[str, str]]
    objs: list[dict[str, Any]]


Reaction = Callable[[Event], None]


@dataclass
class ClusterStore:
    """All objects of one emulated cluster and the rules of writing them."""

    name: str
    clock: Clock
    history_window: int = 10_000
    seed: int | None = None
    snapshot_cache: int = 128
    record_events: bool = True
    registry: ResourceRegistry = field(default_factory=ResourceRegistry.with_builtins)
    stats: Stats = field(default_factory=Stats)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._rv = 0
        self._objects: dict[GR, dict[str, dict[str, dict[str, Any]]]] = {}
        self._by_uid: dict[str, tuple[GR, str, str]] = {}
        self._dependents: dict[str, set[tuple[GR, str, str]]] = {}
        self._ns_counts: dict[str, int] = {}
        self._history: deque[Event] = deque(maxlen=max(1, self.history_window))
        self._compacted_rv = 0
        self._watchers: dict[GR, set[Watcher]] = {}
        self._reactions: list[Reaction] = []
        self._events: deque[Event] = deque()
        self._work: OrderedDict[tuple[Callable[[Any], None], Any], None] = OrderedDict()
        self._draining = False
        self._timers: dict[int, TimerHandle] = {}
        self._snapshots: OrderedDict[int, _Snapshot] = OrderedDict()
        self._snapshot_seq = 0
        self._closed = False
        self._rng = random.Random(self.seed if self.seed is not None else self.name)
        self._next_ip = 10
        self._applied: dict[str, dict[str, dict[str, Any]]] = {}
        self.graceful_pod_deletion = False
        self.event_keys: dict[tuple[str, ...], str] = {}  # event correlation: repeat -> existing name
        with self._lock:
            for ns in DEFAULT_NAMESPACES:
                self.create(
                    self.registry.require("", "v1", "namespaces"),
                    "",
                    {"metadata": {"name": ns}},
                )
            self.create(
                self.registry.require("", "v1", "services"),
                "default",
                {
                    "metadata": {
                        "name": "kubernetes",
                        "labels": {"component": "apiserver", "provider": "kubernetes"},
                    },
                    "spec": {
                        "clusterIP": "10.96.0.1",
                        "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
                    },
                },
            )

    # ------------------------------------------------------------------ basics

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    @property
    def resource_version(self) -> int:
        return self._rv

    def timestamp(self, delta: float = 0.0) -> str:
        return format_time(self.clock.now() + timedelta(seconds=delta))

    def new_uid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def random_suffix(self, length: int = 5) -> str:
        return "".join(self._rng.choice(_NAME_ALPHABET) for _ in range(length))

    def allocate_cluster_ip(self) -> str:
        self._next_ip += 1
        n = self._next_ip
        return f"10.96.{(n >> 8) & 255}.{n & 255}"

    def _bucket(self, gr: GR, namespace: str) -> dict[str, dict[str, Any]]:
        by_ns = self._objects.get(gr)
        if by_ns is None:
            by_ns = self._objects[gr] = {}
        bucket = by_ns.get(namespace)
        if bucket is None:
            bucket = by_ns[namespace] = {}
        return bucket

    def _peek(self, gr: GR, namespace: str, name: str) -> dict[str, Any] | None:
        self.stats.reads += 1
        by_ns = self._objects.get(gr)
        if by_ns is None:
            return None
        bucket = by_ns.get(namespace)
        return None if bucket is None else bucket.get(name)

    def _scope_ns(self, rt: ResourceType, namespace: str | None) -> str:
        return (namespace or "") if rt.namespaced else ""

    # ------------------------------------------------------------------ reactions

    def add_reaction(self, reaction: Reaction) -> None:
        """Be called (under the store lock, after the write) for every change, in order."""
        with self._lock:
            self._reactions.append(reaction)

    def enqueue(self, handler: Callable[[Any], None], key: Any) -> None:
        """Queue ``handler(key)`` once; queued twice before it runs, it still runs once."""
        self._work[(handler, key)] = None

    def after(self, seconds: float, handler: Callable[[Any], None], key: Any) -> TimerHandle | None:
        """Run ``handler(key)`` when the clock has moved ``seconds`` on (virtual or wall)."""
        with self._lock:
            if self._closed:
                return None
            if seconds <= 0:
                self.enqueue(handler, key)
                self._drain()
                return None
            holder: list[TimerHandle] = []

            def fire() -> None:
                with self._lock:
                    if holder:
                        self._timers.pop(id(holder[0]), None)
                    if self._closed:
                        return
                    self.enqueue(handler, key)
                    self._drain()

            handle = self.clock.call_at(self.clock.now() + timedelta(seconds=seconds), fire)
            holder.append(handle)
            self._timers[id(handle)] = handle
            return handle

    def _emit(self, event: Event) -> None:
        history = self._history
        if len(history) == history.maxlen:
            self._compacted_rv = history[0].rv
        history.append(event)
        for watcher in tuple(self._watchers.get(event.gr, ())):
            self.stats.watch_offers += 1
            try:
                watcher.offer(event)
            except Exception:  # a broken sink must never fail the write
                log.exception("watch sink failed")
                watcher.close()
        self._events.append(event)

    def _drain(self) -> None:
        if self._draining:
            return
        self._draining = True
        try:
            while self._events or self._work:
                while self._events:
                    event = self._events.popleft()
                    for reaction in self._reactions:
                        self._run(reaction, event)
                if self._work:
                    (handler, key), _ = self._work.popitem(last=False)
                    self._run(handler, key)
        finally:
            self._draining = False

    def _run(self, handler: Callable[[Any], None], arg: Any) -> None:
        self.stats.reactions += 1
        try:
            handler(arg)
        except ApiError as exc:
            if exc.code not in (404, 409):  # lost races are normal for controllers
                self._note_error(handler, exc)
        except Exception as exc:
            self._note_error(handler, exc)

    def _note_error(self, handler: Callable[[Any], None], exc: Exception) -> None:
        self.stats.reaction_errors += 1
        self.stats.last_error = f"{getattr(handler, '__qualname__', handler)}: {exc!r}"
        log.exception("cluster %s: reaction %s failed", self.name, getattr(handler, "__qualname__", handler))

    # ------------------------------------------------------------------ writes (internal)

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def _index_owners(self, key: tuple[GR, str, str], old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        old_uids = {r.get("uid") for r in ((old or {}).get("metadata") or {}).get("ownerReferences") or []}
        new_uids = {r.get("uid") for r in ((new or {}).get("metadata") or {}).get("ownerReferences") or []}
        for uid in old_uids - new_uids:
            deps = self._dependents.get(uid)
            if deps is not None:
                deps.discard(key)
                if not deps:
                    del self._dependents[uid]
        for uid in new_uids - old_uids:
            self._dependents.setdefault(uid, set()).add(key)

    def _put(self, rt: ResourceType, namespace: str, obj: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        meta = obj["metadata"]
        rv = self._next_rv()
        meta["resourceVersion"] = str(rv)
        name = meta["name"]
        gr = rt.gr
        self._bucket(gr, namespace)[name] = obj
        self.stats.writes += 1
        key = (gr, namespace, name)
        if old is None:
            self._by_uid[meta["uid"]] = key
            if namespace:
                self._ns_counts[namespace] = self._ns_counts.get(namespace, 0) + 1
        self._index_owners(key, old, obj)
        self._emit(Event("ADDED" if old is None else "MODIFIED", gr, namespace, name, obj, old, rv))
        return obj

    def _drop(self, rt: ResourceType, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        name = meta["name"]
        gr = rt.gr
        bucket = self._objects[gr][namespace]
        del bucket[name]
        if not bucket:
            del self._objects[gr][namespace]
        self.stats.removes += 1
        key = (gr, namespace, name)
        self._by_uid.pop(meta["uid"], None)
        if namespace:
            self._ns_counts[namespace] -= 1
        self._index_owners(key, obj, None)
        self._applied.pop(meta["uid"], None)
        rv = self._next_rv()
        final = dict(obj)
        final["metadata"] = dict(meta, resourceVersion=str(rv))
        self._emit(Event("DELETED", gr, namespace, name, final, obj, rv))
        return final

    # ------------------------------------------------------------------ reads

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        with self._lock:
            obj = self._peek(rt.gr, self._scope_ns(rt, namespace), name)
            if obj is None:
                raise errors.not_found(rt.plural, name, rt.group)
            return obj

    def find(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._peek(rt.gr, self._scope_ns(rt, namespace), name)

    def by_uid(self, uid: str) -> dict[str, Any] | None:
        with self._lock:
            key = self._by_uid.get(uid)
            return None if key is None else self._peek(*key)

    def dependents(self, uid: str, gr: GR | None = None) -> list[dict[str, Any]]:
        """Objects whose ownerReferences name ``uid`` (optionally of one resource), in name order."""
        with self._lock:
            keys = sorted(k for k in self._dependents.get(uid, ()) if gr is None or k[0] == gr)
            return [obj for k in keys if (obj := self._peek(*k)) is not None]

    def namespace_is_empty(self, namespace: str) -> bool:
        with self._lock:
            return self._ns_counts.get(namespace, 0) == 0

    def iter_objects(self, gr: GR, namespace: str | None = None) -> Iterator[dict[str, Any]]:
        """All objects of a resource (in a namespace), for reconcilers that need a small scan."""
        with self._lock:
            by_ns = self._objects.get(gr) or {}
            buckets = [by_ns.get(namespace, {})] if namespace is not None else list(by_ns.values())
            items = [obj for bucket in buckets for obj in bucket.values()]
        yield from items

    def list(
        self,
        rt: ResourceType,
        namespace: str | None,
        *,
        labels: LabelSelector = (),
        fields: FieldSelector = (),
        limit: int = 0,
        continue_token: str = "",
        resource_version: str = "",
        resource_version_match: str = "",
    ) -> ListResult:
        """List with selectors and paging; a continue token resumes the snapshot it came from."""
        with self._lock:
            gr = rt.gr
            if resource_version and resource_version != "0" and not continue_token:
                wanted = _parse_rv(resource_version)
                if wanted > self._rv:
                    raise ApiError(
                        504,
                        "Timeout",
                        f"Too large resource version: {wanted}, current: {self._rv}",
                        {
                            "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                            "retryAfterSeconds": 1,
                        },
                    )
                if resource_version_match == "Exact" and wanted != self._rv and wanted <= self._compacted_rv:
                    raise errors.gone(f"too old resource version: {wanted} ({self._compacted_rv + 1})")
            if continue_token:
                snap, start = self._resume(continue_token, gr)
            else:
                snap, start = self._snapshot(gr, (namespace or None) if rt.namespaced else ""), 0
            getters = rt.field_getters() if fields else {}
            items: list[dict[str, Any]] = []
            pos = start
            total = len(snap.objs)
            while pos < total and (limit <= 0 or len(items) < limit):
                obj = snap.objs[pos]
                pos += 1
                self.stats.list_scanned += 1
                meta = obj["metadata"]
                if labels and not labels_match(labels, meta.get("labels")):
                    continue
                if fields and not fields_match(fields, obj, getters):
                    continue
                items.append(obj)
            token = ""
            remaining = None
            if limit > 0 and pos < total:
                snap_id = self._remember(snap)
                token = _encode_token(snap.rv, snap.keys[pos - 1], snap_id, gr)
                if not labels and not fields:
                    remaining = total - pos
            return ListResult(items, snap.rv, token, remaining)

    def _snapshot(self, gr: GR, namespace: str | None) -> _Snapshot:
        by_ns = self._objects.get(gr) or {}
        keys: list[tuple[str, str]] = []
        objs: list[dict[str, Any]] = []
        namespaces = [namespace] if namespace is not None else sorted(by_ns)
        for ns in namespaces:
            bucket = by_ns.get(ns)
            if not bucket:
                continue
            for name in sorted(bucket):
                keys.append((ns, name))
                objs.append(bucket[name])
        return _Snapshot(self._rv, keys, objs)

    def _remember(self, snap: _Snapshot) -> int:
        for snap_id, existing in self._snapshots.items():
            if existing is snap:
                self._snapshots.move_to_end(snap_id)
                return snap_id
        self._snapshot_seq += 1
        self._snapshots[self._snapshot_seq] = snap
        while len(self._snapshots) > self.snapshot_cache:
            self._snapshots.popitem(last=False)
        return self._snapshot_seq

    def _resume(self, token: str, gr: GR) -> tuple[_Snapshot, int]:
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)))
            rv, start, snap_id, token_gr = (
                int(data["rv"]),
                tuple(data["start"]),
                int(data["id"]),
                tuple(data["gr"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise errors.bad_request(f"invalid continue token: {exc}") from None
        if token_gr != gr:
            raise errors.bad_request("continue token was issued for a different resource")
        snap = self._snapshots.get(snap_id)
        if snap is not None and snap.rv == rv:
            self._snapshots.move_to_end(snap_id)
            return snap, bisect.bisect_right(snap.keys, start)
        # The snapshot is gone: like etcd after compaction, a token that old cannot be served
        # consistently.
        raise errors.gone(
            "The provided continue parameter is too old to display a consistent list result. "
            "You can start a new list without the continue parameter, or use the continue "
            "token in this response to retrieve the remainder of the results. Continuing "
            "with the provided token results in an inconsistent list - objects that were "
            "created, modified, or deleted between the time the first chunk was returned "
            "and now may show up in the list."
        )

    # ------------------------------------------------------------------ watch

    def watch(
        self,
        rt: ResourceType,
        namespace: str | None,
        *,
        labels: LabelSelector = (),
        fields: FieldSelector = (),
        resource_version: str = "",
        send_initial_events: bool | None = None,
        sink: Callable[[str, dict[str, Any]], None],
    ) -> tuple[Watcher, builtins.list[tuple[str, dict[str, Any]]], int]:
        """Register a watch; returns (watcher, events to send first, the rv they bring the client to).

        Unset or "0" ``resourceVersion`` (or ``sendInitialEvents``) starts with a synthetic ADDED per
        existing object; a specific version replays the history after it, or raises 410 when it has
        already left the window. Registration and replay happen under one lock: no gap, no duplicate.
        """
        with self._lock:
            ns = self._scope_ns(rt, namespace) if rt.namespaced and namespace else None
            watcher = Watcher(rt.gr, ns, labels, fields, rt.field_getters(), sink)
            initial: list[tuple[str, dict[str, Any]]] = []
            replay_from = resource_version not in ("", "0") and not send_initial_events
            if replay_from:
                since = _parse_rv(resource_version)
                if since < self._compacted_rv:
                    raise errors.gone(f"too old resource version: {since} ({self._compacted_rv + 1})")
                collected: list[Event] = []
                for event in reversed(self._history):
                    if event.rv <= since:
                        break
                    self.stats.history_scanned += 1
                    collected.append(event)
                replay: list[tuple[str, dict[str, Any]]] = []
                probe = Watcher(
                    rt.gr, ns, labels, fields, watcher.getters, lambda kind, obj: replay.append((kind, obj))
                )
                for event in reversed(collected):
                    if event.gr == rt.gr:
                        probe.offer(event)
                initial = replay
            else:
                snap = self._snapshot(rt.gr, ns)
                initial = [("ADDED", obj) for obj in snap.objs if watcher.matches(obj)]
            self._watchers.setdefault(rt.gr, set()).add(watcher)
            return watcher, initial, self._rv

    def unwatch(self, watcher: Watcher) -> None:
        with self._lock:
            watcher.close()
            watchers = self._watchers.get(watcher.gr)
            if watchers is not None:
                watchers.discard(watcher)

    def watcher_count(self) -> int:
        with self._lock:
            return sum(len(w) for w in self._watchers.values())

    # ------------------------------------------------------------------ create

    def create(
        self, rt: ResourceType, namespace: str | None, body: dict[str, Any], *, dry_run: bool = False
    ) -> dict[str, Any]:
        with self._lock:
            obj = self._create(rt, namespace, body, dry_run)
            self._drain()
            return obj

    def _check_type(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        if not isinstance(obj, dict):
            raise errors.bad_request("the request body must be a JSON object")
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if kind and kind != rt.kind:
            raise errors.bad_request(f"the kind of the object ({kind}) does not match the expected kind ({rt.kind})")
        if api_version and api_version != rt.api_version and self.registry.kind_for(api_version, rt.kind) is None:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({rt.api_version})"
            )
        if not isinstance(obj.get("metadata", {}), dict):
            raise errors.bad_request("metadata must be an object")

    def _create(self, rt: ResourceType, namespace: str | None, body: dict[str, Any], dry_run: bool) -> dict[str, Any]:
        self._check_type(rt, body)
        obj = {"apiVersion": rt.api_version, "kind": rt.kind, **clone(body)}
        obj["apiVersion"] = rt.api_version
        obj["kind"] = rt.kind
        meta = obj.setdefault("metadata", {})
        if rt.namespaced:
            ns = namespace or meta.get("namespace") or ""
            if meta.get("namespace") and namespace and meta["namespace"] != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            if not ns:
                raise errors.bad_request("the server could not find the requested resource: namespace is required")
            namespace_obj = self._peek(NAMESPACES, "", ns)
            if namespace_obj is None:
                raise errors.not_found("namespaces", ns)
            if namespace_obj["metadata"].get("deletionTimestamp") and rt.gr != ("", "events"):
                raise ApiError(
                    403,
                    "Forbidden",
                    f'{rt.plural} "{meta.get("name") or meta.get("generateName", "")}" is forbidden: '
                    f"unable to create new content in namespace {ns} because it is being terminated",
                    {
                        "name": meta.get("name", ""),
                        "kind": rt.plural,
                        "causes": [
                            {
                                "reason": "NamespaceTerminating",
                                "message": f"namespace {ns} is being terminated",
                                "field": "metadata.namespace",
                            }
                        ],
                    },
                )
            meta["namespace"] = ns
        else:
            ns = ""
            meta.pop("namespace", None)
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise errors.invalid(
                    rt.kind,
                    "",
                    [
                        (
                            "FieldValueRequired",
                            "metadata.name",
                            "Required value: name or generateName is required",
                        )
                    ],
                    rt.group,
                )
            for _ in range(8):
                candidate = f"{prefix[:58]}{self.random_suffix()}"
                if self._peek(rt.gr, ns, candidate) is None:
                    meta["name"] = candidate
                    break
            else:
                raise errors.already_exists(rt.plural, f"{prefix}*", rt.group)
        name = meta["name"]
        if self._peek(rt.gr, ns, name) is not None:
            raise errors.already_exists(rt.plural, name, rt.group)
        for server_owned in (
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
            "managedFields",
        ):
            meta.pop(server_owned, None)
        meta["uid"] = self.new_uid()
        meta["creationTimestamp"] = self.timestamp()
        if rt.tracks_generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        prepare_create(self, rt, obj)
        if dry_run:
            meta["resourceVersion"] = ""
            return obj
        stored = self._put(rt, ns, obj, None)
        if rt.gr == CRDS:
            self.registry.register_crd(stored)
        return stored

    # ------------------------------------------------------------------ update

    def update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: dict[str, Any],
        *,
        subresource: str = "",
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """PUT: replace the object (or only its status); 409 when ``resourceVersion`` is stale."""
        with self._lock:
            self._check_type(rt, body)
            ns = self._scope_ns(rt, namespace)
            old = self._peek(rt.gr, ns, name)
            if old is None:
                raise errors.not_found(rt.plural, name, rt.group)
            obj = self._update(rt, ns, old, clone(body), subresource, dry_run)
            self._drain()
            return obj

    def mutate(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        change: Callable[[dict[str, Any]], dict[str, Any]],
        *,
        subresource: str = "",
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Read-modify-write atomically (PATCH and controllers): ``change`` gets a private copy."""
        with self._lock:
            ns = self._scope_ns(rt, namespace)
            old = self._peek(rt.gr, ns, name)
            if old is None:
                raise errors.not_found(rt.plural, name, rt.group)
            new = change(clone(old))
            if not isinstance(new, dict):
                raise errors.bad_request("the patched object is not a JSON object")
            self._check_type(rt, new)
            obj = self._update(rt, ns, old, new, subresource, dry_run)
            self._drain()
            return obj

    def _update(
        self,
        rt: ResourceType,
        ns: str,
        old: dict[str, Any],
        new: dict[str, Any],
        subresource: str,
        dry_run: bool,
    ) -> dict[str, Any]:
        old_meta = old["metadata"]
        name = old_meta["name"]
        meta = new.get("metadata")
        if not isinstance(meta, dict):
            meta = new["metadata"] = {}
        if meta.get("name", name) != name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        if rt.namespaced and meta.get("namespace", ns) != ns:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        sent_rv = meta.get("resourceVersion")
        if sent_rv and sent_rv != old_meta["resourceVersion"]:
            raise errors.conflict(rt.plural, name, rt.group)
        if meta.get("uid") and meta["uid"] != old_meta["uid"]:
            raise errors.conflict(
                rt.plural,
                name,
                rt.group,
                why=f"Precondition failed: UID in precondition: {meta['uid']}, UID in object meta: {old_meta['uid']}",
            )
        if subresource == "finalize":
            merged = clone(old)
            merged.setdefault("spec", {})["finalizers"] = list((new.get("spec") or {}).get("finalizers") or [])
            new = merged
            meta = new["metadata"]
        elif subresource == "status":
            merged = clone(old)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            new = merged
            meta = new["metadata"]
        else:
            new["apiVersion"] = rt.api_version
            new["kind"] = rt.kind
            if rt.status:
                if "status" in old:
                    new["status"] = old["status"]
                else:
                    new.pop("status", None)
            for immutable in (
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ):
                if immutable in old_meta:
                    meta[immutable] = old_meta[immutable]
                else:
                    meta.pop(immutable, None)
            meta["name"] = name
            if rt.namespaced:
                meta["namespace"] = ns
            else:
                meta.pop("namespace", None)
            meta.pop("managedFields", None)
            meta.pop("selfLink", None)
            if old_meta.get("deletionTimestamp"):
                added = set(meta.get("finalizers") or ()) - set(old_meta.get("finalizers") or ())
                if added:
                    raise errors.invalid(
                        rt.kind,
                        name,
                        [
                            (
                                "FieldValueForbidden",
                                "metadata.finalizers",
                                "Forbidden: no new finalizers can be added if the object is being deleted, "
                                f"found new finalizers []string{{{', '.join(map(repr, sorted(added)))}}}",
                            )
                        ],
                        rt.group,
                    )
            prepare_update(self, rt, old, new)
            if rt.tracks_generation and _spec_of(old) != _spec_of(new):
                meta["generation"] = int(old_meta.get("generation", 1)) + 1
        if not meta.get("finalizers"):
            meta.pop("finalizers", None)
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if new == old:
            return old  # a no-op write: no new resourceVersion and no watch event, as upstream
        if dry_run:
            return new
        if meta.get("deletionTimestamp") and not self._blocked(rt, new):
            self._put(rt, ns, new, old)
            return self._remove(rt, ns, new)
        stored = self._put(rt, ns, new, old)
        if rt.gr == CRDS and subresource != "status":
            self.registry.register_crd(stored)
        return stored

    @staticmethod
    def _blocked(rt: ResourceType, obj: dict[str, Any]) -> bool:
        if obj["metadata"].get("finalizers"):
            return True
        return rt.gr == NAMESPACES and bool((obj.get("spec") or {}).get("finalizers"))

    # ------------------------------------------------------------------ apply bookkeeping

    def applied_config(self, uid: str, manager: str) -> dict[str, Any] | None:
        with self._lock:
            return self._applied.get(uid, {}).get(manager)

    def remember_applied(self, uid: str, manager: str, config: dict[str, Any]) -> None:
        with self._lock:
            self._applied.setdefault(uid, {})[manager] = clone(config)

    # ------------------------------------------------------------------ delete

    def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        *,
        propagation: str | None = None,
        grace_period: int | None = None,
        preconditions: dict[str, Any] | None = None,
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Delete; returns (object, removed). Not removed: finalizers or graceful termination pending."""
        with self._lock:
            ns = self._scope_ns(rt, namespace)
            obj = self._peek(rt.gr, ns, name)
            if obj is None:
                raise errors.not_found(rt.plural, name, rt.group)
            result = self._delete(rt, ns, obj, propagation, grace_period, preconditions or {}, dry_run)
            self._drain()
            return result

    def _delete(
        self,
        rt: ResourceType,
        ns: str,
        obj: dict[str, Any],
        propagation: str | None,
        grace_period: int | None,
        preconditions: dict[str, Any],
        dry_run: bool,
    ) -> tuple[dict[str, Any], bool]:
        meta = obj["metadata"]
        name = meta["name"]
        if preconditions.get("uid") and preconditions["uid"] != meta["uid"]:
            raise errors.conflict(
                rt.plural,
                name,
                rt.group,
                why=f"Precondition failed: UID in precondition: {preconditions['uid']}, UID in "
                f"object meta: {meta['uid']}",
            )
        if preconditions.get("resourceVersion") and preconditions["resourceVersion"] != meta["resourceVersion"]:
            raise errors.conflict(
                rt.plural,
                name,
                rt.group,
                why=f"Precondition failed: ResourceVersion in precondition: "
                f"{preconditions['resourceVersion']}, ResourceVersion in object meta: "
                f"{meta['resourceVersion']}",
            )
        if dry_run:
            return obj, False
        policy = propagation or "Background"
        if policy not in ("Background", "Foreground", "Orphan"):
            raise errors.bad_request(f"unsupported propagationPolicy {policy!r}")
        uid = meta["uid"]
        new = clone(obj)
        new_meta = new["metadata"]
        finalizers = list(new_meta.get("finalizers") or [])
        if policy == "Orphan":
            self._orphan(uid)
        elif policy == "Foreground" and self._dependents.get(uid) and FOREGROUND not in finalizers:
            finalizers.append(FOREGROUND)
        graceful = bool(
            rt.gr == ("", "pods")
            and self.graceful_pod_deletion
            and (obj.get("spec") or {}).get("nodeName")
            and (obj.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        )
        grace = (
            grace_period
            if grace_period is not None
            else int((obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
        )
        graceful = graceful and grace > 0
        if meta.get("deletionTimestamp"):
            # Deleting again: a force delete (grace 0) ends a graceful termination; otherwise only a
            # newly requested foreground deletion changes anything.
            if not finalizers and not graceful and not self._blocked(rt, new):
                return self._remove(rt, ns, obj), True
            if finalizers != list(meta.get("finalizers") or []):
                new_meta["finalizers"] = finalizers
                return self._put(rt, ns, new, obj), False
            return obj, False
        if finalizers or graceful or self._blocked(rt, new):
            new_meta["finalizers"] = finalizers
            if not finalizers:
                new_meta.pop("finalizers")
            seconds = grace if graceful else 0
            new_meta["deletionTimestamp"] = self.timestamp(seconds)
            new_meta["deletionGracePeriodSeconds"] = seconds
            if rt.tracks_generation:
                new_meta["generation"] = int(meta.get("generation", 1)) + 1
            if rt.gr == NAMESPACES:
                new["status"] = dict(new.get("status") or {}, phase="Terminating")
            return self._put(rt, ns, new, obj), False
        return self._remove(rt, ns, obj), True

    def _remove(self, rt: ResourceType, ns: str, obj: dict[str, Any]) -> dict[str, Any]:
        final = self._drop(rt, ns, obj)
        if rt.gr == CRDS:
            self.registry.unregister_crd(obj["metadata"]["name"])
        return final

    def _orphan(self, uid: str) -> None:
        for key in sorted(self._dependents.get(uid, ())):
            dependent = self._peek(*key)
            if dependent is None:
                continue
            rt = self.registry.storage_type(key[0])
            if rt is None:
                continue
            new = clone(dependent)
            refs = [r for r in new["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
            if refs:
                new["metadata"]["ownerReferences"] = refs
            else:
                new["metadata"].pop("ownerReferences", None)
            self._put(rt, key[1], new, dependent)

    def delete_collection(
        self,
        rt: ResourceType,
        namespace: str | None,
        *,
        labels: LabelSelector = (),
        fields: FieldSelector = (),
        propagation: str | None = None,
        grace_period: int | None = None,
        dry_run: bool = False,
    ) -> builtins.list[dict[str, Any]]:
        with self._lock:
            listed = self.list(rt, namespace, labels=labels, fields=fields)
            out = []
            for obj in listed.items:
                meta = obj["metadata"]
                current = self._peek(rt.gr, meta.get("namespace", ""), meta["name"])
                if current is None:
                    continue
                result, _ = self._delete(rt, meta.get("namespace", ""), current, propagation, grace_period, {}, dry_run)
                out.append(result)
            self._drain()
            return out

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Cancel every timer and end every watch: nothing of this cluster runs afterwards."""
        with self._lock:
            self._closed = True
            for handle in list(self._timers.values()):
                handle.cancel()
            self._timers.clear()
            watchers = [w for ws in self._watchers.values() for w in ws]
            self._watchers.clear()
        for watcher in watchers:
            watcher.close()
            try:
                watcher.sink("CLOSE", {})
            except Exception:
                log.debug("closing a watch sink failed", exc_info=True)

    def objects(self) -> Iterable[dict[str, Any]]:
        """Every stored object (evidence bundles), in resource/namespace/name order."""
        with self._lock:
            out: list[dict[str, Any]] = []
            for gr in sorted(self._objects):
                for ns in sorted(self._objects[gr]):
                    bucket = self._objects[gr][ns]
                    out.extend(bucket[name] for name in sorted(bucket))
            return out


def _spec_of(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _parse_rv(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise errors.bad_request(f'invalid resource version "{text}"') from None
    if value < 0:
        raise errors.bad_request(f'invalid resource version "{text}"')
    return value


def _encode_token(rv: int, start: tuple[str, str], snap_id: int, gr: GR) -> str:
    raw = json.dumps(
        {"v": "meta.k8s.io/v1", "rv": rv, "start": list(start), "id": snap_id, "gr": list(gr)},
        separators=(",", ":"),
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
