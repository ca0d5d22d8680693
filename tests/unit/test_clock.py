"""The virtual clock (DESIGN.md §1): never backwards, timers in order, usable across threads."""

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import pytest

from catalyst_sim.clock import DEFAULT_EPOCH, ClockError, VirtualClock, WallClock


def test_timers_fire_in_time_order_at_their_own_instant() -> None:
    clock = VirtualClock()
    fired: list[tuple[str, datetime]] = []
    clock.call_later(30, lambda: fired.append(("b", clock.now())))
    clock.call_later(10, lambda: fired.append(("a", clock.now())))
    clock.call_later(90, lambda: fired.append(("c", clock.now())))
    clock.advance(timedelta(minutes=1))
    assert fired == [("a", DEFAULT_EPOCH + timedelta(seconds=10)), ("b", DEFAULT_EPOCH + timedelta(seconds=30))]
    assert clock.now() == DEFAULT_EPOCH + timedelta(minutes=1)
    assert clock.pending_timers() == 1


def test_a_timer_scheduled_by_a_timer_fires_in_the_same_advance_if_due() -> None:
    clock = VirtualClock()
    fired: list[float] = []

    def tick() -> None:
        fired.append((clock.now() - DEFAULT_EPOCH).total_seconds())
        if len(fired) < 5:
            clock.call_later(5, tick)

    clock.call_later(5, tick)
    clock.advance(17)
    assert fired == [5.0, 10.0, 15.0]


def test_time_never_goes_backwards() -> None:
    clock = VirtualClock()
    with pytest.raises(ClockError, match="never goes backwards"):
        clock.advance(-1)
    with pytest.raises(ClockError, match="never goes backwards"):
        clock.set(DEFAULT_EPOCH - timedelta(seconds=1))
    assert clock.now() == DEFAULT_EPOCH


def test_cancelled_timers_do_not_fire() -> None:
    clock = VirtualClock()
    fired: list[int] = []
    handle = clock.call_later(1, lambda: fired.append(1))
    handle.cancel()
    clock.advance(2)
    assert fired == []


def test_a_naive_start_is_refused() -> None:
    with pytest.raises(ClockError):
        VirtualClock(datetime(2026, 1, 1))


def test_async_sleep_on_another_thread_wakes_when_time_is_advanced() -> None:
    clock = VirtualClock()
    woke = threading.Event()

    async def sleeper() -> None:
        await clock.sleep(72 * 3600)
        woke.set()

    thread = threading.Thread(target=lambda: asyncio.run(sleeper()))
    thread.start()
    while clock.pending_timers() == 0:
        threading.Event().wait(0.001)
    assert not woke.is_set()
    clock.advance(timedelta(hours=71, minutes=59))
    assert not woke.wait(0.05)
    clock.advance(timedelta(minutes=1))
    thread.join(5)
    assert woke.is_set()


def test_listeners_hear_every_move() -> None:
    clock = VirtualClock()
    heard: list[datetime] = []
    clock.on_change(heard.append)
    clock.advance(60)
    clock.set(datetime(2026, 12, 1, tzinfo=UTC))
    assert heard == [DEFAULT_EPOCH + timedelta(seconds=60), datetime(2026, 12, 1, tzinfo=UTC)]


def test_wall_clock_timer_fires_and_can_be_cancelled() -> None:
    clock = WallClock()
    fired = threading.Event()
    clock.call_at(clock.now() + timedelta(milliseconds=10), fired.set)
    assert fired.wait(2)
    never = threading.Event()
    handle = clock.call_at(clock.now() + timedelta(milliseconds=50), never.set)
    handle.cancel()
    assert not never.wait(0.2)


def test_the_earliest_precise_timer_is_known_apart_from_periodic_ones() -> None:
    clock = VirtualClock()
    fired: list[str] = []
    clock.call_later(60, lambda: fired.append("poll"))
    window = clock.call_later(3600, lambda: fired.append("window opens"), precise=True)
    clock.call_later(7200, lambda: fired.append("soak done"), precise=True)
    assert clock.next_timer_at() == DEFAULT_EPOCH + timedelta(seconds=60)
    assert clock.next_precise_timer_at() == DEFAULT_EPOCH + timedelta(hours=1)
    window.cancel()
    assert clock.next_precise_timer_at() == DEFAULT_EPOCH + timedelta(hours=2)
    clock.advance(timedelta(hours=2))
    assert fired == ["poll", "soak done"] and clock.next_precise_timer_at() is None
