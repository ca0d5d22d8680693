"""Shared registries for the catalog tests: our fixtures and the deliberately broken data sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalyst_sim.control.catalog.registry import BlueprintRegistry

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "fixtures" / "blueprints"
DATA = REPO / "tests" / "data"
BROKEN = DATA / "blueprints-broken"


@pytest.fixture(scope="session")
def registry() -> BlueprintRegistry:
    """The fixture catalog; flattening never mutates a registry, so one per session is safe."""
    return BlueprintRegistry.from_directory(FIXTURES)


def broken(case: str) -> BlueprintRegistry:
    return BlueprintRegistry.from_directory(BROKEN / case)
