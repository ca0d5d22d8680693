"""The golden policy acme-prod-policy (R-EP-04) evaluated across a fortnight of virtual time.

Soak is counted from GOLDEN_READY (Sat 2026-11-28 14:00), so it completes at Tue 2026-12-01 14:00,
the very instant the Tue/Thu 14:00-16:00 change window opens (R-PROMO-05, R-PROMO-06, D-11, D-12).
"""

from __future__ import annotations

from datetime import datetime

import pytest

from catalyst_sim.clock import VirtualClock
from catalyst_sim.control.policy import PolicySet, evaluate_gates
from catalyst_sim.model.resources import (
    ChangeWindowRule,
    EnvironmentPolicy,
    PrRequiredRule,
    ReScoreGateRule,
    SoakRule,
)

from .conftest import GOLDEN_READY, acme_prod, utc


def test_golden_policy_has_the_r_ep_04_values(policies: PolicySet) -> None:
    binding = policies.for_environment("acme-prod")
    assert binding.state == "governed"
    (policy,) = binding.policies
    pr, score, soak, window = policy.spec.rules
    assert isinstance(pr, PrRequiredRule) and isinstance(score, ReScoreGateRule)
    assert isinstance(soak, SoakRule) and isinstance(window, ChangeWindowRule)
    assert (pr.kind, pr.approvers, pr.minApprovals) == ("pr-required", ["team-platform", "team-security"], 2)
    assert (score.kind, score.minScore, score.severity) == ("re-score-gate", 80, "blocking")
    assert (soak.kind, soak.sourceEnvironment, soak.duration.total_seconds()) == ("soak", "acme-stg", 72 * 3600)
    assert (window.kind, window.cron, window.duration.total_seconds()) == ("change-window", "0 14 * * 2,4", 7200)


# now, mergeable, failing blocking rules, next_change
GOLDEN_TIMELINE = [
    # Not Ready in acme-stg yet: becoming Ready is an event, not a time, so only the window counts.
    ("2026-11-28 13:59", False, ["soak", "change-window"], "2026-12-01 14:00"),
    ("2026-11-28 14:00", False, ["soak", "change-window"], "2026-12-01 14:00"),
    ("2026-11-30 09:00", False, ["soak", "change-window"], "2026-12-01 14:00"),
    ("2026-12-01 13:59", False, ["soak", "change-window"], "2026-12-01 14:00"),
    ("2026-12-01 14:00", True, [], "2026-12-01 16:00"),
    ("2026-12-01 15:59:59", True, [], "2026-12-01 16:00"),
    ("2026-12-01 16:00", False, ["change-window"], "2026-12-03 14:00"),
    ("2026-12-02 14:30", False, ["change-window"], "2026-12-03 14:00"),
    ("2026-12-03 14:00", True, [], "2026-12-03 16:00"),
    ("2026-12-05 14:00", False, ["change-window"], "2026-12-08 14:00"),  # Saturday
    ("2026-12-08 15:00", True, [], "2026-12-08 16:00"),
]


@pytest.mark.parametrize(("now", "mergeable", "failing", "next_change"), GOLDEN_TIMELINE,
                         ids=[row[0] for row in GOLDEN_TIMELINE])
def test_golden_policy_over_time(policies: PolicySet, now: str, mergeable: bool, failing: list[str],
                                 next_change: str) -> None:
    at = utc(now)
    not_ready_yet: dict[str, dict[str, datetime]] = {"acme-stg": {}}
    facts = acme_prod(at, first_ready=not_ready_yet) if at < GOLDEN_READY else acme_prod(at)
    report = evaluate_gates(policies, facts)
    assert report.mergeable is mergeable, [v.reason for v in report.verdicts]
    assert [v.kind for v in report.blockers] == failing
    assert report.next_change == utc(next_change)
    assert report.policies == ("acme-prod-policy",)
    assert [v.kind for v in report.verdicts] == ["pr-required", "re-score-gate", "soak", "change-window"]


def test_golden_reasons_read_like_the_console(policies: PolicySet) -> None:
    report = evaluate_gates(policies, acme_prod(utc("2026-12-01 13:59")))
    reasons = {v.kind: v.reason for v in report.verdicts}
    assert reasons == {
        "pr-required": "2 of 2 required approvals from team-platform, team-security (layla, rana approved)",
        "re-score-gate": "RE score 85 >= 80",
        "soak": "soaked 71h59m of 72h in acme-stg",
        "change-window": "outside change window: next opens Tue 2026-12-01 14:00 UTC",
    }
    assert report.status == "blocked: soak, change-window"
    open_report = evaluate_gates(policies, acme_prod(utc("2026-12-01 14:00")))
    assert open_report.verdict("change-window").reason == "inside change window Tue 14:00\u201316:00 UTC"
    assert open_report.verdict("soak").reason == "soaked 72h of 72h in acme-stg"
    assert open_report.status == "mergeable"


def test_a_promotion_loop_on_the_virtual_clock_wakes_only_at_next_change(policies: PolicySet) -> None:
    """What the promotion service does: evaluate, sleep until next_change, repeat until mergeable."""
    clock = VirtualClock(utc("2026-11-28 15:00"))
    woke: list[datetime] = []
    while True:
        report = evaluate_gates(policies, acme_prod(clock.now()))
        if report.mergeable:
            break
        assert report.next_change is not None
        woke.append(report.next_change)
        clock.set(report.next_change)
    assert woke == [utc("2026-12-01 14:00")]
    assert clock.now() == utc("2026-12-01 14:00")


def test_the_loop_walks_through_every_flip_when_soak_ends_between_windows(policies: PolicySet) -> None:
    """Ready on Thu 12:00: the Thu window opens and closes before the soak ends on Sun 12:00."""
    clock = VirtualClock(utc("2026-11-26 12:00"))
    facts_ready = {"acme-stg": {acme_prod(clock.now()).head_sha: utc("2026-11-26 12:00")}}
    woke: list[datetime] = []
    while not (report := evaluate_gates(policies, acme_prod(clock.now(), first_ready=facts_ready))).mergeable:
        assert report.next_change is not None
        woke.append(report.next_change)
        clock.set(report.next_change)
    assert woke == [utc("2026-11-26 14:00"), utc("2026-11-26 16:00"), utc("2026-11-29 12:00"),
                    utc("2026-12-01 14:00")]


def test_policy_object_can_be_evaluated_directly(policies: PolicySet) -> None:
    policy = policies.for_environment("acme-prod").policies[0]
    assert isinstance(policy, EnvironmentPolicy)
    assert evaluate_gates(policy, acme_prod(utc("2026-12-01 14:00"))).mergeable
    with pytest.raises(ValueError, match="applies to acme-prod, not 'acme-stg'"):
        evaluate_gates(policy, acme_prod(utc("2026-12-01 14:00"), destination="acme-stg"))
