"""Driving GitOps engines on a VirtualClock: advance a step, let the engines settle, look.

Time in a scenario only moves when a step moves it, and each move only *makes work due*; the
engines then do that work on their own loop. These helpers interleave the two so that a check runs
against a cluster in which everything the elapsed time caused has happened — and never wall-clock
sleeps. Steps should be small compared with what is being waited for (pod stages, health polls):
an engine's periodic work becomes due once per step, so one 10-minute jump behaves like a
controller that was paused for 10 minutes, not like ten 1-minute intervals.

``advance``/``advance_until`` run on the engines' own loop (tests that start the engines in the same
event loop); ``advance_until_blocking`` is for a thread other than that loop (pytest-bdd steps
talking to a control plane on its server thread).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

from catalyst_sim.clock import VirtualClock

if TYPE_CHECKING:
    from catalyst_sim.control.gitops.engine import GitOpsEngine

Predicate = Callable[[], bool | Awaitable[bool]]


async def _idle(engines: list[GitOpsEngine], timeout: float) -> None:
    for engine in engines:
        await engine.wait_idle(timeout)


async def advance(clock: VirtualClock, engines: Iterable[GitOpsEngine], seconds: float, *, step: float = 1.0,
                  timeout: float = 10.0) -> None:
    """Move ``seconds`` of virtual time forward in ``step``s, settling the engines after each."""
    group = list(engines)
    await _idle(group, timeout)
    remaining = seconds
    while remaining > 0:
        delta = min(step, remaining)
        clock.advance(delta)
        remaining -= delta
        await _idle(group, timeout)


async def advance_until(clock: VirtualClock, engines: Iterable[GitOpsEngine], predicate: Predicate, *,
                        step: float = 1.0, limit: float = 600.0, timeout: float = 10.0) -> float:
    """Advance in ``step``s until ``predicate()`` holds; the virtual seconds it took.

    :class:`TimeoutError` when ``limit`` virtual seconds pass first. ``predicate`` may be sync or
    async; it is evaluated only when every engine is settled.
    """
    group = list(engines)
    await _idle(group, timeout)
    elapsed = 0.0
    while True:
        outcome = predicate()
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome:
            return elapsed
        if elapsed >= limit:
            raise TimeoutError(f"not reached within {limit:g}s of virtual time")
        clock.advance(step)
        elapsed += step
        await _idle(group, timeout)


def advance_until_blocking(clock: VirtualClock, engines: Iterable[GitOpsEngine], predicate: Callable[[], bool], *,
                           step: float = 1.0, limit: float = 600.0, timeout: float = 10.0) -> float:
    """:func:`advance_until` for a thread that is not the engines' loop (it blocks that thread)."""
    group = list(engines)

    def settle() -> None:
        for engine in group:
            if not engine.wait_settled(timeout):
                raise TimeoutError(f"GitOps engine {engine.identity.vcluster} did not settle within {timeout}s")

    settle()
    elapsed = 0.0
    while not predicate():
        if elapsed >= limit:
            raise TimeoutError(f"not reached within {limit:g}s of virtual time")
        clock.advance(step)
        elapsed += step
        settle()
    return elapsed
