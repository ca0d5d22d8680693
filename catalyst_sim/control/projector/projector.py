"""The projector: one durable JetStream consumer per Environment folding events into KV (ARCHITECTURE §5).

Why it works the way it does:

* **One durable pull consumer per Environment** (R-PROJ-02), named ``projector-<env>``, on the
  Environment's stream ``WS_<ENV>`` with explicit acks. Messages are applied strictly in stream
  order, one at a time, and acked after their KV writes; so the consumer's ack floor is always a
  point up to which the KV is complete.
* **Restart resumes from the ack floor.** On start the consumer's delivery state is reset
  (``CONSUMER.RESET``, nats-server ≥ 2.14, ADR-60) so delivery continues at ack floor + 1 at once and
  in order, instead of waiting ``ack_wait`` for the dead instance's unacked messages to come back
  out of order. Messages that were applied but not acked are applied again: a no-op by the
  ``seq`` guard in :mod:`.fold`. Only one projector instance per Environment may run (single writer).
* **Idempotent, deterministic, rebuildable** (R-PROJ-06): see :mod:`.fold`. :meth:`Projector.rebuild`
  purges the KV bucket's stream and replays the Environment stream from the start.
* **Bad input never stops the fold**: a message that cannot be projected (not JSON, missing
  attributes, unknown type, another Environment) becomes a ``Parked/<stream-seq>`` record with the
  reason, counted in the Environment summary, and is acked.
* **NATS outages**: KV writes and fetches are retried until they succeed (nats-py reconnects to the
  same URL); applying the same message twice is harmless, so a retry is always safe.

KV bucket: ``ws-<env>-state`` (R-NAME-17), file storage. Readers use each key's latest value
(card history lives in ``ApplicationHistory/<app>`` records); the bucket keeps ``KV_HISTORY``
revisions per key only so that live watchers see every value (see ``KV_HISTORY``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Self

import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType
from nats.js.errors import APIError, BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from catalyst_sim.clock import Clock
from catalyst_sim.control.events.publisher import DEFAULT_DUPLICATE_WINDOW, canonical_json, ensure_stream
from catalyst_sim.control.projector.fold import Folder, ParkedEvent, decode
from catalyst_sim.model.naming import env_subject_filter, kv_bucket, parse_environment_name

__all__ = ["KVChange", "Projector", "durable_name"]

log = logging.getLogger(__name__)

#: Revisions kept per key. With one, the server drops a value as soon as the next one of that key is
#: stored, and a live watcher (an SSE stream) that had not been sent it yet never sees it: pipelined
#: writes would skip card transitions. 64 is JetStream's maximum.
KV_HISTORY = 64

_TRANSIENT: tuple[type[BaseException], ...] = (
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.StaleConnectionError,
    nats.js.errors.NoStreamResponseError,
    nats.js.errors.ServiceUnavailableError,
    asyncio.TimeoutError,
)


def durable_name(environment: str) -> str:
    """``projector-<env>``: the Environment's one durable consumer (R-PROJ-02)."""
    parse_environment_name(environment, "environment")
    return f"projector-{environment}"


@dataclass(frozen=True)
class KVChange:
    """One change of the read model, as :meth:`Projector.watch` yields it.

    ``revision`` is the KV revision (the KV stream's sequence): monotonic per bucket, so an SSE
    stream can use it as ``id:`` and resume from ``Last-Event-ID``.
    """

    key: str
    value: dict[str, Any] | None  # None for a delete or purge
    revision: int
    operation: str  # PUT | DEL | PURGE


class Projector:
    """Folds one Environment's events into its KV bucket. ``nc`` authenticates to the Org's account."""

    def __init__(
        self,
        nc: NATS,
        environment: str,
        clock: Clock,
        *,
        history_limit: int = 50,
        batch: int = 256,
        fetch_timeout: float = 0.5,
        ack_wait: float = 30.0,
        timeout: float = 5.0,
    ) -> None:
        self.nc = nc
        self.js = nc.jetstream(timeout=timeout)
        self.put_timeout = timeout
        self.environment = environment
        self.clock = clock
        self.bucket = kv_bucket(environment)
        self.durable = durable_name(environment)
        self.folder = Folder(environment, history_limit=history_limit)
        self.batch = batch
        self.fetch_timeout = fetch_timeout
        self.ack_wait = ack_wait
        self.stream = ""
        self._kv: KeyValue | None = None
        self._sub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._state: dict[str, dict[str, Any]] = {}
        self._bytes: dict[str, bytes] = {}
        self._applied = 0
        self._progress = asyncio.Condition()
        #: Counters for reports and the benchmark (not part of the read model).
        self.stats: dict[str, Any] = {"applied": 0, "parked": 0, "redelivered": 0, "kv_writes": 0, "retries": 0,
                                      "last_applied_at": None}

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def applied_seq(self) -> int:
        """Highest stream sequence applied (and acked) by this instance, or the ack floor at start."""
        return self._applied

    async def start(self) -> Self:
        """Ensure stream, KV bucket and durable consumer; load the KV; resume from the ack floor."""
        if self.running:
            return self
        self._stopping = False
        self.stream = await ensure_stream(self.js, self.environment, duplicate_window=DEFAULT_DUPLICATE_WINDOW)
        self._kv = await self._ensure_bucket()
        await self._load_state()
        floor = await self._ensure_consumer()
        self._applied = max(self._applied, floor)
        self._sub = await self.js.pull_subscribe_bind(durable=self.durable, stream=self.stream)
        self._task = asyncio.create_task(self._run(), name=f"projector-{self.environment}")
        return self

    async def stop(self) -> None:
        """Graceful stop: finish (and ack) the message in hand, then leave. Idempotent."""
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=self.fetch_timeout + 5)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._unsubscribe()

    async def kill(self) -> None:
        """Crash: cancel wherever the fold is (possibly between two KV writes), ack nothing more."""
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._unsubscribe()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_caught_up(self, timeout: float = 30.0) -> int:
        """Wait until every message now in the stream has been applied; return that stream sequence."""
        info = await self.js.stream_info(self.stream)
        target = info.state.last_seq
        async with self._progress:
            await asyncio.wait_for(self._progress.wait_for(lambda: self._applied >= target), timeout)
        return target

    async def rebuild(self, timeout: float = 120.0) -> int:
        """R-PROJ-06: wipe the KV (purge its stream) and replay the Environment stream from the start.

        The durable consumer is recreated so it delivers from sequence 1. Returns the stream sequence
        the rebuilt KV reflects.
        """
        await self.stop()
        with contextlib.suppress(NotFoundError):
            await self.js.delete_consumer(self.stream, self.durable)
        await self.js.purge_stream(f"KV_{self.bucket}")
        self._state.clear()
        self._bytes.clear()
        self._applied = 0
        await self.start()
        return await self.wait_caught_up(timeout)

    # -- reads -----------------------------------------------------------------------------------

    async def snapshot(self) -> dict[str, Any]:
        """The whole read model, read from KV (not from this instance's memory): key → record."""
        return {k: json.loads(v) for k, v in (await self.snapshot_bytes()).items()}

    async def snapshot_bytes(self) -> dict[str, bytes]:
        """Key → stored bytes, for byte-identity checks (rebuild, restart)."""
        kv = self._kv or await self.js.key_value(self.bucket)
        # The keys come from the KV stream's subjects, not from ``kv.keys()``: nats-py's keys() watcher
        # can signal "no more keys" before the last-per-subject deliveries arrive, and return a partial list.
        prefix = f"$KV.{self.bucket}."
        info = await self.js.stream_info(f"KV_{self.bucket}", subjects_filter=f"{prefix}>")
        keys = [subject.removeprefix(prefix) for subject in (info.state.subjects or {})]
        out: dict[str, bytes] = {}
        for key in sorted(keys):
            with contextlib.suppress(nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
                entry = await kv.get(key)
                out[key] = entry.value or b""
        return out

    async def watch(self, *, since_revision: int = 0, include_initial: bool = True) -> AsyncIterator[KVChange]:
        """Changes of the read model with their KV revisions (for SSE, R-PROJ-03).

        Starts with the current value of every key changed after ``since_revision`` (all keys for 0)
        unless ``include_initial`` is false, then follows live changes. Resuming with the last
        revision seen yields the latest value of every key changed since — what an SSE client that
        reconnects with ``Last-Event-ID`` needs. A rebuild purges the bucket without per-key events.
        """
        kv = self._kv or await self.js.key_value(self.bucket)
        watcher = await kv.watchall()
        initial = True
        try:
            async for entry in watcher:
                if entry is None:  # end of the initial values
                    initial = False
                    continue
                if (initial and not include_initial) or entry.revision <= since_revision:
                    continue
                op = entry.operation or "PUT"
                value = json.loads(entry.value) if op == "PUT" and entry.value else None
                yield KVChange(entry.key, value, entry.revision, op)
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()

    # -- the fold loop ---------------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = 0.05
        while not self._stopping:
            try:
                msgs = await self._sub.fetch(self.batch, timeout=self.fetch_timeout)
            except nats.errors.TimeoutError:
                continue
            except (*_TRANSIENT, nats.errors.ConnectionClosedError, APIError) as exc:
                if self.nc.is_closed:
                    log.warning("projector %s: connection closed, stopping", self.environment)
                    return
                log.debug("projector %s: fetch failed (%r); retrying", self.environment, exc)
                self.stats["retries"] += 1
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
                continue
            backoff = 0.05
            await self._apply_batch(msgs)

    async def _apply_batch(self, msgs: list[Msg]) -> None:
        """Fold a fetched batch in stream order with the KV writes pipelined, then ack it.

        The writes go out on one connection in fold order without waiting for each ack, so the KV
        stream stores them in that order: a crash leaves a prefix of them, exactly as if the batch had
        been applied one message at a time and stopped somewhere (the redelivery guard completes it).
        Only when every write of the batch is acknowledged are its messages acked.
        """
        pending: list[tuple[str, bytes, asyncio.Future[Any]]] = []
        done: list[Msg] = []
        for msg in msgs:
            if self._stopping:
                break  # unacked: delivered again from the ack floor on the next start
            for key, record in self._plan(msg):
                body = canonical_json(record)
                self._state[key] = record
                if self._bytes.get(key) == body:
                    continue
                self._bytes[key] = body
                pending.append((key, body, await self._put_async(key, body)))
            done.append(msg)
        failed = []
        if pending:
            # One deadline for the whole batch: publishes lost in a NATS restart never get their ack.
            await asyncio.wait([future for _key, _body, future in pending], timeout=self.put_timeout)
        for key, _body, future in pending:
            if future.done() and not future.cancelled() and future.exception() is None:
                self.stats["kv_writes"] += 1
                continue
            if not future.done():
                future.cancel()
            log.debug("projector %s: pipelined KV put %s failed; writing it again", self.environment, key)
            failed.append(key)
        for key in dict.fromkeys(failed):  # the latest value of each key, in first-failure order
            await self._put_bytes(key, self._bytes[key])
        for msg in done:
            with contextlib.suppress(Exception):  # a lost ack means a harmless redelivery
                await msg.ack()
        if done:
            self.stats["applied"] += len(done) - 1
            await self._advance(done[-1].metadata.sequence.stream)

    async def _put_async(self, key: str, body: bytes) -> asyncio.Future[Any]:
        assert self._kv is not None
        try:
            return await self.js.publish_async(f"$KV.{self.bucket}.{key}", body)
        except Exception as exc:  # e.g. reconnecting: retried below
            failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            failed.set_exception(exc)
            return failed

    def _plan(self, msg: Msg) -> list[tuple[str, dict[str, Any]]]:
        """The KV writes of one message (a parked record for bad input; never raises)."""
        seq = msg.metadata.sequence.stream
        if msg.metadata.num_delivered > 1 or seq <= self._applied:
            self.stats["redelivered"] += 1
        raw = msg.data or b""
        try:
            event = decode(seq, msg.subject, raw, self.environment)
            return self.folder.plan(event, self._state)
        except ParkedEvent as parked:
            self.stats["parked"] += 1
            log.info("projector %s: parked seq %d on %s: %s", self.environment, seq, msg.subject, parked.reason)
            return self.folder.plan_parked(seq, msg.subject, raw, parked, self._state)
        except Exception as exc:  # a fold bug must not stop the read model: park and go on
            log.exception("projector %s: could not fold seq %d", self.environment, seq)
            self.stats["parked"] += 1
            return self.folder.plan_parked(seq, msg.subject, raw, ParkedEvent(f"projection error: {exc!r}"),
                                           self._state)

    async def _put_bytes(self, key: str, body: bytes) -> None:
        assert self._kv is not None
        backoff = 0.05
        while True:
            try:
                await self._kv.put(key, body)
                self.stats["kv_writes"] += 1
                return
            except _TRANSIENT as exc:
                if self.nc.is_closed:
                    raise
                log.debug("projector %s: KV put %s failed (%r); retrying", self.environment, key, exc)
                self.stats["retries"] += 1
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)

    async def _advance(self, seq: int) -> None:
        self.stats["applied"] += 1
        self.stats["last_applied_at"] = self.clock.now().isoformat()
        if seq > self._applied:
            async with self._progress:
                self._applied = seq
                self._progress.notify_all()

    # -- setup -----------------------------------------------------------------------------------

    async def _ensure_bucket(self) -> KeyValue:
        try:
            return await self.js.key_value(self.bucket)
        except BucketNotFoundError:
            pass
        try:
            return await self.js.create_key_value(
                bucket=self.bucket, history=KV_HISTORY, storage=StorageType.FILE,
                description=f"Read model of Environment {self.environment} (R-NAME-17)")
        except nats.js.errors.BadRequestError:
            return await self.js.key_value(self.bucket)  # created concurrently

    async def _load_state(self) -> None:
        """The KV is the projector's memory: reload it so the seq guards hold across restarts."""
        self._state.clear()
        self._bytes.clear()
        for key, body in (await self.snapshot_bytes()).items():
            self._bytes[key] = body
            self._state[key] = json.loads(body)

    async def _ensure_consumer(self) -> int:
        """Create or reset the durable consumer; return its ack floor (stream sequence)."""
        try:
            info = await self.js.consumer_info(self.stream, self.durable)
        except NotFoundError:
            config = ConsumerConfig(
                durable_name=self.durable, ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
                filter_subject=env_subject_filter(self.environment), ack_wait=self.ack_wait,
                max_ack_pending=max(self.batch * 4, 1024), max_deliver=-1,
                description=f"projector of Environment {self.environment} (R-PROJ-02)")
            info = await self.js.add_consumer(self.stream, config)
            return int(info.ack_floor.stream_seq if info.ack_floor else 0)
        # Resume exactly at ack floor + 1, in order, without waiting for ack_wait (module docstring).
        await self.js.reset_consumer(self.stream, self.durable)
        return int(info.ack_floor.stream_seq if info.ack_floor else 0)

    async def _unsubscribe(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
