"""The External-Secrets equivalent of one vcluster: ExternalSecret → OpenBao → Secret (R-SEC-01).

:class:`SecretsController` watches ``ExternalSecret`` objects through the vcluster's Kubernetes API
(a list, then a watch from its resourceVersion, re-listed on every error; plus a resync on the clock),
and for each one:

1. parses it (:mod:`.spec`); a malformed one gets ``Ready=False`` naming the field, nothing else;
2. logs in to its region's OpenBao with the workload's current JWT-SVID and reads every referenced
   path (:mod:`.provider`) — OpenBao alone decides whether the Org may read it;
3. writes the Secret (server-side apply as ``external-secrets``, owned by the ExternalSecret, the
   API server's 1 MiB limit enforced), then tells the :class:`~.reloader.Reloader`, which rolls the
   Deployments consuming it if its data changed;
4. sets ESO's status: ``Ready`` ``True/SecretSynced`` or ``False/SecretSyncedError`` with the reason,
   ``refreshTime``, ``syncedResourceVersion``, ``binding``;
5. schedules the next sync at ``refreshInterval`` of the clock; after a failure it retries with
   exponential backoff (5 s doubling to 5 min), the attempt and the next retry in the message.

Time is the :class:`~catalyst_sim.clock.Clock`'s only; blocking calls run on the controller's own
executor (threads ``catalyst-sim:secrets-<vcluster>``) and the watch on one more thread, all released
by :meth:`SecretsController.stop`. :meth:`settled` follows the GitOps engine's settle protocol.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import urllib3

from catalyst_sim.clock import Clock, TimerHandle
from catalyst_sim.control.gitops import conditions as c
from catalyst_sim.control.gitops.crds import ESO_API
from catalyst_sim.control.gitops.kube import Kube, KubeError
from catalyst_sim.control.gitops.workqueue import WorkQueue
from catalyst_sim.control.identity.svid import SvidAgent
from catalyst_sim.control.kubeclient import api_client
from catalyst_sim.control.secrets import spec as es_spec
from catalyst_sim.control.secrets.provider import OpenBaoProvider, ProviderError, property_value
from catalyst_sim.control.secrets.reloader import Reloader

log = logging.getLogger(__name__)

FIELD_MANAGER = "external-secrets"
SYNCED = "SecretSynced"
SYNC_ERROR = "SecretSyncedError"
MAX_SECRET_BYTES = 1024 * 1024  # the API server's limit on a Secret's data (1 MiB)
MANAGED_LABEL = "reconcile.external-secrets.io/managed"
HASH_ANNOTATION = "reconcile.external-secrets.io/data-hash"


@dataclass(frozen=True)
class SecretsTiming:
    retry_base: float = 5.0  # first retry after a failure
    retry_cap: float = 300.0  # backoff ceiling
    resync: float = 60.0  # informer resync: re-examine every ExternalSecret (cheap unless due)


@dataclass(frozen=True)
class SyncStatus:
    """One ExternalSecret's outcome, as the read side (App cards) needs it."""

    vcluster: str
    environment: str
    application: str
    namespace: str
    name: str
    ready: bool
    reason: str
    message: str


class SecretsController:
    def __init__(self, *, vcluster: str, organization: str, environment: str, kubeconfig: Path, clock: Clock,
                 openbao_url: str, agent: SvidAgent, on_status: Callable[[SyncStatus], None] | None = None,
                 timing: SecretsTiming | None = None, workers: int = 2) -> None:
        self.vcluster = vcluster
        self.organization = organization
        self.environment = environment
        self.kubeconfig = Path(kubeconfig)
        self.clock = clock
        self.provider = OpenBaoProvider(openbao_url, organization)
        self.agent = agent
        self.on_status = on_status
        self.timing = timing or SecretsTiming()
        self._workers = max(1, workers)
        self._queue = WorkQueue()
        self._timers: dict[str, TimerHandle] = {}
        self._timers_lock = threading.Lock()
        self._attempts: dict[str, int] = {}
        self._next: dict[str, tuple[int, datetime]] = {}  # key -> (generation, when its next sync is planned)
        self._known: dict[str, tuple[str, str]] = {}  # ExternalSecret key -> (environment, application)
        self._executor: ThreadPoolExecutor | None = None
        self._kube: Kube | None = None
        self._reloader: Reloader | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._watch_thread: threading.Thread | None = None
        self._watch_response: Any = None
        self._stopped = threading.Event()
        self._ops = 0
        self.syncs = 0
        self.ready = False

    # ------------------------------------------------------------------ lifecycle

    @property
    def thread_name(self) -> str:
        return f"catalyst-sim:secrets-{self.vcluster}"

    async def start(self) -> None:
        if self.ready:
            return
        loop = asyncio.get_running_loop()
        self._queue.bind(loop)
        self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix=self.thread_name)
        try:
            self._kube = await self._offload(Kube, self.kubeconfig)
            await self._offload(self._require_crd)
            self._reloader = Reloader(self._kube)
        except BaseException:
            await self.stop()
            raise
        self._tasks = [asyncio.create_task(self._work(), name=f"secrets:{self.vcluster}:{i}")
                       for i in range(self._workers)]
        self._watch_thread = threading.Thread(target=self._watch_loop, name=f"{self.thread_name}-watch", daemon=True)
        self._watch_thread.start()
        self._schedule("resync", self.timing.resync)
        self.ready = True

    def _require_crd(self) -> None:
        kube = self._require_kube()
        kube.forget_discovery()
        kube.resource(ESO_API, "ExternalSecret")  # raises if the vcluster does not serve the CRD

    async def stop(self) -> None:
        """Cancel timers, tasks and the watch; release the executor, the clients and the SVID agent."""
        self._stopped.set()
        self.agent.stop()
        self.ready = False
        self._queue.close()
        with self._timers_lock:
            for handle in self._timers.values():
                handle.cancel()
            self._timers.clear()
        response = self._watch_response
        if response is not None:
            with contextlib.suppress(Exception):
                response.shutdown()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._watch_thread is not None:
            await asyncio.to_thread(self._watch_thread.join, 5.0)
            self._watch_thread = None
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        if self._kube is not None:
            self._kube.close()
            self._kube = None

    def settled(self) -> bool:
        """Nothing queued or running (thread-safe): what remains waits for the clock."""
        return self._ops == 0 and self._queue.idle()

    def wait_settled(self, timeout: float = 10.0) -> bool:
        """Block (never on the controller's loop) until :meth:`settled`; False on timeout."""
        return self._queue.wait_settled_blocking(self.settled, timeout)

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """On the controller's loop: wait until :meth:`settled`."""
        await self._queue.wait_settled(self.settled, timeout, f"secrets controller {self.vcluster}")

    def request_sync(self, namespace: str, name: str) -> None:
        """Sync one ExternalSecret now (ESO's ``force-sync`` annotation does the same). Thread-safe."""
        self._queue.add(f"es/{namespace}/{name}")

    # ------------------------------------------------------------------ scheduling

    def _schedule(self, key: str, seconds: float) -> None:
        if self._stopped.is_set():
            return
        when = self.clock.now() + timedelta(seconds=seconds)
        handle = self.clock.call_at(when, functools.partial(self._queue.add, key))
        with self._timers_lock:
            old = self._timers.pop(key, None)
            self._timers[key] = handle
        if old is not None:
            old.cancel()

    def _cancel(self, key: str) -> None:
        with self._timers_lock:
            handle = self._timers.pop(key, None)
        if handle is not None:
            handle.cancel()

    async def _offload(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._executor is None:
            raise RuntimeError(f"secrets controller {self.vcluster} is stopped")
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args))

    def _require_kube(self) -> Kube:
        if self._kube is None:
            raise RuntimeError(f"secrets controller {self.vcluster} is not started")
        return self._kube

    # ------------------------------------------------------------------ watch

    def _watch_loop(self) -> None:
        """List, then watch from the list's resourceVersion; re-list after any error (client-go's reflector)."""
        api = api_client(self.kubeconfig)
        try:
            path = self._require_kube().resource(ESO_API, "ExternalSecret").path()
            while not self._stopped.is_set():
                try:
                    self._list_and_watch(api, path)
                except Exception as exc:  # a dropped watch is normal; re-list after a short real pause
                    if self._stopped.is_set():
                        return
                    log.debug("secrets %s: watch ended: %s", self.vcluster, exc)
                    self._stopped.wait(0.2)
        finally:
            api.close()

    def _list_and_watch(self, api: Any, path: str) -> None:
        listing = self._require_kube().request("GET", path)
        for item in (listing or {}).get("items") or []:
            self._queue.add(_key(item))
        version = str(((listing or {}).get("metadata") or {}).get("resourceVersion") or "")
        query = [("watch", "true"), ("resourceVersion", version), ("allowWatchBookmarks", "true"),
                 ("timeoutSeconds", "3600")]
        serialized = api.param_serialize("GET", path, query_params=query, header_params={"Accept": "application/json"},
                                         auth_settings=["BearerToken"])
        response = api.call_api(*serialized, _request_timeout=None).response
        self._watch_response = response
        try:
            if response.status != 200:
                raise KubeError(response.status, "WatchFailed", response.data[:300].decode(errors="replace"))
            for line in response:
                if self._stopped.is_set():
                    return
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                    self._queue.add(_key(event["object"]))
                elif event.get("type") == "ERROR":
                    return  # e.g. 410 Gone: re-list
        except (urllib3.exceptions.HTTPError, OSError, ValueError):
            if not self._stopped.is_set():
                raise
        finally:
            self._watch_response = None
            with contextlib.suppress(Exception):
                response.release_conn()

    # ------------------------------------------------------------------ work

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._ops += 1
            try:
                if key == "resync":
                    await self._offload(self._resync)
                else:
                    _, namespace, name = key.split("/", 2)
                    await self._offload(self._reconcile, namespace, name)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("secrets controller %s: %s failed", self.vcluster, key)
                self._schedule(key, self.timing.retry_base)
            finally:
                self._ops -= 1
                self._queue.done(key)

    def _resync(self) -> None:
        for item in self._require_kube().list(ESO_API, "ExternalSecret"):
            self._queue.add(_key(item))
        self._schedule("resync", self.timing.resync)

    def _reconcile(self, namespace: str, name: str) -> None:
        key = f"es/{namespace}/{name}"
        kube = self._require_kube()
        obj = kube.get(ESO_API, "ExternalSecret", name, namespace)
        if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
            self._cancel(key)
            self._attempts.pop(key, None)
            self._next.pop(key, None)
            known = self._known.pop(key, None)
            if known is not None and self.on_status is not None:  # no longer anyone's problem
                self.on_status(SyncStatus(self.vcluster, known[0], known[1], namespace, name, True, "Deleted", ""))
            return  # the Secret is owned by it: the garbage collector removes it
        try:
            parsed = es_spec.parse(obj)
        except es_spec.SpecError as exc:
            self._cancel(key)
            self._next.pop(key, None)
            self._report(obj, False, SYNC_ERROR, f"invalid ExternalSecret: {exc}")
            return
        now = self.clock.now()
        generation = int((obj.get("metadata") or {}).get("generation", 1))
        planned = self._next.get(key)
        if planned is not None and planned[0] == generation and now < planned[1]:
            return  # a refresh or a backoff retry is already scheduled for this generation
        due = self._due(obj, parsed, now)
        if due is not None:
            self._plan(key, generation, (due - now).total_seconds())
            return
        try:
            data = self._fetch(parsed)
            secret = self._secret(obj, parsed, data)
            kube.apply(secret, field_manager=FIELD_MANAGER)
        except (ProviderError, KubeError, SecretTooLarge) as exc:
            attempt = self._attempts.get(key, 0) + 1
            self._attempts[key] = attempt
            delay = min(self.timing.retry_base * 2 ** (attempt - 1), self.timing.retry_cap)
            message = getattr(exc, "message", None) or str(exc)
            self._report(obj, False, SYNC_ERROR, f"could not sync the Secret {parsed.target}: {message} "
                         f"(attempt {attempt}, retrying in {c.format_duration(delay)})")
            self._plan(key, generation, delay)
            return
        self._attempts.pop(key, None)
        self.syncs += 1
        assert self._reloader is not None
        self._reloader.secret_changed(namespace, parsed.target)
        self._report(obj, True, SYNCED, "Secret was synced", synced=True)
        if parsed.refresh_seconds > 0:
            self._plan(key, generation, parsed.refresh_seconds)
        else:
            self._cancel(key)
            self._next[key] = (generation, now + timedelta(days=36500))  # synced once, for this generation

    def _plan(self, key: str, generation: int, seconds: float) -> None:
        self._next[key] = (generation, self.clock.now() + timedelta(seconds=seconds))
        self._schedule(key, seconds)

    def _due(self, obj: dict[str, Any], parsed: es_spec.ExternalSecretSpec, now: datetime) -> datetime | None:
        """When the next sync is due if the current one is still good (``None``: sync now)."""
        status = obj.get("status") or {}
        ready = c.get(status.get("conditions"), c.READY)
        generation = str((obj.get("metadata") or {}).get("generation", ""))
        if not ready or ready.get("status") != "True" or status.get("syncedResourceVersion") != generation:
            return None
        if self._require_kube().get("v1", "Secret", parsed.target, parsed.namespace) is None:
            return None
        if parsed.refresh_seconds <= 0:
            return now + timedelta(days=3650)  # sync once: never again unless the spec changes
        try:
            refreshed = datetime.fromisoformat(str(status.get("refreshTime")).replace("Z", "+00:00"))
        except ValueError:
            return None
        due = refreshed + timedelta(seconds=parsed.refresh_seconds)
        return due if due > now else None

    def _fetch(self, parsed: es_spec.ExternalSecretSpec) -> dict[str, str]:
        kind, store = parsed.store
        if (kind, store) != (es_spec.STORE_KIND, es_spec.STORE_NAME):
            raise ProviderError(f'{kind} "{store}" not found: this Sovereign serves only the '
                                f'{es_spec.STORE_KIND} "{es_spec.STORE_NAME}"')
        token = self.provider.login(self.agent.current().token(self.clock.now()))
        cache: dict[tuple[str, int | None], dict[str, Any]] = {}
        values: dict[str, str] = {}
        for ref in parsed.refs:
            found = cache.get((ref.key, ref.version))
            if found is None:
                found = cache[(ref.key, ref.version)] = self.provider.read(token, ref.key, ref.version)
            if ref.secret_key is None:
                for prop in sorted(found):
                    values[prop] = property_value(found, ref.key, prop)
            else:
                values[ref.secret_key] = property_value(found, ref.key, ref.property)
        return values

    def _secret(self, obj: dict[str, Any], parsed: es_spec.ExternalSecretSpec, values: dict[str, str]
                ) -> dict[str, Any]:
        size = sum(len(k.encode()) + len(v.encode()) for k, v in values.items())
        if size > MAX_SECRET_BYTES:
            raise SecretTooLarge(f'Secret "{parsed.target}" is invalid: data: Too long: must have at most '
                                 f"{MAX_SECRET_BYTES} bytes (the values read from OpenBao are {size} bytes)")
        data = {k: base64.b64encode(v.encode()).decode() for k, v in sorted(values.items())}
        meta = obj["metadata"]
        labels = {k: v for k, v in (meta.get("labels") or {}).items()
                  if k.startswith(("openova.io/", "app.kubernetes.io/"))}
        digest = json.dumps(data, sort_keys=True)
        return {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {
                "name": parsed.target, "namespace": parsed.namespace,
                "labels": {**labels, MANAGED_LABEL: "true"},
                "annotations": {HASH_ANNOTATION: hashlib.sha256(digest.encode()).hexdigest()[:32]},
                "ownerReferences": [{"apiVersion": ESO_API, "kind": "ExternalSecret", "name": meta["name"],
                                     "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}],
            },
            "data": data,
        }

    def _report(self, obj: dict[str, Any], ready: bool, reason: str, message: str, *, synced: bool = False) -> None:
        meta = obj["metadata"]
        status = dict(obj.get("status") or {})
        generation = int(meta.get("generation", 1))
        now = self.clock.now()
        conditions = c.put(status.get("conditions"), c.READY, "True" if ready else "False", reason, message,
                           generation=generation, now=now)
        new_status: dict[str, Any] = {"conditions": conditions}
        if synced:
            new_status.update(refreshTime=c.rfc3339(now), syncedResourceVersion=str(generation),
                              binding={"name": es_spec.parse(obj).target})
        if any(status.get(k) != v for k, v in new_status.items()):
            self._require_kube().patch_status(ESO_API, "ExternalSecret", meta["name"], meta.get("namespace"),
                                              new_status)
        labels = meta.get("labels") or {}
        environment = str(labels.get("openova.io/environment") or self.environment)
        application = str(labels.get("openova.io/application") or meta.get("namespace") or "")
        self._known[_key(obj)] = (environment, application)
        if self.on_status is not None:
            self.on_status(SyncStatus(
                vcluster=self.vcluster, environment=environment, application=application,
                namespace=str(meta.get("namespace") or ""), name=str(meta["name"]), ready=ready, reason=reason,
                message=message))


class SecretTooLarge(Exception):
    pass


def _key(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"es/{meta.get('namespace') or ''}/{meta.get('name')}"
