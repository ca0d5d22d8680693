"""The catalyst-sim pytest plugin (entry point ``pytest11``).

It adds the ``--catalyst-*`` options, starts the chosen backend once per session, gives every
scenario a clean Sovereign, loads the step library used by ``features/``, and writes the run's
reports: ``junit.xml`` and ``report.yaml`` (a ConformanceReport with the realism ledger) under
``reports/<run-id>/``, plus an evidence bundle for each failed scenario.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pytest_bdd.scenario import scenario_wrapper_template_registry

from catalyst_sim.backends.base import BACKENDS, Backend, BackendOptions, BackendUnavailable, create_backend
from catalyst_sim.harness.context import ScenarioContext
from catalyst_sim.harness.report import RunReport, ScenarioResult, load_profiles

pytest_plugins = [
    "catalyst_sim.harness.steps.common",
    "catalyst_sim.harness.steps.organizations",
    "catalyst_sim.harness.steps.applications",
    "catalyst_sim.harness.steps.environments",
    "catalyst_sim.harness.steps.runtime",
    "catalyst_sim.harness.steps.git",
    "catalyst_sim.harness.steps.promotion",
    "catalyst_sim.harness.steps.identity",
    "catalyst_sim.harness.steps.secrets",
    "catalyst_sim.harness.steps.secrets_regions",
    "catalyst_sim.harness.steps.state",
    "catalyst_sim.harness.steps.sovereignty",
]

REPORT_KEY = pytest.StashKey[RunReport]()
BACKEND_KEY = pytest.StashKey[dict[str, Any]]()
PROFILES_FILE = Path("conformance") / "profiles.yaml"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("catalyst", "catalyst-sim conformance harness")
    group.addoption("--catalyst-backend", choices=BACKENDS, default=os.environ.get("CATALYST_BACKEND", "embedded"),
                    help="what runs the Sovereign under test: embedded (default; reference control plane, "
                         "real nats/bao/git, emulated Kubernetes/Gitea/Toxiproxy APIs), containers, live")
    group.addoption("--catalyst-seed", type=int, default=int(os.environ.get("CATALYST_SEED", "1")),
                    help="seed for generated names, data and fault schedules (default 1)")
    group.addoption("--catalyst-report-dir", default=None,
                    help="where to write junit.xml, report.yaml and evidence (default reports/<run-id>)")
    group.addoption("--catalyst-target", default=None,
                    help="target file describing a live Sovereign (URLs, credentials), for --catalyst-backend live")
    group.addoption("--catalyst-run-dir", default=None,
                    help="scratch directory for repos, logs and server data (default .runs/<run-id>)")


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def _wants_reports(config: pytest.Config) -> bool:
    if config.getoption("catalyst_report_dir"):
        return True
    root = Path(config.rootpath)
    return (root / "features").is_dir() and (root / PROFILES_FILE).is_file()


def pytest_configure(config: pytest.Config) -> None:
    run_id = os.environ.get("CATALYST_RUN_ID") or new_run_id()
    root = Path(config.rootpath)
    report_dir = Path(config.getoption("catalyst_report_dir") or root / "reports" / run_id)
    run_dir = Path(config.getoption("catalyst_run_dir") or root / ".runs" / run_id)
    config.stash[BACKEND_KEY] = {"run_id": run_id, "report_dir": report_dir, "run_dir": run_dir,
                                 "reports": _wants_reports(config), "backend": None}
    config.stash[REPORT_KEY] = RunReport(run_id=run_id, backend=config.getoption("catalyst_backend"),
                                         seed=config.getoption("catalyst_seed"), started=datetime.now(UTC))
    if config.stash[BACKEND_KEY]["reports"] and not config.option.xmlpath and not hasattr(config, "workerinput"):
        config.option.xmlpath = str(report_dir / "junit.xml")


@pytest.hookimpl(tryfirst=True)
def pytest_bdd_apply_tag(tag: str, function: Any) -> bool:
    """Gherkin tags become markers; registering them first keeps the run free of unknown-mark warnings."""
    config = _CONFIG.get("config")
    if config is not None:
        config.addinivalue_line("markers", f"{tag}: Gherkin tag from features/")
    getattr(pytest.mark, tag)(function)
    return True


_CONFIG: dict[str, pytest.Config] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    _CONFIG["config"] = session.config


@pytest.fixture(scope="session")
def catalyst_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The backend running the Sovereign under test, started once per session."""
    config = request.config
    info = config.stash[BACKEND_KEY]
    name = config.getoption("catalyst_backend")
    target = config.getoption("catalyst_target")
    options = BackendOptions(run_dir=info["run_dir"], seed=config.getoption("catalyst_seed"),
                             target=Path(target) if target else None)
    backend = create_backend(name, options)
    try:
        endpoints = backend.start()
    except BackendUnavailable as exc:
        backend.stop()
        pytest.skip(f"backend {name} unavailable: {exc}")
    info["backend"] = backend
    config.stash[REPORT_KEY].components = list(endpoints.components)
    try:
        yield backend
    finally:
        backend.stop()
        # Repos and server data stay for a person to inspect only when something failed.
        if not request.session.testsfailed and not os.environ.get("CATALYST_KEEP_RUN_DIR"):
            shutil.rmtree(info["run_dir"], ignore_errors=True)


@pytest.fixture
def catalyst(request: pytest.FixtureRequest, catalyst_backend: Backend, tmp_path: Path) -> Iterator[ScenarioContext]:
    """One scenario's view of the Sovereign: a clean state and clients of its public surfaces."""
    catalyst_backend.reset()
    context = ScenarioContext.open(catalyst_backend, workdir=tmp_path,
                                   seed=request.config.getoption("catalyst_seed"))
    try:
        yield context
    finally:
        context.close()
        report = getattr(request.node, "_catalyst_call_report", None)
        info = request.config.stash[BACKEND_KEY]
        if report is not None and report.failed and info["reports"]:
            evidence_dir = Path(info["report_dir"]) / "evidence" / _safe_name(request.node.nodeid)
            context.write_evidence(evidence_dir)
            catalyst_backend.evidence(evidence_dir)


def _safe_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid)[-150:]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item._catalyst_call_report = report  # type: ignore[attr-defined]


def _scenario_of(item: pytest.Item) -> tuple[str, str] | None:
    """(feature, scenario) for a pytest-bdd scenario test, None for any other test."""
    function = getattr(item, "function", None)
    if function is None:
        return None
    template = scenario_wrapper_template_registry.get(function)
    if template is None:
        return None
    return template.feature.name, template.name


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr or "")


_ITEMS: dict[str, pytest.Item] = {}


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        _ITEMS[item.nodeid] = item


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    config = _CONFIG.get("config")
    item = _ITEMS.get(report.nodeid)
    if config is None or item is None:
        return
    scenario = _scenario_of(item)
    if scenario is None:
        return
    run_report = config.stash[REPORT_KEY]
    existing = next((r for r in run_report.results if r.nodeid == report.nodeid), None)
    if existing is None:
        feature, name = scenario
        tags = sorted({m.name for m in item.iter_markers()} - {"usefixtures", "parametrize", "skip", "skipif"})
        callspec = getattr(item, "callspec", None)
        example = f" [{callspec.id}]" if callspec is not None else ""
        existing = ScenarioResult(nodeid=report.nodeid, name=f"{feature}: {name}{example}", outcome="passed",
                              feature=feature, scenario=name, tags=tags)
        run_report.results.append(existing)
    existing.duration += report.duration
    if report.failed:
        existing.outcome = "failed"
        existing.reason = existing.reason or f"{report.when} failed: {report.longreprtext.splitlines()[-1:]}"
    elif report.skipped and existing.outcome != "failed":
        existing.outcome = "skipped"
        existing.reason = _skip_reason(report)


STEP_UUIDS = pytest.StashKey[list[str]]()


def _allure_on(config: pytest.Config) -> bool:
    return config.pluginmanager.getplugin("allure_listener") is not None


def pytest_bdd_before_step(request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any,
                           step_func: Any) -> None:
    """Each Gherkin step becomes an Allure step (allure-pytest only reports explicit ones)."""
    if not _allure_on(request.config):
        return
    import allure_commons

    step_id = uuid.uuid4().hex
    request.node.stash.setdefault(STEP_UUIDS, []).append(step_id)
    allure_commons.plugin_manager.hook.start_step(uuid=step_id, title=f"{step.keyword} {step.name}", params={})


def _stop_allure_step(request: pytest.FixtureRequest, exception: BaseException | None) -> None:
    steps = request.node.stash.get(STEP_UUIDS, [])
    if not steps or not _allure_on(request.config):
        return
    import allure_commons

    allure_commons.plugin_manager.hook.stop_step(
        uuid=steps.pop(), exc_type=type(exception) if exception else None, exc_val=exception,
        exc_tb=exception.__traceback__ if exception else None)


def pytest_bdd_after_step(request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any,
                          step_func: Any, step_func_args: Any) -> None:
    _stop_allure_step(request, None)


def pytest_bdd_step_error(request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any, step_func: Any,
                          step_func_args: Any, exception: BaseException) -> None:
    _stop_allure_step(request, exception)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    info = config.stash.get(BACKEND_KEY, None)
    if not info or not info["reports"] or hasattr(config, "workerinput"):
        return
    run_report = config.stash[REPORT_KEY]
    if not run_report.results:
        return
    profiles_path = Path(config.rootpath) / PROFILES_FILE
    profiles = load_profiles(profiles_path) if profiles_path.is_file() else []
    path = run_report.write(Path(info["report_dir"]), profiles)
    info["report_path"] = path


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    info = config.stash.get(BACKEND_KEY, None)
    if info and info.get("report_path"):
        terminalreporter.write_line(f"catalyst-sim report: {info['report_path']}")
