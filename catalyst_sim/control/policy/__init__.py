"""EnvironmentPolicy: loading the Sovereign's policies and evaluating promotion gates (R-EP, R-PROMO).

:mod:`.loading` reads ``system/catalyst-config/policies/`` into a :class:`PolicySet` that keeps broken
policies with their problems, so they block instead of vanishing; :mod:`.gates` evaluates one
promotion's :class:`PromotionFacts` against the destination's policy as a pure function.
"""

from catalyst_sim.control.policy.gates import (
    BLOCKED_POLICY_INVALID,
    POLICY_VALID,
    PROTECTED_BRANCHES,
    GateReport,
    PromotionFacts,
    Review,
    RuleVerdict,
    change_window_at,
    evaluate_gates,
    format_span,
    next_window_opening,
    reviews_from_gitea,
)
from catalyst_sim.control.policy.loading import (
    ALL_ENVIRONMENTS,
    PolicyBinding,
    PolicySet,
    PolicyStatus,
    TeamDirectory,
    check_policy_file,
    load_policy_set,
    load_policy_set_from_dir,
    load_policy_set_from_gitea,
)

__all__ = [
    "ALL_ENVIRONMENTS",
    "BLOCKED_POLICY_INVALID",
    "POLICY_VALID",
    "PROTECTED_BRANCHES",
    "GateReport",
    "PolicyBinding",
    "PolicySet",
    "PolicyStatus",
    "PromotionFacts",
    "Review",
    "RuleVerdict",
    "TeamDirectory",
    "change_window_at",
    "check_policy_file",
    "evaluate_gates",
    "format_span",
    "load_policy_set",
    "load_policy_set_from_dir",
    "load_policy_set_from_gitea",
    "next_window_opening",
    "reviews_from_gitea",
]
