"""When the promotion-controller looks at an open promotion again without being told
(R-PROMO-02, R-PROMO-05, R-PROMO-06): at the next time-based change, and on a resync only while a
missing webhook could be what holds it (dismissed reviews, team changes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from catalyst_sim.control.policy import PolicySet, PromotionFacts, Review, evaluate_gates
from catalyst_sim.control.promotion import Evaluation, Promotion, ReScore
from catalyst_sim.control.promotion.controller import wake_times

from .conftest import HEAD, TEAMS

RESYNC = timedelta(minutes=2)
READY = datetime(2026, 11, 23, 9, 5, tzinfo=UTC)  # a Monday


def promotion(policies: PolicySet, now: datetime, *, approvals: tuple[str, ...] = ("omar", "sara"),
              score: int | None = 85, merge_error: str | None = None) -> Promotion:
    facts = PromotionFacts(destination="acme-prod", head_sha=HEAD, now=now, author="layla",
                           reviews=[Review(who, "APPROVED", commit_id=HEAD) for who in approvals],
                           teams=TEAMS["acme"], re_score=score, first_ready={"acme-stg": {HEAD: READY}})
    report = evaluate_gates(policies, facts)
    found = Promotion(organization="acme", application="orders-db", number=1, source="acme-stg",
                      destination="acme-prod", head_branch="staging", base_branch="main", author="layla",
                      opened_at=READY, merge_error=merge_error)
    found.last = Evaluation(report=report, head_sha=HEAD, ready_since={}, re_score=ReScore(score))
    return found


def test_a_promotion_held_by_time_wakes_at_the_next_change_only(policies: PolicySet) -> None:
    """Monday 10:05, soaking: the window opening on Tuesday 14:00 comes first; no resync meanwhile."""
    now = READY + timedelta(hours=1)
    assert wake_times(promotion(policies, now), now, RESYNC) == [datetime(2026, 11, 24, 14, 0, tzinfo=UTC)]


def test_a_soak_ending_inside_an_open_window_wakes_when_it_completes(policies: PolicySet) -> None:
    now = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)  # Thursday: soak completes 09:05, window opens 14:00
    assert wake_times(promotion(policies, now), now, RESYNC) == [READY + timedelta(hours=72)]


def test_a_closed_window_wakes_when_it_opens_even_while_approvals_are_missing(policies: PolicySet) -> None:
    now = READY + timedelta(hours=80)  # Thursday 17:05: soaked, window closed until Tuesday 14:00
    assert wake_times(promotion(policies, now, approvals=("omar",)), now, RESYNC) == [
        datetime(2026, 12, 1, 14, 0, tzinfo=UTC)]


def test_only_approvals_missing_inside_the_window_resyncs_and_wakes_when_it_closes(policies: PolicySet) -> None:
    now = datetime(2026, 11, 26, 14, 30, tzinfo=UTC)  # Thursday, inside the window, soaked
    assert wake_times(promotion(policies, now, approvals=("omar",)), now, RESYNC) == [
        now + RESYNC, datetime(2026, 11, 26, 16, 0, tzinfo=UTC)]


def test_a_missing_score_is_waited_for_by_webhook_not_by_resync(policies: PolicySet) -> None:
    now = datetime(2026, 11, 26, 14, 30, tzinfo=UTC)
    assert wake_times(promotion(policies, now, score=None), now, RESYNC) == [datetime(2026, 11, 26, 16, 0,
                                                                                       tzinfo=UTC)]


def test_a_mergeable_promotion_whose_merge_failed_is_retried(policies: PolicySet) -> None:
    now = datetime(2026, 11, 26, 14, 30, tzinfo=UTC)
    found = promotion(policies, now, merge_error="Gitea refused the merge (405)")
    assert found.last is not None and found.last.report.mergeable
    assert wake_times(found, now, RESYNC)[0] == now + RESYNC


def test_a_promotion_never_evaluated_is_resynced(policies: PolicySet) -> None:
    found = promotion(policies, READY)
    found.last = None
    assert wake_times(found, READY, RESYNC) == [READY + RESYNC]
