"""``catalyst-sim``: run the Catalyst journeys against a backend and read the reports."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from catalyst_sim import __version__
from catalyst_sim.backends.base import BACKENDS

app = typer.Typer(
    help="catalyst-sim: a simulation and conformance harness for Catalyst. It starts a whole "
         "Sovereign (the embedded reference control plane by default), runs the Gherkin journeys "
         "in features/ against it through its public surfaces, and writes a ConformanceReport.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_show_locals=False,
)
console = Console()

VERDICT_STYLE = {"success": "green", "partial": "yellow", "failure": "red",
                 "passed": "green", "skipped": "yellow", "failed": "red"}


def project_root() -> Path:
    """The checkout holding features/ and tests/features/: the current directory or the package's."""
    for candidate in (Path.cwd(), Path(__file__).resolve().parents[1]):
        if (candidate / "tests" / "features").is_dir() and (candidate / "features").is_dir():
            return candidate
    raise typer.BadParameter("run catalyst-sim from a catalyst-sim checkout (no features/ and tests/features/ here)")


@app.command()
def run(
    backend: Annotated[str, typer.Option(help=f"Backend under test: {', '.join(BACKENDS)}.")] = "embedded",
    tags: Annotated[str | None, typer.Option(help="Tag expression selecting scenarios, e.g. "
                                             "'sme-core and not negative' (pytest -m syntax).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for names, data and fault schedules.")] = 1,
    features: Annotated[Path | None, typer.Option(help="Directory of .feature files (default: features/).")] = None,
    report_dir: Annotated[Path | None, typer.Option(help="Report directory (default: reports/<run-id>).")] = None,
    target: Annotated[Path | None, typer.Option(help="Target file of a live Sovereign (--backend live).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show every scenario as it runs.")] = False,
) -> None:
    """Run the journeys (features/) and print a summary; exits non-zero if a scenario failed."""
    import pytest

    from catalyst_sim.harness.plugin import new_run_id

    if backend not in BACKENDS:
        raise typer.BadParameter(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    root = project_root()
    run_id = new_run_id()
    report_dir = (report_dir or root / "reports" / run_id).resolve()
    os.environ["CATALYST_RUN_ID"] = run_id
    if features is not None:
        if not features.is_dir():
            raise typer.BadParameter(f"{features} is not a directory of .feature files")
        os.environ["CATALYST_FEATURES"] = str(features.resolve())
    args = [str(root / "tests" / "features"), f"--rootdir={root}", "-p", "no:cacheprovider",
            f"--catalyst-backend={backend}", f"--catalyst-seed={seed}", f"--catalyst-report-dir={report_dir}",
            f"--junitxml={report_dir / 'junit.xml'}", f"--alluredir={report_dir / 'allure-results'}",
            "-rs", "-v" if verbose else "-q"]
    if tags:
        args += ["-m", tags]
    if target:
        args.append(f"--catalyst-target={target}")
    console.print(f"[bold]catalyst-sim {__version__}[/] run [cyan]{run_id}[/] on backend [cyan]{backend}[/]")
    code = pytest.main(args)
    report_path = report_dir / "report.yaml"
    if report_path.is_file():
        print_report(report_path)
    else:
        console.print("[yellow]no scenario ran: no report written[/]")
    raise typer.Exit(int(code) if int(code) != 5 else 1)


@app.command()
def report(path: Annotated[Path, typer.Argument(help="A report.yaml, or the run directory holding it.")]) -> None:
    """Print a run's ConformanceReport as tables."""
    if path.is_dir():
        path = path / "report.yaml"
    if not path.is_file():
        raise typer.BadParameter(f"{path} does not exist")
    print_report(path)


def print_report(path: Path) -> None:
    """Per-feature counts, then every scenario that did not pass with its reason, the profile
    verdicts and the realism ledger."""
    from catalyst_sim.harness.report import read_report

    data = read_report(path)
    summary = data["summary"]
    console.print(f"\n[bold]Run {data['runId']}[/] · backend {data['backend']} · seed {data['seed']} · "
                  f"{data['durationSeconds']}s")
    features: dict[str, dict[str, int]] = {}
    for test in data["tests"]:
        counts = features.setdefault(test.get("feature", "(no feature)"), {"passed": 0, "failed": 0, "skipped": 0})
        counts[test["outcome"]] += 1
    by_feature = Table(title="Features")
    for column in ("feature", "passed", "failed", "skipped"):
        by_feature.add_column(column, justify="left" if column == "feature" else "right")
    for feature, counts in features.items():
        by_feature.add_row(feature, f"[green]{counts['passed']}[/]", f"[red]{counts['failed']}[/]" if counts["failed"]
                           else "0", f"[yellow]{counts['skipped']}[/]" if counts["skipped"] else "0")
    console.print(by_feature)
    not_passed = [t for t in data["tests"] if t["outcome"] != "passed"]
    if not_passed:
        details = Table(title="Scenarios that did not pass")
        for column in ("scenario", "result", "requirements", "reason"):
            details.add_column(column, overflow="fold")
        for test in not_passed:
            style = VERDICT_STYLE.get(test["outcome"], "")
            details.add_row(test["name"], f"[{style}]{test['outcome']}[/]", ", ".join(test["requirements"]),
                            test.get("reason", ""))
        console.print(details)
    profiles = Table(title="Conformance profiles")
    for column in ("profile", "core", "passed", "failed", "skipped"):
        profiles.add_column(column)
    for profile in data["profiles"]:
        core = profile["core"]
        stats = core["statistics"]
        style = VERDICT_STYLE[core["result"]]
        profiles.add_row(profile["name"], f"[{style}]{core['result']}[/]", str(stats["Passed"]),
                         str(stats["Failed"]), str(stats["Skipped"]))
    console.print(profiles)
    ledger = Table(title="Realism ledger")
    for column in ("component", "kind", "implementation", "version"):
        ledger.add_column(column)
    for component in data["components"]:
        ledger.add_row(component["name"], component["kind"], component["implementation"], component["version"])
    console.print(ledger)
    console.print(f"[dim]{data['realism']}[/]")
    console.print(f"passed {summary['passed']}, failed {summary['failed']}, skipped {summary['skipped']} "
                  f"of {summary['total']} · report: {path}")


@app.command()
def up(
    seed: Annotated[int, typer.Option(help="Seed for generated names and data.")] = 1,
    run_dir: Annotated[Path | None, typer.Option(help="Scratch directory (default .runs/<run-id>).")] = None,
) -> None:
    """Start an embedded Sovereign, print its endpoints, and keep it up until Ctrl-C."""
    from catalyst_sim.backends.base import BackendOptions, create_backend
    from catalyst_sim.harness.plugin import new_run_id

    run_id = new_run_id()
    backend = create_backend("embedded", BackendOptions(run_dir=run_dir or Path(".runs") / run_id, seed=seed))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with console.status("starting the embedded Sovereign..."):
            endpoints = backend.start()
        table = Table(title=f"Embedded Sovereign {run_id}")
        table.add_column("endpoint")
        table.add_column("value")
        table.add_row("Catalyst API", endpoints.catalyst_api)
        table.add_row("Gitea API", f"{endpoints.gitea_url}/api/v1 (token {endpoints.gitea_token})")
        for name, path in endpoints.kubeconfigs.items():
            table.add_row(f"kubeconfig {name}", str(path))
        console.print(table)
        console.print("Ctrl-C to stop.")
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        backend.stop()
        console.print("stopped; every process and port released")


bench_app = typer.Typer(help="Benchmarks: numbers compared as ratios measured in the same run, written as JSON. "
                             "Targets are reported, never asserted.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


def _write_bench(result: dict, out: Path | None, name: str) -> Path:
    import json
    from datetime import UTC, datetime

    path = out or Path("reports") / "bench" / f"{name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, sort_keys=False))
    return path


def _print_flat(title: str, data: dict, prefix: str = "") -> Table:
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")

    def walk(node: dict, path: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{path}{key}.")
            elif not isinstance(value, list):
                table.add_row(f"{path}{key}", str(value))

    walk(data, prefix)
    return table


@bench_app.command("kube")
def bench_kube(
    objects: Annotated[int, typer.Option(help="ConfigMaps to create (creates/s over 1k vs last 1k).")] = 10_000,
    watchers: Annotated[int, typer.Option(help="Concurrent watch streams for the fan-out latency.")] = 10,
    out: Annotated[Path | None, typer.Option(help="JSON file (default reports/bench/kube-<time>.json).")] = None,
) -> None:
    """The Kubernetes API emulator: creates/s (kubernetes client vs raw httpx), gets/s, lists, watch fan-out."""
    from catalyst_sim.bench.kube import run_kube_bench

    result = run_kube_bench(objects=objects, watchers=watchers, progress=lambda line: console.print(f"[dim]{line}[/]"))
    path = _write_bench(result, out, "kube")
    console.print(_print_flat("bench kube: ratios", result.get("ratios", {})))
    console.print(_print_flat("bench kube: targets met", result.get("met", {})))
    console.print(f"written: {path}")


@bench_app.command("install")
def bench_install(
    orgs: Annotated[int, typer.Option(help="Organizations installing the 5-App pharmacy bundle each.")] = 100,
    repeats: Annotated[int, typer.Option(help="Bundle installs (each in a fresh Org); judged on the median.")] = 5,
    out: Annotated[Path | None, typer.Option(help="JSON file (default reports/bench/install-<time>.json).")] = None,
) -> None:
    """Wall time from an install request to every card Running: the pharmacy bundle, then orgs x 5 Apps."""
    from catalyst_sim.bench.install import run_install_bench

    if orgs < 1 or repeats < 1:
        raise typer.BadParameter("--orgs and --repeats must be at least 1")
    result = run_install_bench(orgs=orgs, repeats=repeats, progress=lambda line: console.print(f"[dim]{line}[/]"))
    path = _write_bench(result, out, "install")
    console.print(_print_flat("bench install", result["results"]))
    console.print(_print_flat("bench install: targets met", result["met"]))
    console.print(f"written: {path}")


@bench_app.command("projector")
def bench_projector(
    events: Annotated[int, typer.Option(help="Events in the throughput burst (raw nats-py and the pipeline).")] = 5000,
    apps: Annotated[int, typer.Option(help="Applications the events are spread over.")] = 20,
    latency_events: Annotated[int, typer.Option(help="Events published one at a time for p50/p99 latency.")] = 300,
    out: Annotated[Path | None, typer.Option(help="JSON file (default reports/bench/projector-<time>.json).")] = None,
) -> None:
    """The read side on a real nats-server: publish -> KV -> SSE events/s vs raw nats-py, and latency."""
    from catalyst_sim.bench.projector import run_projector_bench

    result = run_projector_bench(events=events, apps=apps, latency_events=latency_events,
                                 progress=lambda line: console.print(f"[dim]{line}[/]"))
    path = _write_bench(result, out, "projector")
    console.print(_print_flat("bench projector", result["results"]))
    console.print(_print_flat("bench projector: ratios", result["ratios"]))
    console.print(f"written: {path}")


@app.command()
def version() -> None:
    """Print the catalyst-sim version."""
    console.print(__version__)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
