"""The promotion as the Catalyst API shows it (R-PROMO-01, R-PROMO-08)."""

from __future__ import annotations

from catalyst_sim.control.promotion import Promotion

from .conftest import TUESDAY_0905


def test_an_open_promotion_is_pending_approval_and_names_its_pull_request() -> None:
    view = Promotion(organization="acme", application="orders-db", number=3, source="acme-stg",
                     destination="acme-prod", head_branch="staging", base_branch="main", author="layla",
                     opened_at=TUESDAY_0905).as_dict()
    assert view["id"] == "acme/orders-db#3" and view["pendingApproval"] is True
    assert (view["from"], view["to"], view["author"], view["openedVia"]) == ("acme-stg", "acme-prod", "layla",
                                                                           "catalyst-api")
    assert view["pullRequest"] == {"repository": "acme/orders-db", "number": 3, "head": "staging", "base": "main",
                                   "url": "", "mergeCommitSha": None, "mergedAt": None}
    assert "gates" not in view  # never evaluated: no verdicts to show


def test_a_merged_promotion_is_no_longer_pending() -> None:
    found = Promotion(organization="acme", application="orders-db", number=3, source="acme-stg",
                      destination="acme-prod", head_branch="staging", base_branch="main", author="layla",
                      opened_at=TUESDAY_0905, state="merged", merge_commit="abc")
    assert found.as_dict()["pendingApproval"] is False and not found.is_open
