"""One policy whatever the surface: the destination's policy as Gitea branch protection
(R-PROMO-07, R-EP-02, R-SURF-03)."""

from __future__ import annotations

from typing import Any

from catalyst_sim.control.policy import PolicyBinding, PolicySet, check_policy_file
from catalyst_sim.control.promotion import apply_protection, desired_protection, protection_matches

from .conftest import ENVIRONMENTS, TEAMS

MERGER = "catalyst"


def test_the_golden_policy_locks_main_to_reviewed_merges_by_the_control_plane(policies: PolicySet) -> None:
    options = desired_protection(policies.for_environment("acme-prod"), "main", MERGER)
    assert options == {
        "enable_push": False, "enable_merge_whitelist": True, "merge_whitelist_usernames": [MERGER],
        "block_on_rejected_reviews": True, "dismiss_stale_approvals": True, "required_approvals": 2,
        "enable_approvals_whitelist": True, "approvals_whitelist_teams": ["team-platform", "team-security"]}


def test_the_sme_policy_needs_one_owner(policies: PolicySet) -> None:
    options = desired_protection(policies.for_environment("muscatpharmacy-prod"), "main", MERGER)
    assert options is not None
    assert (options["required_approvals"], options["approvals_whitelist_teams"]) == (1, ["owners"])


def test_an_environment_without_a_policy_is_not_protected(policies: PolicySet) -> None:
    assert desired_protection(policies.for_environment("acme-dev"), "develop", MERGER) is None


def test_a_broken_policy_locks_the_branch_with_nothing_to_approve() -> None:
    """Fail closed: nobody pushes and only the control plane merges, which it refuses to do."""
    broken = check_policy_file("policies/acme-prod-policy.yaml", "kind: [", environments=ENVIRONMENTS,
                               teams=TEAMS)
    options = desired_protection(PolicyBinding("acme-prod", broken=(broken,)), "main", MERGER)
    assert options is not None
    assert options["enable_push"] is False and options["merge_whitelist_usernames"] == [MERGER]
    assert options["required_approvals"] == 0 and options["enable_approvals_whitelist"] is False


def test_a_policy_without_pr_required_still_keeps_pushes_off_promotion_branches() -> None:
    text = """apiVersion: catalyst.openova.io/v1alpha1
kind: EnvironmentPolicy
metadata: {name: acme-prod-policy}
spec:
  appliesTo: {environments: [acme-prod]}
  rules:
    - {kind: re-score-gate, minScore: 80}
"""
    status = check_policy_file("policies/acme-prod-policy.yaml", text, environments=ENVIRONMENTS, teams=TEAMS)
    assert status.valid and status.policy is not None
    binding = PolicyBinding("acme-prod", (status.policy,))
    options = desired_protection(binding, "main", MERGER)
    assert options is not None and options["enable_push"] is False and options["required_approvals"] == 0
    assert desired_protection(PolicyBinding("acme-dev", (status.policy,)), "develop", MERGER) is None


def test_gitea_rules_match_case_insensitively_and_as_sets() -> None:
    desired = {"enable_push": False, "required_approvals": 2, "approvals_whitelist_teams": ["team-platform", "owners"]}
    current = {"enable_push": False, "required_approvals": 2, "approvals_whitelist_teams": ["Owners", "team-platform"],
               "created_at": "2026-11-24T09:00:00Z"}
    assert protection_matches(current, desired)
    assert not protection_matches({**current, "required_approvals": 1}, desired)
    assert not protection_matches({**current, "approvals_whitelist_teams": ["owners"]}, desired)
    assert not protection_matches({**current, "enable_push": True}, desired)


class RecordingGitea:
    """The four branch-protection calls of GiteaClient, over one repo's rules in memory."""

    def __init__(self, rules: list[dict[str, Any]]) -> None:
        self.rules = rules
        self.calls: list[str] = []

    def list_branch_protections(self, owner: str, repo: str) -> list[dict[str, Any]]:
        return self.rules

    def create_branch_protection(self, owner: str, repo: str, rule_name: str, **options: Any) -> None:
        self.calls.append(f"create {rule_name}")
        self.rules.append({"rule_name": rule_name, **options})

    def edit_branch_protection(self, owner: str, repo: str, rule_name: str, **options: Any) -> None:
        self.calls.append(f"edit {rule_name}")

    def delete_branch_protection(self, owner: str, repo: str, rule_name: str) -> None:
        self.calls.append(f"delete {rule_name}")


def apply(gitea: RecordingGitea, desired: dict[str, Any] | None) -> str:
    return apply_protection(gitea, "acme", "orders-db", "main", desired, merger=MERGER)  # type: ignore[arg-type]


def test_protection_is_created_then_left_alone_then_edited(policies: PolicySet) -> None:
    desired = desired_protection(policies.for_environment("acme-prod"), "main", MERGER)
    gitea = RecordingGitea([])
    assert [apply(gitea, desired), apply(gitea, desired)] == ["created", "unchanged"]
    assert apply(gitea, {**(desired or {}), "required_approvals": 3}) == "updated"
    assert gitea.calls == ["create main", "edit main"]


def test_without_a_policy_only_the_control_planes_own_rule_is_removed() -> None:
    ours = RecordingGitea([{"rule_name": "main", "merge_whitelist_usernames": ["Catalyst"]}])
    theirs = RecordingGitea([{"rule_name": "main", "merge_whitelist_usernames": ["release-bot"]}])
    assert (apply(ours, None), apply(theirs, None)) == ("deleted", "unchanged")
    assert (ours.calls, theirs.calls) == (["delete main"], [])
