"""promotion-controller: re-evaluate open promotions whenever something a gate reads may have
changed, and merge them once every blocking gate passes (R-PROMO-02..08).

An explicit async reconciler in the kopf style: triggers put *keys* on a queue, one worker takes
them in order and runs the blocking service call in a thread. A key queued twice before it is
taken runs once. Triggers and what they queue:

* a Gitea ``pull_request*`` webhook (opened, synchronized, reviewed, closed, ...): that promotion;
  a pull request opened in Gitea between two Environment branches is adopted first;
* a push to ``system/catalyst-config`` or ``system/policy-bundle`` (policies, RE scores): every open
  promotion, and the branch protection of every Organization;
* a commit of an App first Ready in an Environment (a GitOps engine event): the open promotions of
  that App, whose soak may have started (D-11);
* new App repos or Environments in an Organization: the branch protection of that Organization;
* the clock reaching a report's ``next_change`` (soak reached, window opening or closing): that
  promotion;
* a ``resync`` period, only while nothing but ``pr-required`` blocks (:func:`wake_times`): that
  promotion, because Gitea sends no webhook for a dismissed review or a team membership change.

Timers live on the Sovereign's Clock, so on the virtual clock a 72 h soak or a change window opening
next Tuesday is one timer, not polling. The controller counts queued and running work so the
embedded backend's ``settle`` waits for it before time moves on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Hashable, Mapping
from datetime import datetime, timedelta
from typing import Any

from catalyst_sim.clock import Clock, TimerHandle
from catalyst_sim.control.promotion.inputs import parse_revision
from catalyst_sim.control.promotion.model import Key, Promotion
from catalyst_sim.control.promotion.service import PromotionService

log = logging.getLogger(__name__)

RESYNC = timedelta(minutes=2)
# Blockers whose change Gitea reports by no webhook (a dismissed review, a team membership change):
# only while nothing else blocks does an open promotion need the periodic resync.
RESYNC_KINDS = frozenset({"pr-required"})
ALL_POLICIES: tuple[str] = ("policies",)
RECOVER: tuple[str] = ("recover",)
SYSTEM_INPUT_REPOS = frozenset({"catalyst-config", "policy-bundle"})


class PromotionController:
    def __init__(self, service: PromotionService, clock: Clock, *, resync: timedelta = RESYNC) -> None:
        self.service = service
        self.clock = clock
        self.resync = resync
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[Hashable] | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = threading.Lock()
        self._queued: set[Hashable] = set()
        self._inflight = 0
        self._timers: dict[Key, list[TimerHandle]] = {}
        self._pulls: dict[Key, dict[str, Any]] = {}  # the latest webhook's pull request, for adoption

    # -- lifecycle (on the control plane's loop) ----------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="promotion-controller")
        self._put(RECOVER)  # open promotion PRs outlive a restart of the control plane

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
        with self._lock:
            self._queued.clear()
            self._inflight = 0
            timers, self._timers = self._timers, {}
            self._pulls.clear()
        for handles in timers.values():
            for handle in handles:
                handle.cancel()

    async def reset(self) -> None:
        """The Sovereign was wiped: forget every promotion, timer and soak record."""
        await self.stop()
        self.service.reset()
        await self.start()

    @property
    def idle(self) -> bool:
        return self._inflight == 0

    # -- triggers (thread-safe) -----------------------------------------------------------------------
    def pull_request_event(self, payload: Mapping[str, Any]) -> None:
        """A Gitea ``pull_request*`` webhook of an App repo."""
        owner, _, repo = str(payload["repository"]["full_name"]).partition("/")
        pull = payload.get("pull_request") or {}
        number = int(payload.get("number") or pull.get("number") or 0)
        if number:
            if pull:
                with self._lock:
                    self._pulls[(owner, repo, number)] = dict(pull)
            self._put(("pull", owner, repo, number))

    def system_pushed(self, repo: str) -> None:
        """A push to the ``system`` Org: policies or RE scores may have changed."""
        if repo in SYSTEM_INPUT_REPOS:
            self._put(ALL_POLICIES)

    def organization_changed(self, organization: str) -> None:
        """New App repos or Environments: their branches need the policies' protection."""
        self._put(("protect", organization))

    def flux_event(self, event: Mapping[str, Any]) -> None:
        """A Kustomization became Ready at some revision: soak clocks start here (D-11)."""
        data = event.get("data") or {}
        if event.get("type") != "io.fluxcd.kustomize.reconciled" or data.get("ready") != "True":
            return
        _, sha = parse_revision(str(data.get("revision") or ""))
        at = datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00"))
        organization, app = str(event["organization"]), str(event["subject"])
        if sha and self.service.ledger.record(organization, app, str(event["environment"]),
                                              str(event["vcluster"]), sha, at):
            for promotion in self.service.promotions(organization=organization, app=app, open_only=True):
                self._put(("promotion", *promotion.key))

    def promotion_opened(self, key: Key) -> None:
        self._put(("promotion", *key))

    def _put(self, key: Hashable) -> None:
        loop, queue = self._loop, self._queue
        if loop is None or queue is None:
            return  # not running (between a reset's stop and start): the reset forgets everything anyway
        with self._lock:
            if key in self._queued:
                return
            self._queued.add(key)
            self._inflight += 1
        loop.call_soon_threadsafe(queue.put_nowait, key)

    # -- the reconcile loop -----------------------------------------------------------------------------
    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            key = await self._queue.get()
            with self._lock:
                self._queued.discard(key)
            try:
                await self._reconcile(key)
            except Exception:  # one failing promotion must not stop the others; the resync retries
                log.exception("promotion reconcile of %s failed", key)
            finally:
                with self._lock:
                    self._inflight -= 1

    async def _reconcile(self, key: Hashable) -> None:
        assert isinstance(key, tuple)
        kind = key[0]
        if kind == "pull":
            _, owner, repo, number = key
            with self._lock:
                pull = self._pulls.pop((owner, repo, number), None)
            if pull is not None and self.service.find((owner, repo, number)) is None:
                await asyncio.to_thread(self.service.adopt, owner, repo, pull)
            await self._promotion((owner, repo, number))
        elif kind == "promotion":
            await self._promotion(key[1:])
        elif kind == "protect":
            await asyncio.to_thread(self.service.protect, key[1])
        elif kind == "recover":
            for found in await asyncio.to_thread(self.service.recover):
                self._put(("promotion", *found))
        elif kind == "policies":
            await asyncio.to_thread(self.service.protect, None)
            for promotion in self.service.promotions(open_only=True):
                self._put(("promotion", *promotion.key))

    async def _promotion(self, key: Key) -> None:
        self._cancel_timers(key)
        try:
            promotion = await asyncio.to_thread(self.service.reconcile, key)
        except Exception:  # Gitea unreachable, say: try again after a resync period
            log.exception("promotion %s could not be reconciled", key)
            self._arm(key, [self.clock.now() + self.resync])
            return
        if promotion is not None and promotion.is_open:
            self._arm(key, wake_times(promotion, self.clock.now(), self.resync))

    def _arm(self, key: Key, times: list[datetime]) -> None:
        # Gate verdicts change at these instants (a window opens, a soak completes): precise timers.
        handles = [self.clock.call_at(when, lambda: self._put(("promotion", *key)), precise=True) for when in times]
        with self._lock:
            self._timers[key] = handles

    def _cancel_timers(self, key: Key) -> None:
        with self._lock:
            handles = self._timers.pop(key, [])
        for handle in handles:
            handle.cancel()



def wake_times(promotion: Promotion, now: datetime, resync: timedelta) -> list[datetime]:
    """When to look at an open promotion again without being told.

    At the report's ``next_change`` (a soak reached, a window opening or closing). And after
    ``resync`` only if nothing but ``pr-required`` blocks, or every gate passed but the merge failed:
    a time-based blocker cannot clear before ``next_change``, and soak progress, scores and policies
    arrive as events. So a promotion waiting out a 72 h soak costs one timer, not one evaluation per
    resync period.
    """
    report = promotion.last.report if promotion.last is not None else None
    times: list[datetime] = []
    if report is None or report.mergeable or promotion.merge_error is not None or (
            report.blockers and all(v.kind in RESYNC_KINDS for v in report.blockers)):
        times.append(now + resync)
    if report is not None and report.next_change is not None:
        times.append(report.next_change)
    return sorted(set(times))
