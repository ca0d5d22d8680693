"""One policy whatever the surface: an Environment's policy becomes Gitea branch protection
(R-PROMO-07, R-EP-02, R-SURF-03, C-22).

The gates are evaluated by the promotion service, but a person can also reach the destination branch
without it: ``git push`` straight to ``main``, or the merge button in Gitea. So the branch of every
Environment governed by a policy is protected in every App repo of its Organization:

* nobody pushes (``enable_push: false``: Gitea refuses it for admins too), so a change arrives by
  pull request only;
* only the control plane merges (merge whitelist = its own Gitea user), and it merges only when
  every blocking gate passes (R-PROMO-02); Gitea's own approval count is a second lock, not the
  policy: ``required_approvals`` = the largest ``minApprovals``, official reviewers = the approver
  teams, a change request blocks and a new commit dismisses earlier approvals, as the gates do;
* a broken policy locks the branch the same way with no approvals required (fail closed: nothing
  merges, because the service refuses every promotion under it);
* no policy: no protection (a rule the control plane made earlier is removed, others are left).

:func:`desired_protection` and :func:`protection_matches` are pure; :func:`apply_protection` talks
to Gitea through its API.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from catalyst_sim.clients.gitea import GiteaClient
from catalyst_sim.control.policy import PROTECTED_BRANCHES, PolicyBinding
from catalyst_sim.model.resources import PrRequiredRule

Options = dict[str, Any]


def desired_protection(binding: PolicyBinding, branch: str, merger: str) -> Options | None:
    """The CreateBranchProtectionOption fields for ``branch`` under ``binding``; None: unprotected."""
    locked: Options = {
        "enable_push": False,
        "enable_merge_whitelist": True,
        "merge_whitelist_usernames": [merger],
        "block_on_rejected_reviews": True,
        "dismiss_stale_approvals": True,
    }
    if binding.blocked:
        return {**locked, "required_approvals": 0, "enable_approvals_whitelist": False,
                "approvals_whitelist_teams": []}
    if not binding.policies:
        return None
    rules = [rule for policy in binding.policies for rule in policy.spec.rules if isinstance(rule, PrRequiredRule)]
    if not rules and branch not in PROTECTED_BRANCHES:
        return None
    teams = sorted({team for rule in rules for team in rule.approvers})
    return {**locked, "required_approvals": max((rule.minApprovals for rule in rules), default=0),
            "enable_approvals_whitelist": bool(teams), "approvals_whitelist_teams": teams}


def protection_matches(current: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Whether Gitea's rule already says what ``desired`` says (names compare case-insensitively,
    lists as sets: Gitea returns whitelists in its own order and spelling)."""
    for key, want in desired.items():
        have = current.get(key)
        if isinstance(want, list):
            if {str(v).casefold() for v in want} != {str(v).casefold() for v in have or []}:
                return False
        elif have != want:
            return False
    return True


def apply_protection(gitea: GiteaClient, owner: str, repo: str, branch: str, desired: Options | None, *,
                     merger: str) -> str:
    """Make ``owner/repo``'s protection of ``branch`` match ``desired``; what was done.

    Without a policy, only a rule the control plane made (its user on the merge whitelist) is removed:
    a protection someone set up by hand in Gitea is not Catalyst's to delete.
    """
    current = next((rule for rule in gitea.list_branch_protections(owner, repo) if rule.get("rule_name") == branch),
                   None)
    if desired is None:
        merging = {str(name).casefold() for name in (current or {}).get("merge_whitelist_usernames") or []}
        if current is None or merger.casefold() not in merging:
            return "unchanged"
        gitea.delete_branch_protection(owner, repo, branch)
        return "deleted"
    if current is None:
        gitea.create_branch_protection(owner, repo, branch, **desired)
        return "created"
    if protection_matches(current, desired):
        return "unchanged"
    gitea.edit_branch_protection(owner, repo, branch, **desired)
    return "updated"
