"""``catalyst-sim``: help that explains, clear errors for bad input, reports printed as tables."""

from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from catalyst_sim.backends.endpoints import Component
from catalyst_sim.cli import app
from catalyst_sim.harness.report import Profile, RunReport, ScenarioResult

runner = CliRunner()


def test_help_explains_the_tool_and_its_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for word in ("Sovereign", "run", "report", "up"):
        assert word in result.output


def test_run_help_names_the_backends_and_tags() -> None:
    result = runner.invoke(app, ["run", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "embedded" in result.output and "containers" in result.output and "--tags" in result.output


def test_an_unknown_backend_is_refused_before_anything_runs() -> None:
    result = runner.invoke(app, ["run", "--backend", "kind"])
    assert result.exit_code != 0
    assert "unknown backend" in result.output


def test_report_of_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", str(tmp_path / "nope")], env={"COLUMNS": "200"})
    assert result.exit_code != 0
    assert "does not exist" in result.output


def test_report_prints_failures_with_reasons_and_the_ledger(tmp_path: Path) -> None:
    run = RunReport(run_id="r9", backend="embedded", seed=3, started=datetime.now(UTC),
                    results=[ScenarioResult(nodeid="a", name="J3: ok", outcome="passed", feature="J3", tags=["both"]),
                             ScenarioResult(nodeid="b", name="J5: broken", outcome="failed", feature="J5",
                                            reason="call failed: boom", tags=["both", "R-PROV-01"])],
                    components=[Component("git", real=True, implementation="git", version="2.39.5")])
    run.write(tmp_path, [Profile(name="sme-core", description="", core=("both",))])
    result = runner.invoke(app, ["report", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "J5: broken" in result.output and "boom" in result.output and "R-PROV-01" in result.output
    assert "failure" in result.output
    assert "2.39.5" in result.output
