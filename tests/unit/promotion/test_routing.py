"""Which branches a promotion connects: the next step of the chain among the Org's Environments
(R-PROMO-01, R-NAME-14, D-14)."""

from __future__ import annotations

import pytest

from catalyst_sim.control.promotion import is_promotion_pair, promotion_branches
from catalyst_sim.model.base import CatalystError


@pytest.mark.parametrize(("source", "destination", "env_types", "branches"), [
    ("acme-stg", "acme-prod", {"stg", "prod"}, ("staging", "main")),
    ("acme-dev", "acme-stg", {"dev", "stg", "prod"}, ("develop", "staging")),
    ("acme-stg", "acme-uat", {"dev", "stg", "uat", "prod"}, ("staging", "uat")),
    ("acme-uat", "acme-prod", {"stg", "uat", "prod"}, ("uat", "main")),
    ("acme-dev", "acme-prod", {"dev", "prod"}, ("develop", "main")),
])
def test_a_promotion_goes_to_the_next_existing_environment(source: str, destination: str, env_types: set[str],
                                                          branches: tuple[str, str]) -> None:
    assert promotion_branches(source, destination, env_types) == branches


@pytest.mark.parametrize(("source", "destination", "env_types", "mention"), [
    ("acme-stg", "acme-prod", {"stg", "uat", "prod"}, "promotes to acme-uat"),
    ("acme-dev", "acme-prod", {"dev", "stg", "prod"}, "promotes to acme-stg"),
    ("acme-prod", "acme-stg", {"stg", "prod"}, "nothing to promote to"),
    ("acme-stg", "other-prod", {"stg", "prod"}, "different Organizations"),
    ("acme-stg", "acme-stg", {"stg"}, "to itself"),
    ("acme-poc", "acme-prod", {"poc", "prod"}, "nothing to promote to"),
])
def test_other_destinations_are_refused_naming_the_field(source: str, destination: str, env_types: set[str],
                                                        mention: str) -> None:
    with pytest.raises(CatalystError) as caught:
        promotion_branches(source, destination, env_types)
    assert mention in str(caught.value)
    assert caught.value.problems[0].field == "to"


@pytest.mark.parametrize(("head", "base", "env_types", "expected"), [
    ("staging", "main", {"stg", "prod"}, True),
    ("develop", "staging", {"dev", "stg", "prod"}, True),
    ("staging", "main", {"stg", "uat", "prod"}, False),
    ("main", "staging", {"stg", "prod"}, False),
    ("feature/x", "main", {"stg", "prod"}, False),
    ("staging", "main", {"stg"}, False),
])
def test_a_pull_request_opened_in_gitea_is_a_promotion_between_neighbouring_branches(
        head: str, base: str, env_types: set[str], expected: bool) -> None:
    assert is_promotion_pair(head, base, env_types) is expected
