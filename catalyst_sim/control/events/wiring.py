"""The event spine of one Sovereign: publishers per Organization, a projector per Environment.

How the control plane's inputs reach the read model (ARCHITECTURE §5, R-PROJ-01..03):

* Producers call the thread-safe ``submit_*`` methods from any thread (the GitOps engines run on
  their own threads, webhooks arrive on the API loop). Each event is counted as *in flight* at once,
  then queued to its Organization's worker on the spine's event loop, which publishes it with
  an ack and a de-duplication id (:class:`~catalyst_sim.control.events.publisher.EventPublisher`),
  in submission order — the projector relies on the order of one App's events.
* One NATS connection per Organization, authenticated as that Organization's account user
  (R-NAME-16): the account is created when the Organization is (``organization_created``).
* One :class:`~catalyst_sim.control.projector.Projector` per Environment (``environment_created``).
* ``settled()`` is true when nothing is in flight and every projector has applied every event the
  spine published; the harness waits for it before reading cards. ``caught_up(env)`` lets an API
  read wait for the same per Environment (read-your-writes for events already submitted).
* Bad input is refused where it enters: an event for an Environment the spine does not know is not
  published; it is recorded in ``rejected`` with its reason and counted (never raised into a
  producer's thread).

``reset()`` is per-scenario housekeeping: watches and projectors stop and every Organization's
streams and KV buckets are deleted, while the server and the connections stay up (cheap).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import nats
import nats.errors
from nats.aio.client import Client as NATS
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue

from catalyst_sim.clock import Clock
from catalyst_sim.control.events.publisher import EventPublisher, PublishError, canonical_json, stream_name
from catalyst_sim.control.projector import Folder, ParkedEvent, Projector, decode
from catalyst_sim.model.base import CatalystError
from catalyst_sim.model.naming import BRANCH_ENV_TYPES, env_subject_filter, kv_bucket, parse_environment_name

__all__ = ["EventSpine", "NatsAccounts", "Rejected"]

log = logging.getLogger(__name__)

REJECTED_KEPT = 200  # the most recent refusals kept for reports and tests
SPINE_STREAM_PREFIXES = ("WS_", "KV_ws-")  # Environment streams and read-model buckets (R-NAME-17)


class NatsAccounts(Protocol):
    """What the spine needs of the NATS deployment: its URL and an account per Organization."""

    @property
    def url(self) -> str: ...

    def add_account(self, org: str) -> tuple[str, str]: ...


@dataclass(frozen=True)
class Rejected:
    """An event the spine refused, with the reason (bad input never reaches JetStream)."""

    environment: str
    what: str
    reason: str


@dataclass
class _OrgLink:
    """One Organization's connection, publisher and ordered work queue."""

    organization: str
    queue: asyncio.Queue[tuple[str, Callable[[_OrgLink], Awaitable[Any]]]] = field(default_factory=asyncio.Queue)
    nc: NATS | None = None
    publisher: EventPublisher | None = None
    task: asyncio.Task[None] | None = None


class EventSpine:
    def __init__(self, accounts: NatsAccounts, clock: Clock, *, source: str = "/catalyst-sim/control-plane") -> None:
        self.accounts = accounts
        self.clock = clock
        self.source = source
        self._loop: asyncio.AbstractEventLoop | None = None
        self._orgs: dict[str, _OrgLink] = {}
        self._environments: set[str] = set()
        self._projectors: dict[str, Projector] = {}
        self._published: dict[str, int] = {}  # environment -> highest stream sequence acked to us
        self._inflight: dict[str, int] = {}  # environment -> submitted, not yet published
        self._lock = threading.Lock()
        # Per spine, so a restarted control plane never reuses an id still in the duplicate window.
        self._token = secrets.token_hex(3)
        self._instances = itertools.count(1)
        self._watches: dict[str, Any] = {}  # vcluster context -> VclusterWatch
        self._stopping: set[asyncio.Future[None]] = set()
        self.rejected: deque[Rejected] = deque(maxlen=REJECTED_KEPT)
        self.stats = {"submitted": 0, "published": 0, "duplicates": 0, "rejected": 0, "failed": 0}

    # -- lifecycle (on the spine's loop) ---------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        await self._halt()
        for link in list(self._orgs.values()):
            if link.nc is not None:
                with contextlib.suppress(Exception):
                    await link.nc.close()
        self._orgs.clear()
        self._loop = None

    async def reset(self) -> None:
        """Forget every Environment; delete the Organizations' streams and KV buckets (server stays up)."""
        await self._halt()
        links = [link for link in self._orgs.values() if link.nc is not None and link.nc.is_connected]
        await asyncio.gather(*(self._delete_streams(link) for link in links))
        for link in self._orgs.values():
            if link.nc is not None:  # a fresh publisher: its stream cache named streams just deleted
                link.publisher = EventPublisher(link.nc, link.organization, clock=self.clock, source=self.source)
        with self._lock:
            self._environments.clear()
            self._published.clear()
            self._inflight.clear()
        self.rejected.clear()

    async def _halt(self) -> None:
        watches, self._watches = list(self._watches.values()), {}
        await asyncio.gather(*(w.stop() for w in watches), return_exceptions=True)
        for link in self._orgs.values():
            task, link.task = link.task, None
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            while not link.queue.empty():
                link.queue.get_nowait()
        projectors, self._projectors = list(self._projectors.values()), {}
        # A crash-stop: the streams go away with the reset, nothing needs acking.
        await asyncio.gather(*(p.kill() for p in projectors), return_exceptions=True)

    @staticmethod
    async def _delete_streams(link: _OrgLink) -> None:
        assert link.nc is not None
        js = link.nc.jetstream(timeout=5)
        names = [info.config.name for info in await js.streams_info()]
        await asyncio.gather(*(js.delete_stream(name) for name in names
                               if name and name.startswith(SPINE_STREAM_PREFIXES)), return_exceptions=True)

    # -- topology (thread-safe) ------------------------------------------------------------------

    def organization_created(self, organization: str) -> None:
        """Give the Organization its own NATS account (R-ORG-03, R-NAME-16). Blocking; idempotent."""
        self.accounts.add_account(organization)

    def environment_created(self, environment: str) -> None:
        """Start accepting the Environment's events and start its projector (R-ENV-02 (4), (5))."""
        parse_environment_name(environment, "environment")
        with self._lock:
            self._environments.add(environment)
            self._inflight[environment] = self._inflight.get(environment, 0) + 1  # settled once it runs
        self._schedule(environment, "projector", self._start_projector(environment), counted=True)

    def environments(self) -> list[str]:
        with self._lock:
            return sorted(self._environments)

    def knows(self, environment: str) -> bool:
        with self._lock:
            return environment in self._environments

    def instance_tag(self) -> str:
        """A per-producer-instance id part: event ids that restart at 1 after a restart stay unique."""
        return f"{self._token}-{next(self._instances)}"

    # -- producers (thread-safe) -----------------------------------------------------------------

    def submit_flux(self, event: Mapping[str, Any], *, instance: str = "") -> None:
        """A GitOps engine envelope (R-FLUX-04) → ``ws.<env>.flux.<kustomization>``."""
        environment = str(event.get("environment", ""))
        envelope = dict(event)
        if instance:
            envelope["id"] = f"{instance}.{event.get('id')}"
        self._submit(environment, f"flux {event.get('subject')}",
                     lambda link: self._publisher(link).publish_flux(envelope))

    def submit_k8s(self, environment: str, kind: str, namespace: str | None, name: str, obj: Mapping[str, Any],
                   event_type: str, *, vcluster: str, instance: str) -> None:
        """A vcluster watch event → ``ws.<env>.k8s.<kind>.<ns>.<name>``."""
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
        rv = meta.get("resourceVersion", "") if isinstance(meta, Mapping) else ""
        event_id = f"k8s:{vcluster}:{instance}:{kind}:{namespace or '_'}:{name}:{event_type}:{rv}"
        self._submit(environment, f"k8s {kind} {namespace}/{name}",
                     lambda link: self._publisher(link).publish_k8s(
                         environment, kind, namespace, name, obj, event_type, event_id=event_id if rv else None,
                         vcluster=vcluster))

    def submit_git_push(self, organization: str, payload: Mapping[str, Any]) -> None:
        """A Gitea push webhook → ``ws.<env>.git.<sha>`` of the Environment whose branch moved (R-GIT-03)."""
        ref = str(payload.get("ref", ""))
        sha = str(payload.get("after", ""))
        repo = payload.get("repository") if isinstance(payload.get("repository"), Mapping) else {}
        body = {"repository": {"name": str(repo.get("name", "")), "full_name": str(repo.get("full_name", ""))},
                "ref": ref, "after": sha, "before": str(payload.get("before", ""))}
        for environment in self._environments_of_branch(organization, ref.removeprefix("refs/heads/")):
            self._submit(environment, f"git push {sha}",
                         lambda link, env=environment: self._publisher(link).publish_git(env, sha, body))

    def submit_pull_request(self, organization: str, app: str, number: int, *, open: bool, base: str,
                            head_sha: str, action: str = "") -> None:
        """A pull request into an Environment branch opened or closed (promotion state, R-PROMO-08)."""
        for environment in self._environments_of_branch(organization, base.removeprefix("refs/heads/")):
            self._submit(environment, f"pull request {app}#{number}",
                         lambda link, env=environment: self._publisher(link).publish_pull_request(
                             env, app, number, open=open, base=base, head_sha=head_sha, action=action))

    def watch_vcluster(self, environment: str, context: str, kubeconfig: Path) -> None:
        """Publish the vcluster's workload changes (``kube_watch``) while the spine runs."""
        from catalyst_sim.control.events.kube_watch import VclusterWatch

        def start() -> None:
            old = self._watches.pop(context, None)
            if old is not None:  # the vcluster was recreated: its old stream is gone
                self._stopping.add(asyncio.ensure_future(old.stop()))
            watch = VclusterWatch(kubeconfig, environment=environment, vcluster=context, spine=self,
                                  instance=self.instance_tag())
            self._watches[context] = watch
            watch.start()

        self._call(start)

    # -- reads (on the spine's loop) -------------------------------------------------------------

    def settled(self) -> bool:
        """Nothing in flight and every projector has applied every event published (thread-safe)."""
        with self._lock:
            if any(self._inflight.values()):
                return False
            published = dict(self._published)
        return all(self._projector_done(env, seq) for env, seq in published.items())

    def _projector_done(self, environment: str, seq: int) -> bool:
        projector = self._projectors.get(environment)
        return projector is not None and projector.applied_seq >= seq

    async def caught_up(self, environment: str, timeout: float = 2.0) -> bool:
        """Wait until the Environment's submitted events are in its KV; False after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            with self._lock:
                busy = self._inflight.get(environment, 0) > 0
                published = self._published.get(environment, 0)
            if not busy and (not published or self._projector_done(environment, published)):
                return True
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.002)

    def projector(self, environment: str) -> Projector | None:
        return self._projectors.get(environment)

    async def key_value(self, environment: str) -> KeyValue | None:
        """The Environment's read model bucket ``ws-<env>-state`` (R-NAME-17), None while it does not exist."""
        projector = self._projectors.get(environment)
        if projector is None:
            return None
        try:
            return await projector.js.key_value(kv_bucket(environment))
        except NotFoundError:
            return None

    # -- internals -------------------------------------------------------------------------------

    def _environments_of_branch(self, organization: str, branch: str) -> list[str]:
        env_type = BRANCH_ENV_TYPES.get(branch)
        if env_type is None:
            return []
        with self._lock:
            return sorted(e for e in self._environments if e == f"{organization}-{env_type}")

    def _submit(self, environment: str, what: str, publish: Callable[[_OrgLink], Awaitable[Any]]) -> None:
        with self._lock:
            known = environment in self._environments
            if known:
                self._inflight[environment] = self._inflight.get(environment, 0) + 1
                self.stats["submitted"] += 1
        if not known:
            self._reject(environment, what, f"event for unknown Environment {environment!r}: it was never created "
                                            "in this Sovereign (or was removed)")
            return

        async def run(link: _OrgLink) -> None:
            try:
                ack = await publish(link)
            except (PublishError, CatalystError, ValueError) as exc:
                self._reject(environment, what, str(exc))
                return
            with self._lock:
                self.stats["published"] += 1
                if ack.duplicate:
                    self.stats["duplicates"] += 1
                self._published[environment] = max(self._published.get(environment, 0), int(ack.seq))

        self._schedule(environment, what, run, counted=True)

    def _reject(self, environment: str, what: str, reason: str) -> None:
        log.warning("event spine: refused %s for %s: %s", what, environment or "?", reason)
        with self._lock:
            self.stats["rejected"] += 1
        self.rejected.append(Rejected(environment, what, reason))

    def _schedule(self, environment: str, what: str, job: Callable[[_OrgLink], Awaitable[Any]], *,
                  counted: bool = False) -> None:
        """Queue ``job`` on the Organization's worker (in order), from any thread."""
        organization = parse_environment_name(environment, "environment").organization

        def enqueue() -> None:
            link = self._link(organization)
            link.queue.put_nowait((what, self._counted(environment, job) if counted else job))

        if not self._call(enqueue) and counted:
            self._done(environment)

    def _counted(self, environment: str, job: Callable[[_OrgLink], Awaitable[Any]]
                 ) -> Callable[[_OrgLink], Awaitable[Any]]:
        async def run(link: _OrgLink) -> None:
            try:
                await job(link)
            finally:
                self._done(environment)

        return run

    def _done(self, environment: str) -> None:
        with self._lock:
            if self._inflight.get(environment, 0) > 0:
                self._inflight[environment] -= 1

    def _call(self, fn: Callable[[], None]) -> bool:
        loop = self._loop
        if loop is None or loop.is_closed():
            log.warning("event spine is not running; dropped work")
            return False
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            fn()
        else:
            loop.call_soon_threadsafe(fn)
        return True

    def _link(self, organization: str) -> _OrgLink:
        link = self._orgs.get(organization)
        if link is None:
            link = self._orgs[organization] = _OrgLink(organization)
        if link.task is None or link.task.done():
            link.task = asyncio.ensure_future(self._work(link))
        return link

    async def _work(self, link: _OrgLink) -> None:
        while True:
            what, job = await link.queue.get()
            try:
                await self._connect(link)
                await job(link)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one bad job never stops the Organization's worker
                log.exception("event spine: %s failed", what)
                with self._lock:
                    self.stats["failed"] += 1
                self.rejected.append(Rejected("", what, f"failed: {exc!r}"))

    async def _connect(self, link: _OrgLink) -> None:
        if link.nc is not None and not link.nc.is_closed:
            return
        user, password = await asyncio.to_thread(self.accounts.add_account, link.organization)

        async def quiet(_exc: Exception) -> None:  # reconnects are expected (a scenario restarts NATS)
            log.debug("nats %s: %r", link.organization, _exc)

        link.nc = await nats.connect(servers=[self.accounts.url], user=user, password=password, connect_timeout=5,
                                     reconnect_time_wait=0.1, max_reconnect_attempts=-1, error_cb=quiet,
                                     name=f"catalyst-control-plane:{link.organization}")
        link.publisher = EventPublisher(link.nc, link.organization, clock=self.clock, source=self.source)

    def _publisher(self, link: _OrgLink) -> EventPublisher:
        assert link.publisher is not None
        return link.publisher

    def _start_projector(self, environment: str) -> Callable[[_OrgLink], Awaitable[None]]:
        async def start(link: _OrgLink) -> None:
            if environment in self._projectors or not self.knows(environment):
                return
            assert link.nc is not None
            projector = Projector(link.nc, environment, self.clock)
            self._projectors[environment] = projector
            await projector.start()

        return start

    async def rebuild_copy(self, environment: str, timeout: float = 60.0) -> dict[str, bytes]:
        """What a fresh projector rebuilding from the stream would write (R-PROJ-06), key → bytes.

        The live projector and its bucket are left alone: the stream is replayed through an ephemeral
        consumer into a new :class:`Folder`, in memory.
        """
        projector = self._projectors.get(environment)
        if projector is None:
            raise CatalystError.single(f"Environment {environment!r} has no projector",
                                       object=f"Environment/{environment}", code="NotFound")
        js, stream = projector.js, stream_name(environment)
        last = int((await js.stream_info(stream)).state.last_seq)
        folder = Folder(environment, history_limit=projector.folder.history_limit)
        state: dict[str, dict[str, Any]] = {}
        sub = await js.pull_subscribe(env_subject_filter(environment), stream=stream, config=ConsumerConfig(
            ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, inactive_threshold=30.0))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            seq = 0
            while seq < last:
                if loop.time() > deadline:
                    raise TimeoutError(f"rebuild of {environment}: replayed {seq} of {last} messages")
                with contextlib.suppress(nats.errors.TimeoutError):
                    for msg in await sub.fetch(256, timeout=1.0):
                        seq = msg.metadata.sequence.stream
                        if seq > last:
                            break
                        raw = msg.data or b""
                        try:
                            writes = folder.plan(decode(seq, msg.subject, raw, environment), state)
                        except ParkedEvent as parked:
                            writes = folder.plan_parked(seq, msg.subject, raw, parked, state)
                        except Exception as exc:  # as the projector does: a fold bug parks the message
                            writes = folder.plan_parked(seq, msg.subject, raw,
                                                        ParkedEvent(f"projection error: {exc!r}"), state)
                        state.update(writes)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        return {key: canonical_json(record) for key, record in sorted(state.items())}

    async def restart_projector(self, environment: str, *, crash: bool = True) -> None:
        """Kill (or stop) the Environment's projector and start a new instance: it resumes from its
        durable consumer's ack floor and the KV it left (a scenario kills it mid-install)."""
        old = self._projectors.get(environment)
        if old is None:
            raise CatalystError.single(f"Environment {environment!r} has no projector",
                                       object=f"Environment/{environment}", code="NotFound")
        await (old.kill() if crash else old.stop())
        new = Projector(old.nc, environment, self.clock)
        self._projectors[environment] = new
        await new.start()
