"""Shared facts for the promotion tests: our fixture policies and the acme team directory."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from catalyst_sim.control.policy import PolicySet, load_policy_set_from_dir
from catalyst_sim.control.promotion import Teams

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "policies"
HEAD = "c0ffee1" + "0" * 33
ENVIRONMENTS = frozenset({"acme-dev", "acme-stg", "acme-prod", "muscatpharmacy-stg", "muscatpharmacy-prod",
                          "gulfbank-uat", "gulfbank-prod"})
# Gitea's team names are case-insensitive: the SME policy's "owners" is the Org's "Owners" team.
TEAMS = {"acme": Teams({"team-platform": ["layla", "omar"], "team-security": ["sara", "yusuf"]}),
         "muscatpharmacy": Teams({"Owners": ["fatma"]}),
         "gulfbank": Teams({"team-platform": ["a", "b"], "team-security": ["c"], "team-risk": ["d"]})}
TUESDAY_0905 = datetime(2026, 11, 24, 9, 5, tzinfo=UTC)


@pytest.fixture(scope="session")
def policies() -> PolicySet:
    return load_policy_set_from_dir(FIXTURES, environments=ENVIRONMENTS, teams=TEAMS)
