"""Run reports: the ConformanceReport a vendor submits and the realism ledger (DESIGN.md §5).

The ConformanceReport is modelled on Gateway API's: the implementation under test, the suite
version, the backend, and per profile a core/extended result with statistics, the failed tests and
the skipped tests *with their reasons*. Each test lists the requirement ids (R-*) it covers.
A pass on an emulated component is never a Definition-of-Done proof (R-DOD-06): the report says
so whenever the ledger holds an emulated component.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from catalyst_sim import __version__
from catalyst_sim.backends.endpoints import Component

REQUIREMENT_TAG = re.compile(r"^[RCD]-[A-Z0-9]+(-[A-Z0-9]+)*$")
SIMULATED_DISCLAIMER = (
    "simulated / runtime-untested: components marked emulated are catalyst-sim emulators; a pass "
    "here is not a Definition-of-Done proof for a real Sovereign (R-DOD-06)"
)


@dataclass
class ScenarioResult:
    nodeid: str
    name: str
    outcome: str  # passed | failed | skipped
    duration: float = 0.0
    reason: str = ""
    feature: str = ""
    scenario: str = ""
    tags: list[str] = field(default_factory=list)

    @property
    def requirements(self) -> list[str]:
        return sorted(tag for tag in self.tags if REQUIREMENT_TAG.match(tag))


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    core: tuple[str, ...]
    extended: tuple[str, ...] = ()


def load_profiles(path: Path) -> list[Profile]:
    data = yaml.safe_load(path.read_text()) or {}
    return [
        Profile(
            name=item["name"],
            description=item.get("description", ""),
            core=tuple(item.get("core", [])),
            extended=tuple(item.get("extended", [])),
        )
        for item in data.get("profiles", [])
    ]


def _level(results: list[ScenarioResult]) -> dict[str, Any]:
    passed = [r for r in results if r.outcome == "passed"]
    failed = [r for r in results if r.outcome == "failed"]
    skipped = [r for r in results if r.outcome == "skipped"]
    if failed:
        verdict = "failure"
    elif skipped or not results:
        verdict = "partial"
    else:
        verdict = "success"
    return {
        "result": verdict,
        "statistics": {"Passed": len(passed), "Failed": len(failed), "Skipped": len(skipped)},
        "failedTests": [r.name for r in failed],
        "skippedTests": [{"name": r.name, "reason": r.reason} for r in skipped],
    }


def profile_report(profile: Profile, results: Iterable[ScenarioResult]) -> dict[str, Any]:
    results = list(results)
    core = [r for r in results if set(r.tags) & set(profile.core)]
    extended = [r for r in results if r not in core and set(r.tags) & set(profile.extended)]
    report: dict[str, Any] = {"name": profile.name, "description": profile.description,
                              "core": _level(core)}
    if profile.extended:
        report["extended"] = _level(extended)
    return report


@dataclass
class RunReport:
    run_id: str
    backend: str
    seed: int
    started: datetime
    results: list[ScenarioResult] = field(default_factory=list)
    components: list[Component] = field(default_factory=list)
    implementation: dict[str, str] = field(default_factory=dict)
    mode: str = "default"

    def counts(self) -> dict[str, int]:
        counts = {"passed": 0, "failed": 0, "skipped": 0}
        for result in self.results:
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
        counts["total"] = len(self.results)
        return counts

    def to_dict(self, profiles: list[Profile]) -> dict[str, Any]:
        finished = datetime.now(UTC)
        emulated = [c for c in self.components if c.kind == "emulated"]
        return {
            "apiVersion": "catalyst.openova.io/v1alpha1",
            "kind": "ConformanceReport",
            "runId": self.run_id,
            "date": finished.isoformat(timespec="seconds"),
            "implementation": self.implementation or {
                "organization": "openova", "project": "catalyst-sim reference control plane",
                "url": "", "version": __version__, "contact": [],
            },
            "suiteVersion": f"catalyst-sim {__version__}",
            "backend": self.backend,
            "mode": self.mode,
            "seed": self.seed,
            "durationSeconds": round((finished - self.started).total_seconds(), 3),
            "summary": self.counts(),
            "realism": SIMULATED_DISCLAIMER if emulated or not self.components else "all components real",
            "components": [
                {"name": c.name, "kind": c.kind, "implementation": c.implementation,
                 "version": c.version} for c in self.components
            ],
            "profiles": [profile_report(p, self.results) for p in profiles],
            "tests": [
                {
                    "name": r.name,
                    "nodeid": r.nodeid,
                    **({"feature": r.feature} if r.feature else {}),
                    "outcome": r.outcome,
                    **({"reason": r.reason} if r.reason else {}),
                    "durationSeconds": round(r.duration, 3),
                    "requirements": r.requirements,
                    "tags": sorted(t for t in r.tags if t not in r.requirements),
                }
                for r in self.results
            ],
        }

    def write(self, directory: Path, profiles: list[Profile]) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "report.yaml"
        path.write_text(yaml.safe_dump(self.to_dict(profiles), sort_keys=False, width=100))
        return path


def read_report(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or data.get("kind") != "ConformanceReport":
        raise ValueError(f"{path}: not a ConformanceReport")
    return data
