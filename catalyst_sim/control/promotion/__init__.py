"""Promotion: a pull request from the lower Environment's branch to the higher one's, gated by the
destination's EnvironmentPolicy and merged by Catalyst once every blocking gate passes (R-PROMO).

:mod:`.service` opens, evaluates and merges; :mod:`.controller` re-evaluates on webhooks, score and
policy changes, soak progress and time; :mod:`.protection` turns the same policy into Gitea branch
protection so a direct push is refused too (R-PROMO-07); :mod:`.routing`, :mod:`.inputs` and
:mod:`.model` are the pure parts.
"""

from catalyst_sim.control.promotion.controller import PromotionController
from catalyst_sim.control.promotion.inputs import (
    ReScore,
    SoakLedger,
    TeamDirectory,
    Teams,
    parse_re_score,
    parse_revision,
    re_score_path,
)
from catalyst_sim.control.promotion.model import Evaluation, Promotion
from catalyst_sim.control.promotion.protection import apply_protection, desired_protection, protection_matches
from catalyst_sim.control.promotion.routing import is_promotion_pair, promotion_branches
from catalyst_sim.control.promotion.service import PromotionService

__all__ = [
    "Evaluation",
    "Promotion",
    "PromotionController",
    "PromotionService",
    "ReScore",
    "SoakLedger",
    "TeamDirectory",
    "Teams",
    "apply_protection",
    "desired_protection",
    "is_promotion_pair",
    "parse_re_score",
    "parse_revision",
    "promotion_branches",
    "protection_matches",
    "re_score_path",
]
