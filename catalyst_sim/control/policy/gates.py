"""Evaluate the destination Environment's EnvironmentPolicy against one promotion (R-PROMO-02..07).

Pure: the caller gathers a :class:`PromotionFacts` snapshot (PR author and reviews, team members, RE
score, head commit, when that commit first became Ready, *now* from the Clock, the Sovereign's
timezone) and gets a :class:`GateReport` back. Nothing here reads a clock, Gitea or the cluster, so
the same facts always give the same verdicts, and a promotion loop on the virtual clock re-evaluates
at :attr:`GateReport.next_change` instead of polling.

Decisions:

* Every blocking rule must pass for a merge (R-PROMO-02). ``re-score-gate`` with ``severity: warning``
  is evaluated and reported but never blocks (D-10); an unknown score (``None``) fails the gate with
  "no RE score recorded" — blocking under ``blocking``, a warning under ``warning``.
* ``pr-required`` (R-PROMO-03): each reviewer's latest APPROVED/REQUEST_CHANGES review decides
  (comments change nothing). It counts only when it is an approval by a current member of a listed
  team, is not dismissed, and was made on the head commit (a stale approval does not count). The PR
  author's own approval never counts. A REQUEST_CHANGES from a member of an approver team blocks
  until it is dismissed or that reviewer approves; even when stale (a new commit does not silently
  lift an objection). One from anyone else is shown but does not block.
* ``soak`` (D-11): soaked time = now - when the exact head commit first became Ready in
  ``sourceEnvironment``; facts are keyed by commit, so a new commit starts from zero. Exactly the
  duration passes (72h passes, 71h59m fails).
* ``change-window`` (D-12): fire times come from the cron in the Sovereign's timezone (default UTC);
  the window is ``[fire, fire + duration)``, start inclusive, end exclusive. The duration is elapsed
  time, so a window across a DST change still lasts exactly ``duration``. Overlapping or touching
  windows merge (a 14:00 window of 2h and a 16:00 one are open 14:00-18:00).
* No policy, or a policy without ``pr-required``: no gates, except that a change to a protected
  branch must still arrive by pull request (R-PROMO-07). Protected are the branches promotions
  target — ``staging``, ``uat`` and ``main`` (R-PROMO-01, D-14); ``develop`` and ``poc`` take direct
  commits (the IaC editor commits there). A pull request then needs zero approvals.
* A broken policy refuses every promotion into its Environments ("blocked: policy invalid"): no rule
  is evaluated, because none of them can be trusted, and waiting cannot fix it (no ``next_change``).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter

from catalyst_sim.control.policy.loading import PolicyBinding, PolicySet, PolicyStatus
from catalyst_sim.model import naming
from catalyst_sim.model.base import Problem
from catalyst_sim.model.resources import (
    ChangeWindowRule,
    EnvironmentPolicy,
    PrRequiredRule,
    ReScoreGateRule,
    SoakRule,
    problems_for_timezone,
)

APPROVED = "APPROVED"
REQUEST_CHANGES = "REQUEST_CHANGES"
COMMENT = "COMMENT"
PENDING = "PENDING"
REQUEST_REVIEW = "REQUEST_REVIEW"
ReviewState = Literal["APPROVED", "REQUEST_CHANGES", "COMMENT", "PENDING", "REQUEST_REVIEW"]
_STATE_ALIASES = {"APPROVE": APPROVED, "CHANGES_REQUESTED": REQUEST_CHANGES, "COMMENTED": COMMENT}
_STATES = {APPROVED, REQUEST_CHANGES, COMMENT, PENDING, REQUEST_REVIEW}

PROTECTED_BRANCHES: frozenset[str] = frozenset(naming.PROMOTION_ORDER[1:])  # staging, uat, main
POLICY_VALID = "policy-valid"
BLOCKED_POLICY_INVALID = "blocked: policy invalid"
_WINDOW_CHAIN_LIMIT = 1000  # merging touching windows stops here; an earlier next_change is still safe


# --------------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True)
class Review:
    """One PR review as Gitea reports it (``PullReview``): who, what, on which commit, dismissed or not.

    ``stale`` is Gitea's own flag; when it is ``None`` the review is stale if ``commit_id`` is not the
    head commit. Reviews are given in submission order.
    """

    reviewer: str
    state: str
    commit_id: str | None = None
    dismissed: bool = False
    stale: bool | None = None
    submitted_at: datetime | None = None

    def __post_init__(self) -> None:
        state = str(self.state).upper().replace("-", "_")
        state = _STATE_ALIASES.get(state, state)
        if state not in _STATES:
            raise ValueError(f"unknown review state {self.state!r}; expected one of {', '.join(sorted(_STATES))}")
        object.__setattr__(self, "state", state)

    def is_stale(self, head_sha: str) -> bool:
        if self.stale is not None:
            return self.stale or (self.commit_id is not None and self.commit_id != head_sha)
        return self.commit_id is not None and self.commit_id != head_sha


def reviews_from_gitea(items: Iterable[Mapping[str, Any]]) -> list[Review]:
    """Gitea ``GET /repos/{owner}/{repo}/pulls/{index}/reviews`` JSON -> reviews, oldest first."""
    reviews: list[tuple[int, Review]] = []
    for n, item in enumerate(items):
        user = item.get("user") or {}
        submitted = item.get("submitted_at")
        reviews.append((int(item.get("id") or n), Review(
            reviewer=str(user.get("login") or user.get("username") or ""),
            state=str(item.get("state") or COMMENT),
            commit_id=item.get("commit_id") or None,
            dismissed=bool(item.get("dismissed", False)),
            stale=item.get("stale"),
            submitted_at=datetime.fromisoformat(submitted.replace("Z", "+00:00")) if submitted else None,
        )))
    return [r for _, r in sorted(reviews, key=lambda pair: pair[0])]


@dataclass(frozen=True)
class PromotionFacts:
    """Everything the gates look at, captured at one instant.

    ``teams`` maps each team of the destination's Organization to its member logins.
    ``first_ready`` maps Environment -> commit sha -> when that commit first became Ready there
    (D-11); only the entry for ``head_sha`` is used, so a new head commit has no soak yet.
    ``re_score`` is 0..100, or ``None`` when no RE score was recorded. ``now`` is ``clock.now()``.
    ``via_pull_request`` is ``False`` for a direct push to the destination branch (R-PROMO-07).
    """

    destination: str
    head_sha: str
    now: datetime
    author: str | None = None
    reviews: Sequence[Review] = ()
    teams: Mapping[str, Collection[str]] = field(default_factory=dict)
    re_score: int | None = None
    first_ready: Mapping[str, Mapping[str, datetime]] = field(default_factory=dict)
    timezone: str = "UTC"
    via_pull_request: bool = True

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("PromotionFacts.now must be timezone-aware (use clock.now())")
        if self.re_score is not None and (isinstance(self.re_score, bool) or not 0 <= self.re_score <= 100):
            raise ValueError(f"RE score must be an integer 0..100 or None, got {self.re_score!r}")
        if problems := problems_for_timezone(self.timezone):
            raise ValueError(problems[0].message)
        naming.parse_environment_name(self.destination, "destination")

    def ready_since(self, environment: str) -> datetime | None:
        """When the head commit first became Ready in ``environment`` (D-11), or ``None``."""
        return self.first_ready.get(environment, {}).get(self.head_sha)

    @property
    def destination_branch(self) -> str:
        return naming.branch_for_env_type(naming.parse_environment_name(self.destination).env_type)


# --------------------------------------------------------------------------------------------------
# Outputs


@dataclass(frozen=True)
class RuleVerdict:
    """One rule's outcome. ``blocking`` says whether a failure of this rule blocks the merge.

    ``changes_at`` is the next instant at which this verdict could flip by time alone (soak reached,
    window opens or closes), else ``None``. ``policy``/``index`` locate the rule
    (``spec.rules[index]``); both are ``None`` for the implicit pull-request rule and for refusals.
    """

    kind: str
    passed: bool
    blocking: bool
    reason: str
    policy: str | None = None
    index: int | None = None
    changes_at: datetime | None = None

    @property
    def blocks(self) -> bool:
        return self.blocking and not self.passed

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "passed": self.passed, "blocking": self.blocking, "reason": self.reason,
                "policy": self.policy, "index": self.index,
                "changesAt": self.changes_at.isoformat() if self.changes_at else None}


@dataclass(frozen=True)
class GateReport:
    """All verdicts for one promotion; ``mergeable`` when every blocking rule passes (R-PROMO-02)."""

    environment: str
    evaluated_at: datetime
    verdicts: tuple[RuleVerdict, ...]
    policies: tuple[str, ...] = ()
    policy_valid: bool = True
    problems: tuple[Problem, ...] = ()

    @property
    def mergeable(self) -> bool:
        return self.policy_valid and all(v.passed for v in self.verdicts if v.blocking)

    @property
    def blockers(self) -> list[RuleVerdict]:
        return [v for v in self.verdicts if v.blocks]

    @property
    def warnings(self) -> list[RuleVerdict]:
        return [v for v in self.verdicts if not v.blocking and not v.passed]

    @property
    def next_change(self) -> datetime | None:
        """The earliest future instant at which a time-based verdict could flip; re-evaluate then."""
        times = [v.changes_at for v in self.verdicts if v.changes_at is not None and v.changes_at > self.evaluated_at]
        return min(times, default=None)

    @property
    def status(self) -> str:
        if not self.policy_valid:
            return BLOCKED_POLICY_INVALID
        if self.mergeable:
            return "mergeable"
        return f"blocked: {', '.join(dict.fromkeys(v.kind for v in self.blockers))}"

    def verdict(self, kind: str) -> RuleVerdict:
        """The first verdict of ``kind`` (tests and API views); KeyError when there is none."""
        for v in self.verdicts:
            if v.kind == kind:
                return v
        raise KeyError(f"no {kind} verdict for {self.environment} (have {[v.kind for v in self.verdicts]})")

    def as_dict(self) -> dict[str, Any]:
        nxt = self.next_change
        return {"environment": self.environment, "evaluatedAt": self.evaluated_at.isoformat(),
                "status": self.status, "mergeable": self.mergeable, "policyValid": self.policy_valid,
                "policies": list(self.policies), "verdicts": [v.as_dict() for v in self.verdicts],
                "nextChange": nxt.isoformat() if nxt else None, "problems": [p.as_dict() for p in self.problems]}


# --------------------------------------------------------------------------------------------------
# Evaluation


PolicyInput = PolicySet | PolicyBinding | PolicyStatus | EnvironmentPolicy | None


def evaluate_gates(policy: PolicyInput, facts: PromotionFacts) -> GateReport:
    """Evaluate the destination's policy (R-EP-02) for one promotion; see the module notes for rules.

    ``policy`` may be the whole :class:`PolicySet` (looked up by ``facts.destination``), a binding
    from it, one policy status, one policy, or ``None`` for an Environment without a policy.
    """
    binding = _binding(policy, facts.destination)
    now = facts.now.astimezone(UTC)
    names = tuple(dict.fromkeys([p.metadata.name for p in binding.policies] + [s.name for s in binding.broken]))
    if binding.broken:
        refusals = tuple(_refusal(status) for status in binding.broken)
        return GateReport(binding.environment, now, refusals, names, policy_valid=False,
                          problems=tuple(binding.problems))
    verdicts: list[RuleVerdict] = []
    has_pr_rule = False
    for pol in binding.policies:
        for index, rule in enumerate(pol.spec.rules):
            verdicts.append(_evaluate_rule(rule, facts, now, pol.metadata.name, index))
            has_pr_rule = has_pr_rule or isinstance(rule, PrRequiredRule)
    if not has_pr_rule and facts.destination_branch in PROTECTED_BRANCHES:
        verdicts.insert(0, _implicit_pull_request(facts))
    return GateReport(binding.environment, now, tuple(verdicts), names)


def _binding(policy: PolicyInput, destination: str) -> PolicyBinding:
    if policy is None:
        return PolicyBinding(destination)
    if isinstance(policy, PolicySet):
        return policy.for_environment(destination)
    if isinstance(policy, PolicyBinding):
        if policy.environment != destination:
            raise ValueError(f"policy binding is for {policy.environment!r}, not the destination {destination!r}")
        return policy
    if isinstance(policy, PolicyStatus):
        if policy.environments and destination not in policy.environments:
            raise ValueError(f"{policy.object} does not govern {destination!r} ({', '.join(policy.environments)})")
        if policy.valid and policy.policy is not None:
            return PolicyBinding(destination, (policy.policy,))
        return PolicyBinding(destination, broken=(policy,))
    if destination not in policy.spec.appliesTo.environments:
        raise ValueError(f"{policy.ref()} applies to {', '.join(policy.spec.appliesTo.environments)}, "
                         f"not {destination!r} (C-22)")
    return PolicyBinding(destination, (policy,))


def _refusal(status: PolicyStatus) -> RuleVerdict:
    first = status.problems[0] if status.problems else Problem(message="the policy could not be read")
    more = f" (and {len(status.problems) - 1} more problem(s))" if len(status.problems) > 1 else ""
    return RuleVerdict(POLICY_VALID, passed=False, blocking=True, policy=status.name,
                       reason=f"{BLOCKED_POLICY_INVALID}: {first}{more}")


def _evaluate_rule(rule: Any, facts: PromotionFacts, now: datetime, policy: str, index: int) -> RuleVerdict:
    if isinstance(rule, PrRequiredRule):
        passed, reason = _pr_required(rule, facts)
        return RuleVerdict(rule.kind, passed, True, reason, policy, index)
    if isinstance(rule, ReScoreGateRule):
        passed, reason = _re_score(rule, facts.re_score)
        return RuleVerdict(rule.kind, passed, rule.blocks, reason, policy, index)
    if isinstance(rule, SoakRule):
        passed, reason, changes = _soak(rule, facts, now)
        return RuleVerdict(rule.kind, passed, True, reason, policy, index, changes)
    if isinstance(rule, ChangeWindowRule):
        passed, reason, changes = _change_window(rule, now, facts.timezone)
        return RuleVerdict(rule.kind, passed, True, reason, policy, index, changes)
    # The model admits only the four kinds; anything else is refused rather than ignored.
    return RuleVerdict(str(getattr(rule, "kind", "unknown")), False, True,  # pragma: no cover
                       f"rule kind {getattr(rule, 'kind', '?')!r} cannot be evaluated", policy, index)


# -- pull request ----------------------------------------------------------------------------------


def _implicit_pull_request(facts: PromotionFacts) -> RuleVerdict:
    branch = facts.destination_branch
    if facts.via_pull_request:
        reason = (f"no pr-required rule for {facts.destination}: 0 approvals needed; changes to protected "
                  f"branch {branch} arrive by pull request")
    else:
        reason = (f"direct push to protected branch {branch} refused: changes into {facts.destination} must "
                  "arrive by pull request (R-PROMO-07)")
    return RuleVerdict("pr-required", facts.via_pull_request, True, reason)


def _pr_required(rule: PrRequiredRule, facts: PromotionFacts) -> tuple[bool, str]:
    teams = ", ".join(rule.approvers)
    if not facts.via_pull_request:
        return False, (f"direct push to {facts.destination_branch} skips the required pull request with "
                       f"{rule.minApprovals} approval(s) from {teams} (R-PROMO-07)")
    members = {team: {m.casefold() for m in facts.teams.get(team, ())} for team in rule.approvers}
    eligible = set().union(*members.values())
    author = facts.author.casefold() if facts.author else None

    latest: dict[str, Review] = {}
    for review in facts.reviews:
        if review.state in (APPROVED, REQUEST_CHANGES):
            key = review.reviewer.casefold()
            latest.pop(key, None)  # keep insertion order = order of each reviewer's deciding review
            latest[key] = review

    approved: list[str] = []
    notes: list[str] = []
    objections: list[str] = []
    for key, review in latest.items():
        who = review.reviewer
        if key == author:
            if review.state == APPROVED:
                notes.append(f"{who}'s own approval does not count (PR author)")
            continue
        what = "approval" if review.state == APPROVED else "change request"
        if review.dismissed:
            notes.append(f"{who}'s {what} was dismissed")
        elif key not in eligible:
            notes.append(f"{who} is not in {teams}" if review.state == APPROVED
                         else f"{who} requested changes (not an approver; does not block)")
        elif review.state == REQUEST_CHANGES:
            objections.append(who)
        elif review.is_stale(facts.head_sha):
            notes.append(f"{who}'s approval is stale")
        else:
            approved.append(who)

    for team in rule.approvers:
        if team not in facts.teams:
            notes.append(f"team {team} does not exist")
    pool = len(eligible - ({author} if author else set()))
    if pool < rule.minApprovals:
        notes.append(f"only {pool} eligible approver(s) besides the author")

    details = ([f"{', '.join(approved)} approved"] if approved else ["no valid approvals yet"]) + notes
    reason = f"{len(approved)} of {rule.minApprovals} required approvals from {teams} ({'; '.join(details)})"
    if objections:
        reason = (f"changes requested by {', '.join(objections)} (blocks until dismissed or approved); "
                  f"{reason}")
    return len(approved) >= rule.minApprovals and not objections, reason


# -- RE score --------------------------------------------------------------------------------------


def _re_score(rule: ReScoreGateRule, score: int | None) -> tuple[bool, str]:
    effect = "blocking" if rule.blocks else "warning: recorded, does not block"
    if score is None:
        return False, f"no RE score recorded (needs >= {rule.minScore}; {effect})"
    if score >= rule.minScore:
        return True, f"RE score {score} >= {rule.minScore}"
    return False, f"RE score {score} < {rule.minScore} ({effect})"


# -- soak ------------------------------------------------------------------------------------------


def _soak(rule: SoakRule, facts: PromotionFacts, now: datetime) -> tuple[bool, str, datetime | None]:
    need = format_span(rule.duration)
    since = facts.ready_since(rule.sourceEnvironment)
    if since is None:
        return False, (f"commit {facts.head_sha[:7]} has not been Ready in {rule.sourceEnvironment} yet "
                       f"(needs {need} soak)"), None
    since = since.astimezone(UTC)
    soaked = max(now - since, timedelta(0))
    passed = soaked >= rule.duration
    return passed, f"soaked {format_span(soaked)} of {need} in {rule.sourceEnvironment}", (
        None if passed else since + rule.duration)


# -- change window ---------------------------------------------------------------------------------


def _change_window(rule: ChangeWindowRule, now: datetime, timezone: str) -> tuple[bool, str, datetime | None]:
    tz = ZoneInfo(timezone)
    window = change_window_at(rule, now, timezone)
    if window is not None:
        start, end = window
        local_start, local_end = start.astimezone(tz), end.astimezone(tz)
        end_text = local_end.strftime("%H:%M") if local_end.date() == local_start.date() \
            else local_end.strftime("%a %H:%M")
        return True, (f"inside change window {local_start.strftime('%a %H:%M')}\u2013{end_text} "
                      f"{_tz_label(timezone)}"), end
    opens = next_window_opening(rule, now, timezone)
    if opens is None:
        return False, f"outside change window: cron {rule.cron!r} never fires again", None
    return False, f"outside change window: next opens {_stamp(opens, timezone)}", opens


def change_window_at(rule: ChangeWindowRule, at: datetime, timezone: str = "UTC") -> tuple[datetime, datetime] | None:
    """The open window ``[start, end)`` containing ``at`` in UTC (touching windows merged), else ``None``."""
    at = at.astimezone(UTC)
    tz = ZoneInfo(timezone)
    try:
        fire = croniter(rule.cron, at.astimezone(tz) + timedelta(microseconds=1)).get_prev(datetime)
    except CroniterBadDateError:
        return None
    start = fire.astimezone(UTC)
    end = start + rule.duration
    if not start <= at < end:
        return None
    following = croniter(rule.cron, fire)
    for _ in range(_WINDOW_CHAIN_LIMIT):
        try:
            nxt = following.get_next(datetime).astimezone(UTC)
        except CroniterBadDateError:
            break
        if nxt > end:
            break
        end = max(end, nxt + rule.duration)
    return start, end


def next_window_opening(rule: ChangeWindowRule, after: datetime, timezone: str = "UTC") -> datetime | None:
    """The first fire time strictly after ``after`` (UTC), or ``None`` if the cron never fires again."""
    try:
        return croniter(rule.cron, after.astimezone(ZoneInfo(timezone))).get_next(datetime).astimezone(UTC)
    except CroniterBadDateError:
        return None


# -- formatting ------------------------------------------------------------------------------------


def format_span(span: timedelta) -> str:
    """``71h59m``, ``72h``, ``1h0m30s``, ``0s``: whole seconds, rounded down so a shortfall never shows as met."""
    total = max(0, math.floor(span.total_seconds()))
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{hours}h" if hours else ""
    if minutes or (hours and seconds):
        text += f"{minutes}m"
    if seconds:
        text += f"{seconds}s"
    return text or "0s"


def _tz_label(timezone: str) -> str:
    return "UTC" if timezone in ("UTC", "Etc/UTC") else timezone


def _stamp(at: datetime, timezone: str) -> str:
    return f"{at.astimezone(ZoneInfo(timezone)).strftime('%a %Y-%m-%d %H:%M')} {_tz_label(timezone)}"
