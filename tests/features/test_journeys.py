"""Runs every Gherkin journey in ``features/`` (or ``$CATALYST_FEATURES``) against the backend
chosen with ``--catalyst-backend``; the steps live in ``catalyst_sim.harness.steps``."""

import os
from pathlib import Path

from pytest_bdd import scenarios

FEATURES = Path(os.environ.get("CATALYST_FEATURES") or Path(__file__).resolve().parents[2] / "features")

scenarios(str(FEATURES))
