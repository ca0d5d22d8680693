"""Scenario-Outline-style edge tables for each gate (R-PROMO-02..07, D-10, D-11, D-12)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from catalyst_sim.control.policy import (
    PolicySet,
    PromotionFacts,
    Review,
    change_window_at,
    evaluate_gates,
    format_span,
    load_policy_set,
    reviews_from_gitea,
)
from catalyst_sim.model.resources import ChangeWindowRule

from .conftest import (
    ENVIRONMENTS,
    HEAD,
    OLD,
    TEAMS,
    acme_prod,
    approve,
    ready,
    request_changes,
    utc,
)

OPEN = utc("2026-12-01 14:30")  # inside the golden window, soak long complete


# --------------------------------------------------------------------------------------------------
# soak (R-PROMO-05, D-11)

SOAK = [
    # soaked for, passes, reason
    (timedelta(hours=71, minutes=59), False, "soaked 71h59m of 72h in acme-stg"),
    (timedelta(hours=71, minutes=59, seconds=59), False, "soaked 71h59m59s of 72h in acme-stg"),
    (timedelta(hours=72), True, "soaked 72h of 72h in acme-stg"),
    (timedelta(hours=72, seconds=1), True, "soaked 72h0m1s of 72h in acme-stg"),
    (timedelta(days=10), True, "soaked 240h of 72h in acme-stg"),
    (timedelta(0), False, "soaked 0s of 72h in acme-stg"),
]


@pytest.mark.parametrize(("soaked", "passes", "reason"), SOAK, ids=[r[2] for r in SOAK])
def test_soak_boundary(policies: PolicySet, soaked: timedelta, passes: bool, reason: str) -> None:
    report = evaluate_gates(policies, acme_prod(OPEN, first_ready=ready("acme-stg", OPEN - soaked)))
    verdict = report.verdict("soak")
    assert (verdict.passed, verdict.blocking, verdict.reason) == (passes, True, reason)
    assert report.mergeable is passes
    assert verdict.changes_at == (None if passes else OPEN - soaked + timedelta(hours=72))


def test_a_new_commit_resets_the_soak(policies: PolicySet) -> None:
    """D-11: only the exact head commit's first Ready counts; the old commit's 5 days are worthless."""
    history = {"acme-stg": {OLD: OPEN - timedelta(days=5)}}
    new_head = acme_prod(OPEN, first_ready=history, reviews=[approve("layla"), approve("rana")])
    assert new_head.head_sha == HEAD
    verdict = evaluate_gates(policies, new_head).verdict("soak")
    assert not verdict.passed
    assert verdict.reason == "commit c0ffee1 has not been Ready in acme-stg yet (needs 72h soak)"
    assert verdict.changes_at is None  # becoming Ready is an event; the projector re-triggers evaluation
    history["acme-stg"][HEAD] = OPEN - timedelta(hours=1)
    verdict = evaluate_gates(policies, acme_prod(OPEN, first_ready=history)).verdict("soak")
    assert (verdict.passed, verdict.reason) == (False, "soaked 1h of 72h in acme-stg")
    assert verdict.changes_at == OPEN + timedelta(hours=71)


def test_ready_in_another_environment_does_not_soak(policies: PolicySet) -> None:
    facts = acme_prod(OPEN, first_ready=ready("acme-dev", OPEN - timedelta(days=30)))
    assert not evaluate_gates(policies, facts).verdict("soak").passed


# --------------------------------------------------------------------------------------------------
# change window (R-PROMO-06, D-12)

WINDOW = [
    ("2026-12-01 13:59", False, "outside change window: next opens Tue 2026-12-01 14:00 UTC", "2026-12-01 14:00"),
    ("2026-12-01 13:59:59", False, "outside change window: next opens Tue 2026-12-01 14:00 UTC", "2026-12-01 14:00"),
    ("2026-12-01 14:00", True, "inside change window Tue 14:00\u201316:00 UTC", "2026-12-01 16:00"),
    ("2026-12-01 15:59", True, "inside change window Tue 14:00\u201316:00 UTC", "2026-12-01 16:00"),
    ("2026-12-01 15:59:59", True, "inside change window Tue 14:00\u201316:00 UTC", "2026-12-01 16:00"),
    ("2026-12-01 16:00", False, "outside change window: next opens Thu 2026-12-03 14:00 UTC", "2026-12-03 14:00"),
    ("2026-12-03 14:00", True, "inside change window Thu 14:00\u201316:00 UTC", "2026-12-03 16:00"),
    ("2026-12-03 16:00", False, "outside change window: next opens Tue 2026-12-08 14:00 UTC", "2026-12-08 14:00"),
    ("2026-12-02 14:00", False, "outside change window: next opens Thu 2026-12-03 14:00 UTC", "2026-12-03 14:00"),
]


@pytest.mark.parametrize(("now", "inside", "reason", "changes_at"), WINDOW, ids=[r[0] for r in WINDOW])
def test_change_window_boundaries(policies: PolicySet, now: str, inside: bool, reason: str,
                                  changes_at: str) -> None:
    at = utc(now)
    report = evaluate_gates(policies, acme_prod(at, first_ready=ready("acme-stg", at - timedelta(days=7))))
    verdict = report.verdict("change-window")
    assert (verdict.passed, verdict.reason, verdict.changes_at) == (inside, reason, utc(changes_at))
    assert report.mergeable is inside
    assert report.next_change == utc(changes_at)


def test_change_window_in_the_sovereign_timezone() -> None:
    """D-12: the cron fires in the Sovereign's timezone; Muscat is UTC+4, so 14:00 local is 10:00 UTC."""
    rule = ChangeWindowRule.model_validate({"kind": "change-window", "cron": "0 14 * * 2,4", "duration": "2h"})
    assert change_window_at(rule, utc("2026-12-01 10:00"), "Asia/Muscat") == (utc("2026-12-01 10:00"),
                                                                               utc("2026-12-01 12:00"))
    assert change_window_at(rule, utc("2026-12-01 14:00"), "Asia/Muscat") is None
    policies = load_policy_set({"policies/acme-prod-policy.yaml": GOLDEN_MUSCAT})
    soaked = ready("acme-stg", utc("2026-11-20 09:00"))
    report = evaluate_gates(policies, acme_prod(utc("2026-12-01 11:59"), timezone="Asia/Muscat", first_ready=soaked))
    assert report.verdict("change-window").reason == "inside change window Tue 14:00\u201316:00 Asia/Muscat"
    assert report.mergeable
    report = evaluate_gates(policies, acme_prod(utc("2026-12-01 12:00"), timezone="Asia/Muscat", first_ready=soaked))
    assert report.verdict("change-window").reason == ("outside change window: next opens Thu 2026-12-03 14:00 "
                                                      "Asia/Muscat")
    assert report.next_change == utc("2026-12-03 10:00")


def test_window_duration_is_elapsed_time_across_a_dst_change() -> None:
    """Berlin springs forward at 02:00 on 2026-03-29: a 01:00 CET window of 2h ends at 04:00 CEST."""
    rule = ChangeWindowRule.model_validate({"kind": "change-window", "cron": "0 1 * * *", "duration": "2h"})
    start, end = utc("2026-03-29 00:00"), utc("2026-03-29 02:00")
    assert change_window_at(rule, utc("2026-03-29 01:30"), "Europe/Berlin") == (start, end)
    assert change_window_at(rule, end, "Europe/Berlin") is None


def test_touching_and_overlapping_windows_merge() -> None:
    touching = ChangeWindowRule.model_validate({"kind": "change-window", "cron": "0 14,16 * * *", "duration": "2h"})
    assert change_window_at(touching, utc("2026-12-01 15:00")) == (utc("2026-12-01 14:00"), utc("2026-12-01 18:00"))
    overlapping = ChangeWindowRule.model_validate({"kind": "change-window", "cron": "0 * * * *", "duration": "90m"})
    start, end = change_window_at(overlapping, utc("2026-12-01 15:10")) or (None, None)
    assert start == utc("2026-12-01 15:00")
    assert end is not None and end > utc("2026-12-02 15:00")  # always open; the next_change is only a re-check


def test_window_spanning_midnight_names_both_days() -> None:
    text = GOLDEN_MUSCAT.replace('"0 14 * * 2,4"', '"0 23 * * 2"')
    policies = load_policy_set({"policies/acme-prod-policy.yaml": text})
    report = evaluate_gates(policies, acme_prod(utc("2026-12-01 23:30")))
    assert report.verdict("change-window").reason == "inside change window Tue 23:00\u2013Wed 01:00 UTC"


# --------------------------------------------------------------------------------------------------
# pr-required (R-PROMO-03)

APPROVALS: list[tuple[str, list[Review], bool, str]] = [
    ("two fresh approvals", [approve("layla"), approve("rana")], True,
     "2 of 2 required approvals from team-platform, team-security (layla, rana approved)"),
    ("one of two", [approve("layla")], False,
     "1 of 2 required approvals from team-platform, team-security (layla approved)"),
    ("none", [], False,
     "0 of 2 required approvals from team-platform, team-security (no valid approvals yet)"),
    ("stale approval ignored", [approve("layla"), approve("omar", commit=OLD)], False,
     "1 of 2 required approvals from team-platform, team-security (layla approved; omar's approval is stale)"),
    ("gitea stale flag ignored", [approve("layla"), approve("omar", stale=True)], False,
     "1 of 2 required approvals from team-platform, team-security (layla approved; omar's approval is stale)"),
    ("author self-approval ignored", [approve("layla"), approve("sam")], False,
     "1 of 2 required approvals from team-platform, team-security (layla approved; sam's own approval does not "
     "count (PR author))"),
    ("author login compared case-insensitively", [approve("layla"), approve("SAM")], False,
     "1 of 2 required approvals from team-platform, team-security (layla approved; SAM's own approval does not "
     "count (PR author))"),
    ("dismissed approval ignored", [approve("layla"), approve("rana", dismissed=True)], False,
     "1 of 2 required approvals from team-platform, team-security (layla approved; rana's approval was dismissed)"),
    ("non-member ignored", [approve("layla"), approve("zara")], False,
     "1 of 2 required approvals from team-platform, team-security (layla approved; zara is not in "
     "team-platform, team-security)"),
    ("same reviewer counts once", [approve("layla"), approve("layla")], False,
     "1 of 2 required approvals from team-platform, team-security (layla approved)"),
    ("member of both teams counts once", [approve("omar")], False,
     "1 of 2 required approvals from team-platform, team-security (omar approved)"),
    ("comment does not undo an approval", [approve("layla"), approve("rana"), Review("rana", "COMMENT")], True,
     "2 of 2 required approvals from team-platform, team-security (layla, rana approved)"),
    ("request changes blocks", [approve("layla"), approve("rana"), request_changes("omar")], False,
     "changes requested by omar (blocks until dismissed or approved); 2 of 2 required approvals from "
     "team-platform, team-security (layla, rana approved)"),
    ("stale request changes still blocks", [approve("layla"), approve("rana"), request_changes("omar", OLD)], False,
     "changes requested by omar (blocks until dismissed or approved); 2 of 2 required approvals from "
     "team-platform, team-security (layla, rana approved)"),
    ("dismissed request changes no longer blocks",
     [approve("layla"), approve("rana"), request_changes("omar", dismissed=True)], True,
     "2 of 2 required approvals from team-platform, team-security (layla, rana approved; omar's change request "
     "was dismissed)"),
    ("request changes superseded by the same reviewer's approval",
     [request_changes("omar"), approve("layla"), approve("omar")], True,
     "2 of 2 required approvals from team-platform, team-security (layla, omar approved)"),
    ("approval withdrawn by a later request changes", [approve("omar"), approve("layla"), request_changes("omar")],
     False, "changes requested by omar (blocks until dismissed or approved); 1 of 2 required approvals from "
            "team-platform, team-security (layla approved)"),
    ("request changes from a non-approver does not block", [approve("layla"), approve("rana"),
                                                            request_changes("zara")], True,
     "2 of 2 required approvals from team-platform, team-security (layla, rana approved; zara requested changes "
     "(not an approver; does not block))"),
]


@pytest.mark.parametrize(("reviews", "passes", "reason"), [r[1:] for r in APPROVALS], ids=[r[0] for r in APPROVALS])
def test_pr_required_approvals(policies: PolicySet, reviews: list[Review], passes: bool, reason: str) -> None:
    report = evaluate_gates(policies, acme_prod(OPEN, reviews=reviews))
    verdict = report.verdict("pr-required")
    assert (verdict.passed, verdict.reason) == (passes, reason)
    assert verdict.blocking and verdict.changes_at is None
    assert report.mergeable is passes


def test_request_changes_blocks_until_dismissed(policies: PolicySet) -> None:
    objection = request_changes("omar")
    reviews = [approve("layla"), approve("rana"), objection]
    assert not evaluate_gates(policies, acme_prod(OPEN, reviews=reviews)).mergeable
    reviews[-1] = Review(objection.reviewer, objection.state, objection.commit_id, dismissed=True)
    assert evaluate_gates(policies, acme_prod(OPEN, reviews=reviews)).mergeable


def test_membership_is_read_at_evaluation_time(policies: PolicySet) -> None:
    """Someone who left the team no longer counts, even for an approval given while a member."""
    teams = {**TEAMS["acme"], "team-security": ["omar"]}
    verdict = evaluate_gates(policies, acme_prod(OPEN, teams=teams)).verdict("pr-required")
    assert not verdict.passed
    assert "rana is not in team-platform, team-security" in verdict.reason


def test_a_pool_too_small_to_ever_pass_is_named(policies: PolicySet) -> None:
    teams = {"team-platform": ["sam"], "team-security": ["rana"]}
    verdict = evaluate_gates(policies, acme_prod(OPEN, teams=teams)).verdict("pr-required")
    assert verdict.reason == ("1 of 2 required approvals from team-platform, team-security (rana approved; layla is "
                              "not in team-platform, team-security; only 1 eligible approver(s) besides the author)")


def test_a_team_deleted_after_loading_is_named(policies: PolicySet) -> None:
    teams = {"team-platform": TEAMS["acme"]["team-platform"]}
    verdict = evaluate_gates(policies, acme_prod(OPEN, teams=teams)).verdict("pr-required")
    assert not verdict.passed and "team team-security does not exist" in verdict.reason


def test_a_direct_push_skipping_the_required_pr_is_refused(policies: PolicySet) -> None:
    """R-PROMO-07: the same gates apply to a git push; pr-required cannot be met without a PR."""
    report = evaluate_gates(policies, acme_prod(OPEN, via_pull_request=False, reviews=[]))
    verdict = report.verdict("pr-required")
    assert not verdict.passed and not report.mergeable
    assert verdict.reason == ("direct push to main skips the required pull request with 2 approval(s) from "
                              "team-platform, team-security (R-PROMO-07)")


# --------------------------------------------------------------------------------------------------
# re-score-gate (R-PROMO-04, D-10)

SCORES = [
    (79, False, "RE score 79 < 80 (blocking)"),
    (80, True, "RE score 80 >= 80"),
    (100, True, "RE score 100 >= 80"),
    (0, False, "RE score 0 < 80 (blocking)"),
    (None, False, "no RE score recorded (needs >= 80; blocking)"),
]


@pytest.mark.parametrize(("score", "passes", "reason"), SCORES, ids=[r[2] for r in SCORES])
def test_re_score_gate_blocking(policies: PolicySet, score: int | None, passes: bool, reason: str) -> None:
    report = evaluate_gates(policies, acme_prod(OPEN, re_score=score))
    verdict = report.verdict("re-score-gate")
    assert (verdict.passed, verdict.blocking, verdict.reason) == (passes, True, reason)
    assert report.mergeable is passes


WARNING_SCORES = [
    (69, False, "RE score 69 < 70 (warning: recorded, does not block)"),
    (70, True, "RE score 70 >= 70"),
    (None, False, "no RE score recorded (needs >= 70; warning: recorded, does not block)"),
]


@pytest.mark.parametrize(("score", "passes", "reason"), WARNING_SCORES, ids=[r[2] for r in WARNING_SCORES])
def test_advisory_re_score_gate_warns_but_does_not_block(policies: PolicySet, score: int | None, passes: bool,
                                                         reason: str) -> None:
    """D-10: severity warning records the result; the SME merge goes ahead regardless."""
    report = evaluate_gates(policies, sme(re_score=score))
    verdict = report.verdict("re-score-gate")
    assert (verdict.passed, verdict.blocking, verdict.reason) == (passes, False, reason)
    assert report.mergeable
    assert report.warnings == ([] if passes else [verdict])
    assert report.status == "mergeable"


# --------------------------------------------------------------------------------------------------
# SME (minApprovals 1) vs corporate (2-3) with the same CR shape (R-EP-03)


def sme(**overrides: Any) -> PromotionFacts:
    values: dict[str, Any] = {
        "destination": "muscatpharmacy-prod", "head_sha": HEAD, "now": OPEN, "author": "hamed",
        "reviews": [approve("fatma")], "teams": TEAMS["muscatpharmacy"], "re_score": 75,
        "first_ready": ready("muscatpharmacy-stg", OPEN - timedelta(hours=24)),
    }
    values.update(overrides)
    return PromotionFacts(**values)


def gulfbank(reviews: list[Review]) -> PromotionFacts:
    return PromotionFacts(destination="gulfbank-prod", head_sha=HEAD, now=utc("2026-12-01 21:00"), author="aisha",
                          reviews=reviews, teams=TEAMS["gulfbank"], re_score=95,
                          first_ready=ready("gulfbank-uat", utc("2026-11-20 09:00")))


def test_sme_needs_one_approval_and_has_no_window(policies: PolicySet) -> None:
    report = evaluate_gates(policies, sme())
    assert report.mergeable
    assert [v.kind for v in report.verdicts] == ["pr-required", "re-score-gate", "soak"]
    assert report.verdict("pr-required").reason == "1 of 1 required approvals from owners (fatma approved)"
    assert report.next_change is None  # nothing time-based left to wait for
    only_author = evaluate_gates(policies, sme(author="fatma"))
    assert not only_author.mergeable  # the single org-admin cannot approve their own PR (R-PROMO-03)
    assert "only 0 eligible approver(s) besides the author" in only_author.verdict("pr-required").reason


@pytest.mark.parametrize(("approvers", "passes"), [
    (["badr", "camil", "dana"], True),
    (["badr", "camil"], False),
    (["badr", "camil", "aisha"], False),  # aisha is the author
])
def test_corporate_needs_three_approvals(policies: PolicySet, approvers: list[str], passes: bool) -> None:
    report = evaluate_gates(policies, gulfbank([approve(a) for a in approvers]))
    assert report.verdict("pr-required").passed is passes
    assert report.mergeable is passes
    assert report.verdict("change-window").reason == "inside change window Tue 20:00\u201323:00 UTC"


# --------------------------------------------------------------------------------------------------
# No policy, and policies without pr-required


def test_no_policy_on_a_protected_branch_still_requires_a_pull_request() -> None:
    via_pr = evaluate_gates(None, acme_prod(OPEN, destination="acme-uat"))
    assert via_pr.mergeable and via_pr.policies == ()
    assert [(v.kind, v.passed) for v in via_pr.verdicts] == [("pr-required", True)]
    assert via_pr.verdicts[0].reason == ("no pr-required rule for acme-uat: 0 approvals needed; changes to "
                                         "protected branch uat arrive by pull request")
    pushed = evaluate_gates(None, acme_prod(OPEN, destination="acme-uat", via_pull_request=False))
    assert not pushed.mergeable
    assert pushed.verdicts[0].reason == ("direct push to protected branch uat refused: changes into acme-uat must "
                                         "arrive by pull request (R-PROMO-07)")


def test_no_policy_on_develop_has_no_gates(policies: PolicySet) -> None:
    report = evaluate_gates(policies, acme_prod(OPEN, destination="acme-dev", via_pull_request=False))
    assert report.verdicts == () and report.mergeable and report.next_change is None


def test_policy_without_pr_rule_gets_the_implicit_pull_request_rule() -> None:
    text = GOLDEN_MUSCAT.split("    - kind: pr-required")[0] + "    - kind: re-score-gate\n      minScore: 50\n"
    policies = load_policy_set({"policies/acme-prod-policy.yaml": text}, environments=ENVIRONMENTS, teams=TEAMS)
    report = evaluate_gates(policies, acme_prod(OPEN, via_pull_request=False))
    assert [(v.kind, v.passed, v.policy) for v in report.verdicts] == [
        ("pr-required", False, None), ("re-score-gate", True, "acme-prod-policy")]


def test_two_policies_for_one_environment_both_apply() -> None:
    """appliesTo is primary (C-22): acme-uat-policy and acme-prod-policy both list acme-uat; all rules apply."""
    uat = GOLDEN_MUSCAT.replace("acme-prod", "acme-uat").split("    - kind: re-score-gate")[0]
    prod = GOLDEN_MUSCAT.replace("environments: [acme-prod]", "environments: [acme-prod, acme-uat]")
    policies = load_policy_set({"policies/acme-uat-policy.yaml": uat, "policies/acme-prod-policy.yaml": prod},
                               environments=ENVIRONMENTS, teams=TEAMS)
    binding = policies.for_environment("acme-uat")
    assert [p.metadata.name for p in binding.policies] == ["acme-prod-policy", "acme-uat-policy"]
    report = evaluate_gates(binding, acme_prod(OPEN, destination="acme-uat"))
    assert [v.kind for v in report.verdicts] == ["pr-required", "re-score-gate", "soak", "change-window",
                                                 "pr-required"]
    assert report.policies == ("acme-prod-policy", "acme-uat-policy")


# --------------------------------------------------------------------------------------------------
# Inputs


def test_reviews_from_gitea_json() -> None:
    items = [
        {"id": 7, "user": {"login": "rana"}, "state": "REQUEST_CHANGES", "commit_id": HEAD, "dismissed": True,
         "stale": False, "submitted_at": "2026-12-01T10:00:00Z"},
        {"id": 3, "user": {"login": "layla"}, "state": "APPROVED", "commit_id": OLD, "stale": True},
        {"id": 9, "user": {"login": "omar"}, "state": "COMMENT", "commit_id": HEAD},
    ]
    reviews = reviews_from_gitea(items)
    assert [r.reviewer for r in reviews] == ["layla", "rana", "omar"]
    assert reviews[0].is_stale(HEAD) and not reviews[1].is_stale(HEAD)
    assert reviews[1].dismissed and reviews[1].submitted_at == datetime(2026, 12, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(("state", "normal"), [("approved", "APPROVED"), ("APPROVE", "APPROVED"),
                                               ("request-changes", "REQUEST_CHANGES"),
                                               ("CHANGES_REQUESTED", "REQUEST_CHANGES"), ("COMMENTED", "COMMENT")])
def test_review_states_are_normalised(state: str, normal: str) -> None:
    assert Review("x", state).state == normal


@pytest.mark.parametrize(("overrides", "message"), [
    ({"re_score": 101}, "0..100"),
    ({"re_score": -1}, "0..100"),
    ({"timezone": "Mars/Olympus"}, "unknown timezone"),
    ({"destination": "acme"}, "Environment name"),
])
def test_facts_reject_impossible_inputs(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(Exception, match=message):
        acme_prod(OPEN, **overrides)

def test_facts_and_reviews_reject_naive_time_and_unknown_states() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        acme_prod(datetime(2026, 12, 1, 14))
    with pytest.raises(ValueError, match="unknown review state"):
        Review("x", "LGTM")


@pytest.mark.parametrize(("span", "text"), [
    (timedelta(hours=72), "72h"), (timedelta(hours=71, minutes=59), "71h59m"), (timedelta(minutes=45), "45m"),
    (timedelta(hours=1, seconds=30), "1h0m30s"), (timedelta(0), "0s"), (timedelta(seconds=59.9), "59s"),
    (timedelta(seconds=-5), "0s"),
])
def test_format_span_never_rounds_up(span: timedelta, text: str) -> None:
    assert format_span(span) == text


GOLDEN_MUSCAT = """\
apiVersion: catalyst.openova.io/v1alpha1
kind: EnvironmentPolicy
metadata:
  name: acme-prod-policy
spec:
  appliesTo:
    environments: [acme-prod]
  rules:
    - kind: pr-required
      approvers: [team-platform, team-security]
      minApprovals: 2
    - kind: re-score-gate
      minScore: 80
    - kind: soak
      sourceEnvironment: acme-stg
      duration: 72h
    - kind: change-window
      cron: "0 14 * * 2,4"
      duration: 2h
"""
