"""RE scores, soak history and team lookups: what the gates read besides the pull request
(R-PROMO-03..05, D-10, D-11)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from catalyst_sim.control.promotion import (
    SoakLedger,
    TeamDirectory,
    Teams,
    parse_re_score,
    parse_revision,
    re_score_path,
)

from .conftest import TUESDAY_0905

SOURCE = "system/policy-bundle/re-scores/acme/orders-db.yaml"


def test_the_re_score_file_lives_in_the_policy_bundle_per_org_and_app() -> None:
    assert re_score_path("acme", "orders-db") == "re-scores/acme/orders-db.yaml"


@pytest.mark.parametrize(("text", "score"), [("score: 79\n", 79), ("# RE Scorecard\nscore: 80\n", 80),
                                             ("score: 0", 0), ("score: 100", 100)])
def test_a_score_is_read_as_an_integer(text: str, score: int) -> None:
    assert parse_re_score(text, SOURCE).score == score
    assert parse_re_score(text, SOURCE).problem is None


def test_no_file_means_no_score_without_a_problem() -> None:
    result = parse_re_score(None, SOURCE)
    assert (result.score, result.problem) == (None, None)


@pytest.mark.parametrize("text", ["score: 101", "score: -1", "score: eighty", "score: true", "score: 79.5",
                                  "- 79", "score: [", "other: 1"])
def test_a_malformed_score_fails_closed_and_says_why(text: str) -> None:
    """A typo must never pass a blocking gate: no score, with the file named in the problem."""
    result = parse_re_score(text, SOURCE)
    assert result.score is None
    assert result.problem and SOURCE in result.problem


def test_a_flux_revision_names_branch_and_commit() -> None:
    assert parse_revision("staging@sha1:abc123") == ("staging", "abc123")
    assert parse_revision("abc123") == ("", "abc123")


def test_the_first_ready_instant_of_a_commit_is_kept() -> None:
    ledger = SoakLedger()
    assert ledger.record("acme", "orders-db", "acme-stg", "vc-fsn", "c1", TUESDAY_0905) is True
    assert ledger.record("acme", "orders-db", "acme-stg", "vc-fsn", "c1", TUESDAY_0905 + timedelta(hours=1)) is False
    assert ledger.first_ready("acme", "orders-db") == {"acme-stg": {"c1": TUESDAY_0905}}


def test_a_new_commit_starts_its_own_soak() -> None:
    """D-11: soak is per exact commit, so a new head has no soak yet."""
    ledger = SoakLedger()
    ledger.record("acme", "orders-db", "acme-stg", "vc", "c1", TUESDAY_0905)
    later = TUESDAY_0905 + timedelta(hours=30)
    ledger.record("acme", "orders-db", "acme-stg", "vc", "c2", later)
    assert ledger.first_ready("acme", "orders-db")["acme-stg"] == {"c1": TUESDAY_0905, "c2": later}


def test_several_vclusters_count_once_the_commit_is_ready_in_all_of_them() -> None:
    ledger = SoakLedger()
    ledger.record("acme", "orders-db", "acme-stg", "vc-fsn", "c0", TUESDAY_0905)
    ledger.record("acme", "orders-db", "acme-stg", "vc-hel", "c0", TUESDAY_0905)
    ledger.record("acme", "orders-db", "acme-stg", "vc-fsn", "c1", TUESDAY_0905 + timedelta(minutes=1))
    assert "c1" not in ledger.first_ready("acme", "orders-db")["acme-stg"]
    ledger.record("acme", "orders-db", "acme-stg", "vc-hel", "c1", TUESDAY_0905 + timedelta(minutes=4))
    assert ledger.first_ready("acme", "orders-db")["acme-stg"]["c1"] == TUESDAY_0905 + timedelta(minutes=4)


def test_the_ledger_keeps_apps_and_organizations_apart_and_clears() -> None:
    ledger = SoakLedger()
    ledger.record("acme", "orders-db", "acme-stg", "vc", "c1", TUESDAY_0905)
    ledger.record("acme", "blog", "acme-stg", "vc", "c9", TUESDAY_0905)
    ledger.record("other", "orders-db", "other-stg", "vc", "c1", TUESDAY_0905)
    assert ledger.first_ready("acme", "orders-db") == {"acme-stg": {"c1": TUESDAY_0905}}
    ledger.clear()
    assert ledger.first_ready("acme", "orders-db") == {}


def test_teams_are_looked_up_case_insensitively_like_gitea() -> None:
    teams = Teams({"Owners": ["fatma"], "team-platform": ["omar"]})
    assert "owners" in teams and teams["OWNERS"] == frozenset({"fatma"})
    assert teams.get("team-security") is None
    assert sorted(teams) == ["Owners", "team-platform"]


def test_the_team_directory_fetches_each_organization_once_and_knows_missing_ones() -> None:
    calls: list[str] = []

    def fetch(org: str) -> dict[str, list[str]] | None:
        calls.append(org)
        return {"team-platform": ["omar"]} if org == "acme" else None

    directory = TeamDirectory(["acme"], fetch)
    assert directory["acme"]["team-platform"] == frozenset({"omar"})
    assert directory.get("acme") is not None
    assert directory.get("ghost") is None
    assert directory.get("ghost", {}) == {}
    assert calls == ["acme", "ghost"]
    assert list(directory) == ["acme"]
