"""Version ranges (R-DEP-02), resolution, D-07 intersection and upgrade paths (R-BP-06)."""

from __future__ import annotations

import pytest

from catalyst_sim.control.catalog.versions import (
    intersect,
    parse_range,
    parse_version,
    resolve,
    sort_versions,
    upgrade_allowed,
)
from catalyst_sim.model.base import CatalystError

AVAILABLE = ["1.3.9", "1.4.0", "1.4.2", "1.5.0", "1.10.1", "2.0.0", "2.0.1-rc.1", "0.2.3", "0.2.9", "0.3.0"]


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        ("^1.4", ["1.4.0", "1.4.2", "1.9.9", "1.10.1"], ["1.3.9", "2.0.0", "2.0.0-rc.1"]),
        ("^1.4.2", ["1.4.2", "1.5.0"], ["1.4.1", "2.0.0"]),
        ("^1", ["1.0.0", "1.99.0"], ["0.9.9", "2.0.0"]),
        ("^1.0", ["1.0.0", "1.5.0"], ["2.0.0"]),
        ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0", "0.2.2"]),
        ("^0.0.3", ["0.0.3"], ["0.0.4"]),
        ("~1.4.2", ["1.4.2", "1.4.9"], ["1.5.0", "1.4.1"]),
        ("~1.4", ["1.4.0", "1.4.7"], ["1.5.0"]),
        ("~1", ["1.0.0", "1.9.0"], ["2.0.0"]),
        ("1.4.0", ["1.4.0"], ["1.4.1", "1.3.9"]),
        ("=1.4.0", ["1.4.0"], ["1.4.1"]),
        ("v1.4.0", ["1.4.0"], ["1.4.1"]),
        ("1.4", ["1.4.0", "1.4.9"], ["1.5.0"]),
        ("1.2.x", ["1.2.0", "1.2.7"], ["1.3.0"]),
        ("0.x", ["0.0.1", "0.9.0"], ["1.0.0"]),
        ("1.*", ["1.0.0", "1.9.9"], ["2.0.0"]),
        ("*", ["0.0.1", "9.9.9"], ["2.0.0-rc.1"]),
        ("", ["1.0.0"], []),
        (">=1.4 <2", ["1.4.0", "1.99.0"], ["1.3.9", "2.0.0"]),
        (">= 1.4, < 1.5", ["1.4.9"], ["1.5.0"]),
        (">1.4", ["1.5.0"], ["1.4.9"]),
        (">1.4.2", ["1.4.3"], ["1.4.2"]),
        ("<=1.5", ["1.5.9"], ["1.6.0"]),
        ("<=1.5.0", ["1.5.0"], ["1.5.1"]),
        ("^1.4 || ^2", ["1.4.0", "2.3.0"], ["1.3.0", "3.0.0"]),
        ("2.0.1-rc.1", ["2.0.1-rc.1"], ["2.0.1"]),
    ],
)
def test_range_membership(text: str, inside: list[str], outside: list[str]) -> None:
    rng = parse_range(text)
    for v in inside:
        assert rng.matches(v), f"{text} should match {v}"
    for v in outside:
        assert not rng.matches(v), f"{text} should not match {v}"


def test_caret_1_4_is_below_2_0_0() -> None:
    assert parse_range("^1.4").describe() == ">=1.4.0 <2.0.0"
    assert parse_range("^1").describe() == ">=1.0.0 <2.0.0"
    assert parse_range("~1.4.2").describe() == ">=1.4.2 <1.5.0"


def test_resolve_picks_the_highest_in_semver_order_not_string_order() -> None:
    assert resolve("^1.4", AVAILABLE) == "1.10.1"
    assert resolve("~1.4", AVAILABLE) == "1.4.2"
    assert resolve("1.4.0", AVAILABLE) == "1.4.0"
    assert resolve("*", AVAILABLE) == "2.0.0"  # a pre-release is never picked by a range
    assert resolve(None, AVAILABLE) == "2.0.0"
    assert resolve("^0.2", AVAILABLE) == "0.2.9"


def test_resolve_error_names_the_range_and_every_available_version() -> None:
    with pytest.raises(CatalystError) as err:
        resolve("^3", ["2.0.0", "1.4.2", "1.10.0"], subject="bp-postgres")
    text = str(err.value)
    assert err.value.code == "Unsatisfiable"
    assert "bp-postgres" in text and "'^3'" in text and ">=3.0.0 <4.0.0" in text
    assert "available versions: 1.4.2, 1.10.0, 2.0.0" in text


def test_resolve_with_no_versions_says_none() -> None:
    with pytest.raises(CatalystError, match="available versions: none"):
        resolve("^1", [])


@pytest.mark.parametrize("bad", ["^one", "1.2.3.4", ">=", "~>x.1-", "1.2.3 - 2.0.0", "^1 ||", "banana"])
def test_bad_ranges_are_rejected_naming_the_range(bad: str) -> None:
    with pytest.raises(CatalystError) as err:
        parse_range(bad)
    assert repr(bad) in str(err.value)


def test_intersection_non_empty() -> None:
    both = intersect("^1.4", "^1.5")
    assert both.describe() == ">=1.5.0 <2.0.0"
    assert not both.is_empty
    assert resolve(both, AVAILABLE) == "1.10.1"
    assert intersect("^1", "~1.4").describe() == ">=1.4.0 <1.5.0"
    assert intersect(">=1.4.2", "<=1.4.2").describe() == "=1.4.2"
    assert intersect("*", "^2").describe() == ">=2.0.0 <3.0.0"


def test_intersection_empty() -> None:
    assert intersect("^1", "^2").is_empty
    assert intersect("~1.4", "~1.5").is_empty
    assert intersect(">1.4.2", "<=1.4.2").is_empty
    empty = intersect("^1.4", "^2")
    assert empty.describe() == "(none)"
    with pytest.raises(CatalystError, match="is empty"):
        resolve(empty, AVAILABLE)


def test_intersection_of_unions() -> None:
    both = intersect("^1 || ^3", "^3.2 || ^4")
    assert both.describe() == ">=3.2.0 <4.0.0"


def test_parse_version_and_sort() -> None:
    assert str(parse_version("v1.2.3")) == "1.2.3"
    with pytest.raises(CatalystError, match="not a semantic version"):
        parse_version("1.2")
    assert sort_versions(["1.10.0", "1.9.0", "1.9.0-rc.1"]) == ["1.9.0-rc.1", "1.9.0", "1.10.0"]


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [
        ("1.2.4", "1.3.0", True),  # from 1.2.x
        ("1.1.0", "1.3.0", True),  # from 1.1.x
        ("1.0.9", "1.3.0", False),  # blocked
        ("0.9.0", "1.3.0", False),  # no path
        ("1.3.0", "1.3.0", True),  # same version
        ("1.3.0", "1.2.4", False),  # downgrade
    ],
)
def test_upgrade_paths(current: str, target: str, allowed: bool) -> None:
    assert upgrade_allowed(current, target, ["1.2.x", "1.1.x"], ["1.0.x"]) is allowed
