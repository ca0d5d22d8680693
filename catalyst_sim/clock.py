"""Time as the control plane and the emulators see it (DESIGN.md §1).

Everything that waits, expires or soaks reads a :class:`Clock`. The embedded backend hands out a
:class:`VirtualClock` that steps advance ("When 72 hours pass"); ``live`` uses :class:`WallClock`.
The virtual clock never goes backwards and fires timers in time order. It is thread-safe: the
control plane runs on its own event loop in a background thread while pytest steps advance time
from the main thread.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

DEFAULT_EPOCH = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # a Tuesday morning, UTC


class Clock(Protocol):
    virtual: bool

    def now(self) -> datetime: ...

    def call_at(self, when: datetime, callback: Callable[[], None], *, precise: bool = False) -> TimerHandle: ...

    async def sleep(self, seconds: float) -> None: ...


@dataclass(order=True)
class TimerHandle:
    when: datetime
    seq: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)
    # A decision is taken at this exact instant (a change window opens, a soak completes): discrete-
    # event stepping lands on it rather than coalescing it into a longer jump (EmbeddedBackend.advance).
    precise: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class WallClock:
    """Real time: used on the ``live`` backend, where time-travel scenarios are skipped."""

    virtual = False

    def now(self) -> datetime:
        return datetime.now(UTC)

    def call_at(self, when: datetime, callback: Callable[[], None], *, precise: bool = False) -> TimerHandle:
        delay = max(0.0, (when - self.now()).total_seconds())
        timer = threading.Timer(delay, callback)
        timer.daemon = True
        handle = TimerHandle(when=when, seq=0, callback=callback)
        timer.start()
        original_cancel = handle.cancel

        def cancel() -> None:
            original_cancel()
            timer.cancel()

        handle.cancel = cancel  # type: ignore[method-assign]
        return handle

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ClockError(ValueError):
    pass


class VirtualClock:
    """Simulated time. ``advance`` and ``set`` move it forward and fire due timers in order."""

    virtual = True

    def __init__(self, start: datetime = DEFAULT_EPOCH) -> None:
        if start.tzinfo is None:
            raise ClockError("the virtual clock needs a timezone-aware start time")
        self._now = start.astimezone(UTC)
        self._timers: list[TimerHandle] = []
        self._seq = itertools.count()
        self._lock = threading.RLock()
        self._listeners: list[Callable[[datetime], None]] = []
        self._real_start = time.monotonic()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def call_at(self, when: datetime, callback: Callable[[], None], *, precise: bool = False) -> TimerHandle:
        with self._lock:
            handle = TimerHandle(when=when.astimezone(UTC), seq=next(self._seq), callback=callback, precise=precise)
            if handle.when <= self._now:
                # Already due: fire right away, outside the lock, like a zero-delay timer.
                pass
            else:
                heapq.heappush(self._timers, handle)
                return handle
        callback()
        return handle

    def call_later(self, seconds: float, callback: Callable[[], None], *, precise: bool = False) -> TimerHandle:
        return self.call_at(self.now() + timedelta(seconds=seconds), callback, precise=precise)

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            def resolve() -> None:
                if not future.done():
                    future.set_result(None)

            loop.call_soon_threadsafe(resolve)

        handle = self.call_later(seconds, wake)
        try:
            await future
        finally:
            handle.cancel()

    def on_change(self, listener: Callable[[datetime], None]) -> None:
        """Be told after every move of time (emulators re-evaluate time-based state)."""
        with self._lock:
            self._listeners.append(listener)

    def advance(self, delta: timedelta | float) -> datetime:
        if isinstance(delta, (int, float)):
            delta = timedelta(seconds=delta)
        if delta < timedelta(0):
            raise ClockError(f"time never goes backwards: cannot advance by {delta}")
        return self.set(self.now() + delta)

    def set(self, target: datetime) -> datetime:
        """Move to ``target``, firing every due timer at its own instant, in order."""
        target = target.astimezone(UTC)
        with self._lock:
            if target < self._now:
                raise ClockError(f"time never goes backwards: {target.isoformat()} is before "
                                 f"{self._now.isoformat()}")
        while True:
            with self._lock:
                while self._timers and self._timers[0].cancelled:
                    heapq.heappop(self._timers)
                if not self._timers or self._timers[0].when > target:
                    self._now = target
                    listeners = list(self._listeners)
                    break
                handle = heapq.heappop(self._timers)
                self._now = max(self._now, handle.when)
            handle.callback()
        for listener in listeners:
            listener(target)
        return target

    def next_timer_at(self) -> datetime | None:
        """When the earliest pending timer is due (discrete-event stepping: see ``advance`` users)."""
        with self._lock:
            while self._timers and self._timers[0].cancelled:
                heapq.heappop(self._timers)
            return self._timers[0].when if self._timers else None

    def next_precise_timer_at(self) -> datetime | None:
        """When the earliest pending ``precise`` timer is due."""
        with self._lock:
            due = [t.when for t in self._timers if t.precise and not t.cancelled]
            return min(due) if due else None

    def pending_timers(self) -> int:
        with self._lock:
            return sum(1 for t in self._timers if not t.cancelled)
