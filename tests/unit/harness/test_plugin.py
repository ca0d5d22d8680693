"""The pytest plugin: backends that cannot run skip with their reason, and the run writes its
reports (junit.xml and a ConformanceReport naming the requirement ids)."""

from pathlib import Path

import pytest
import yaml

FEATURE = """\
@both
Feature: Onboard an Organization
  @R-ORG-01 @sme-core
  Scenario: An Organization can be created
    When the sovereign-admin creates the Organization "acme"
    Then the request succeeds with status 201
"""

RUNNER = """\
from pytest_bdd import scenarios
scenarios("onboard.feature")
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".feature", onboard=FEATURE)
    pytester.makepyfile(test_onboard=RUNNER)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    return pytester


@pytest.mark.parametrize("backend", ["containers", "live"])
def test_an_unbuilt_backend_skips_every_scenario_with_its_reason(suite: pytest.Pytester, backend: str) -> None:
    report_dir = suite.path / "out"
    result = suite.runpytest(f"--catalyst-backend={backend}", f"--catalyst-report-dir={report_dir}", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines([f"*backend {backend} unavailable*not implemented yet*"])
    report = yaml.safe_load((report_dir / "report.yaml").read_text())
    assert report["backend"] == backend
    (test,) = report["tests"]
    assert test["outcome"] == "skipped"
    assert "not implemented yet" in test["reason"]
    assert test["requirements"] == ["R-ORG-01"]
    sme = next(p for p in report["profiles"] if p["name"] == "sme-core") if report["profiles"] else None
    assert sme is None  # no conformance/profiles.yaml in this directory: no profile verdicts invented


def test_the_embedded_backend_runs_the_scenario_and_writes_junit_and_report(suite: pytest.Pytester) -> None:
    report_dir = suite.path / "out"
    (suite.path / "conformance").mkdir()
    profiles = Path(__file__).resolve().parents[3] / "conformance" / "profiles.yaml"
    (suite.path / "conformance" / "profiles.yaml").write_text(profiles.read_text())
    result = suite.runpytest(f"--catalyst-report-dir={report_dir}", f"--junitxml={report_dir / 'junit.xml'}",
                             f"--catalyst-run-dir={suite.path / 'run'}")
    result.assert_outcomes(passed=1)
    assert (report_dir / "junit.xml").is_file()
    report = yaml.safe_load((report_dir / "report.yaml").read_text())
    assert report["summary"] == {"passed": 1, "failed": 0, "skipped": 0, "total": 1}
    assert {c["name"]: c["kind"] for c in report["components"]}["gitea"] == "emulated"
    assert "simulated / runtime-untested" in report["realism"]
    sme = next(p for p in report["profiles"] if p["name"] == "sme-core")
    assert sme["core"]["result"] == "success"


def test_a_failing_scenario_leaves_an_evidence_bundle(suite: pytest.Pytester) -> None:
    suite.makefile(".feature", onboard=FEATURE.replace("status 201", "status 418"))
    report_dir = suite.path / "out"
    result = suite.runpytest(f"--catalyst-report-dir={report_dir}", f"--catalyst-run-dir={suite.path / 'run'}")
    result.assert_outcomes(failed=1)
    bundles = list((report_dir / "evidence").iterdir())
    assert len(bundles) == 1
    assert (bundles[0] / "api-exchanges.json").is_file()
    assert (bundles[0] / "forge.json").is_file()
    report = yaml.safe_load((report_dir / "report.yaml").read_text())
    assert report["tests"][0]["outcome"] == "failed"
