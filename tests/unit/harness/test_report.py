"""The ConformanceReport: profile verdicts, skip reasons, requirement ids, realism ledger."""

from datetime import UTC, datetime
from pathlib import Path

import yaml

from catalyst_sim.backends.endpoints import Component
from catalyst_sim.harness.report import SIMULATED_DISCLAIMER, Profile, RunReport, ScenarioResult, profile_report

SME = Profile(name="sme-core", description="", core=("sme-core", "both"), extended=("optional-sme",))


def result(name: str, outcome: str, *tags: str, reason: str = "") -> ScenarioResult:
    return ScenarioResult(nodeid=name, name=name, outcome=outcome, tags=list(tags), reason=reason)


def test_all_core_passed_is_success() -> None:
    report = profile_report(SME, [result("a", "passed", "sme-core"), result("b", "passed", "both")])
    assert report["core"]["result"] == "success"
    assert report["core"]["statistics"] == {"Passed": 2, "Failed": 0, "Skipped": 0}


def test_a_skipped_core_test_makes_it_partial_and_keeps_the_reason() -> None:
    report = profile_report(SME, [result("a", "passed", "sme-core"),
                                  result("b", "skipped", "sme-core", reason="needs virtual time")])
    assert report["core"]["result"] == "partial"
    assert report["core"]["skippedTests"] == [{"name": "b", "reason": "needs virtual time"}]


def test_a_failure_anywhere_in_core_is_failure_and_extended_is_separate() -> None:
    report = profile_report(SME, [result("a", "failed", "both"), result("c", "passed", "optional-sme"),
                                  result("d", "failed", "corp-core")])
    assert report["core"]["result"] == "failure"
    assert report["core"]["failedTests"] == ["a"]
    assert report["extended"]["result"] == "success"


def test_requirement_ids_are_separated_from_other_tags() -> None:
    test = result("a", "passed", "R-NAME-05", "negative", "sme-core", "R-PROV-01", "J3")
    assert test.requirements == ["R-NAME-05", "R-PROV-01"]


def test_written_report_states_the_simulation_disclaimer_when_anything_is_emulated(tmp_path: Path) -> None:
    run = RunReport(run_id="r1", backend="embedded", seed=1, started=datetime.now(UTC),
                    results=[result("a", "passed", "both", "R-ORG-01")],
                    components=[Component("gitea", real=False, implementation="emulator"),
                                Component("git", real=True, implementation="git", version="2.39")])
    path = run.write(tmp_path, [SME])
    data = yaml.safe_load(path.read_text())
    assert data["kind"] == "ConformanceReport"
    assert data["realism"] == SIMULATED_DISCLAIMER
    assert data["components"][0] == {"name": "gitea", "kind": "emulated", "implementation": "emulator",
                                     "version": ""}
    assert data["tests"][0]["requirements"] == ["R-ORG-01"]
    assert data["summary"] == {"passed": 1, "failed": 0, "skipped": 0, "total": 1}
