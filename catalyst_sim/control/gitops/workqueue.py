"""A controller work queue (client-go's semantics) that also knows when nothing is left to do.

* A key queued twice before a worker takes it runs once.
* A key is never processed by two workers at once; queued again while it is being processed, it
  runs once more afterwards ("dirty"), so no trigger is lost.
* :meth:`add` is thread-safe: clock timers fire on whichever thread advances a
  :class:`~catalyst_sim.clock.VirtualClock` (or on a wall-clock timer thread).

The settle protocol rests on the last point: a timer callback queues its key *synchronously*, so
the moment ``clock.advance()`` returns, :meth:`idle` is already false for every reconcile that the
step made due, and stays false until those reconciles (and whatever they queued) have finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable


class WorkQueue:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._order: deque[str] = deque()
        self._queued: set[str] = set()
        self._active: set[str] = set()
        self._dirty: set[str] = set()
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._idle_event: asyncio.Event | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach to the loop the workers run on (must be called from that loop)."""
        self._loop = loop
        self._wakeup = asyncio.Event()
        self._idle_event = asyncio.Event()

    def add(self, key: str) -> None:
        with self._cond:
            if self._closed:
                return
            if key in self._active:
                self._dirty.add(key)
                return
            if key in self._queued:
                return
            self._queued.add(key)
            self._order.append(key)
        self._call_soon(self._set_wakeup)

    async def get(self) -> str:
        assert self._wakeup is not None, "bind() the queue to its loop first"
        while True:
            key = self._take()
            if key is not None:
                return key
            self._wakeup.clear()
            key = self._take()
            if key is not None:
                return key
            await self._wakeup.wait()

    def _take(self) -> str | None:
        with self._cond:
            if not self._order or self._closed:
                return None
            key = self._order.popleft()
            self._queued.discard(key)
            self._active.add(key)
            return key

    def done(self, key: str) -> None:
        with self._cond:
            self._active.discard(key)
            requeue = key in self._dirty and not self._closed
            self._dirty.discard(key)
            if requeue:
                self._queued.add(key)
                self._order.append(key)
            idle = not self._order and not self._active
            if idle:
                self._cond.notify_all()
        if requeue:
            self._call_soon(self._set_wakeup)
        if idle:
            self._call_soon(self._set_idle)

    def idle(self) -> bool:
        with self._cond:
            return not self._order and not self._active

    def pending(self) -> list[str]:
        """Queued and running keys (for diagnostics when a settle times out)."""
        with self._cond:
            return sorted(self._queued | self._active | self._dirty)

    def wait_idle_blocking(self, timeout: float) -> bool:
        """Block the calling thread (never the workers' loop) until idle; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._order or self._active:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    async def wait_idle(self, timeout: float) -> bool:
        """On the workers' loop: wait until idle; False on timeout."""
        assert self._idle_event is not None, "bind() the queue to its loop first"
        deadline = time.monotonic() + timeout
        while not self.idle():
            self._idle_event.clear()
            if self.idle():
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle_event.wait(), remaining)
        return True

    def wait_settled_blocking(self, settled: Callable[[], bool], timeout: float) -> bool:
        """Block (never on the workers' loop) until ``settled()`` — this queue idle and whatever else the
        owner counts; False on timeout."""
        deadline = time.monotonic() + timeout
        while not settled():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.wait_idle_blocking(min(remaining, 0.05))
        return True

    async def wait_settled(self, settled: Callable[[], bool], timeout: float, what: str) -> None:
        """On the workers' loop: wait until ``settled()``; :class:`TimeoutError` names ``what`` is busy."""
        deadline = time.monotonic() + timeout
        while not settled():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{what} still busy after {timeout}s: {self.pending() or 'work outside the queue'}")
            if self.idle():
                await asyncio.sleep(0.001)  # only work outside the queue (an add/remove call) is still running
            else:
                await self.wait_idle(min(remaining, 0.25))

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._order.clear()
            self._queued.clear()
            self._dirty.clear()
            self._cond.notify_all()
        self._call_soon(self._set_wakeup)
        self._call_soon(self._set_idle)

    # ------------------------------------------------------------------ loop hand-off

    def _call_soon(self, callback: object) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed between the check and the call
            loop.call_soon_threadsafe(callback)  # type: ignore[arg-type]

    def _set_wakeup(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    def _set_idle(self) -> None:
        if self._idle_event is not None:
            self._idle_event.set()
