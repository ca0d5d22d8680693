"""Shared facts for the policy tests: our fixture policies, a team directory and a passing promotion.

Times are UTC unless a test says otherwise. 2026-12-01 is a Tuesday and 2026-12-03 a Thursday, so
the golden acme-prod window (Tue/Thu 14:00 for 2h, R-EP-04) is open on both from 14:00 to 16:00.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from catalyst_sim.control.policy import (
    PolicySet,
    PromotionFacts,
    Review,
    load_policy_set_from_dir,
)

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "fixtures" / "policies"
BROKEN = REPO / "tests" / "data" / "policies-broken"

HEAD = "c0ffee1" + "0" * 33
OLD = "decaf00" + "0" * 33

ORGS = ("acme", "gulfbank", "muscatpharmacy")
ENVIRONMENTS = frozenset(f"{org}-{t}" for org in ORGS for t in ("dev", "stg", "uat", "prod"))
TEAMS: dict[str, dict[str, list[str]]] = {
    "acme": {"team-platform": ["layla", "sam", "omar"], "team-security": ["omar", "rana"],
             "team-marketing": ["zara"]},
    "gulfbank": {"team-platform": ["aisha", "badr"], "team-security": ["camil"], "team-risk": ["dana"]},
    "muscatpharmacy": {"owners": ["fatma"], "staff": ["hamed"]},
}


def utc(text: str) -> datetime:
    """``utc("2026-12-01 14:00")`` or with seconds."""
    fmt = "%Y-%m-%d %H:%M:%S" if text.count(":") == 2 else "%Y-%m-%d %H:%M"
    return datetime.strptime(text, fmt).replace(tzinfo=UTC)


def approve(who: str, commit: str = HEAD, **kw: Any) -> Review:
    return Review(who, "APPROVED", commit_id=commit, **kw)


def request_changes(who: str, commit: str = HEAD, **kw: Any) -> Review:
    return Review(who, "REQUEST_CHANGES", commit_id=commit, **kw)


GOLDEN_READY = utc("2026-11-28 14:00")  # 72h later is Tue 2026-12-01 14:00, exactly when the window opens


def acme_prod(now: datetime, **overrides: Any) -> PromotionFacts:
    """A staging -> main promotion into acme-prod that passes every golden gate at 14:00-16:00 Tue/Thu
    from 2026-12-01 on; tests override one fact at a time."""
    values: dict[str, Any] = {
        "destination": "acme-prod", "head_sha": HEAD, "now": now, "author": "sam",
        "reviews": [approve("layla"), approve("rana")], "teams": TEAMS["acme"], "re_score": 85,
        "first_ready": {"acme-stg": {HEAD: GOLDEN_READY}}, "timezone": "UTC",
    }
    values.update(overrides)
    return PromotionFacts(**values)


def ready(env: str, when: datetime, sha: str = HEAD) -> Mapping[str, Mapping[str, datetime]]:
    return {env: {sha: when}}


@pytest.fixture(scope="session")
def policies() -> PolicySet:
    return load_policy_set_from_dir(FIXTURES, environments=ENVIRONMENTS, teams=TEAMS)


HOUR = timedelta(hours=1)
