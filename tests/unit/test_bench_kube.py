"""``bench kube`` with tiny numbers: the document's shape and counts, and that it cleans up.

Never its timings: speed is what the benchmark reports, and on a shared machine no threshold
would mean anything (project standard). Rates and ratios are only checked to be positive numbers.
"""

from __future__ import annotations

import json
import math
import os
import threading
from datetime import datetime
from typing import Any

import pytest

from catalyst_sim.bench.kube import FLOOR_SHARE, MAX_GETS, TARGETS, run_kube_bench

OBJECTS = 200
WATCHERS = 2
UPDATES = 10
PAGE_LIMIT = 60  # 200 objects: 4 pages, so continue tokens are followed


def sim_threads() -> set[threading.Thread]:
    """The emulator's server thread and the benchmark's watch streams are all named so."""
    return {t for t in threading.enumerate() if t.name.startswith("catalyst-sim:") and t.is_alive()}


@pytest.fixture(scope="module")
def run() -> tuple[dict[str, Any], list[str], set[threading.Thread]]:
    before = sim_threads()
    messages: list[str] = []
    document = run_kube_bench(
        objects=OBJECTS, watchers=WATCHERS, updates=UPDATES, page_limit=PAGE_LIMIT, progress=messages.append
    )
    return document, messages, before


def test_the_document_has_the_agreed_shape_and_is_plain_json(run: tuple[dict[str, Any], list[str], Any]) -> None:
    document, messages, _ = run
    assert {"benchmark", "version", "started", "parameters", "results", "ratios", "targets", "met"} <= set(document)
    assert document["benchmark"] == "kube"
    assert datetime.fromisoformat(document["started"]).tzinfo is not None
    parameters = document["parameters"]
    assert (parameters["objects"], parameters["watchers"], parameters["updates"], parameters["page_limit"]) == (
        OBJECTS,
        WATCHERS,
        UPDATES,
        PAGE_LIMIT,
    )
    assert document["targets"] == TARGETS == {"parallel_raw_creates_per_s": 1000, "slowdown_ratio_min": 0.8}
    assert set(document["met"]) == set(TARGETS) and all(isinstance(v, bool) for v in document["met"].values())
    assert document["complete"] is True and document["skipped"] == []
    machine = document["machine"]
    assert machine["cpu_count"] == os.cpu_count() and machine["python"] and machine["platform"]
    assert json.loads(json.dumps(document, allow_nan=False)) == document
    assert any(m.startswith("creates") for m in messages) and any(m.startswith("watch") for m in messages)


def test_every_operation_was_counted(run: tuple[dict[str, Any], list[str], Any]) -> None:
    results = run[0]["results"]
    creates = results["creates"]
    assert creates["raw"]["count"] == creates["client"]["count"] == OBJECTS
    assert creates["floor"]["count"] == OBJECTS // FLOOR_SHARE
    assert creates["window"] == OBJECTS // 2
    parallel = results["parallel_creates"]
    assert parallel["count"] == OBJECTS and parallel["errors"] == [] and parallel["connections"] >= 2
    gets = results["gets"]
    assert gets["raw"]["count"] == gets["client"]["count"] == min(OBJECTS, MAX_GETS)
    listed = results["list"]
    assert listed["full"]["items"] == OBJECTS and listed["full"]["bytes"] > 0
    assert listed["paged"]["items"] == listed["paged"]["distinct"] == OBJECTS
    assert listed["paged"]["pages"] == math.ceil(OBJECTS / PAGE_LIMIT)
    assert listed["client"]["items"] == OBJECTS
    watch = results["watch"]
    assert watch["stream_errors"] == [] and watch["missed"] == 0
    assert watch["updates_sent"] == UPDATES and watch["deliveries"] == UPDATES * WATCHERS
    for summary in (watch["from_response_ms"], watch["from_request_ms"]):
        assert set(summary) == {"p50", "p99", "max", "min"} and all(isinstance(v, float) for v in summary.values())
        assert summary["min"] <= summary["p50"] <= summary["p99"] <= summary["max"]


def test_rates_and_ratios_are_positive_numbers(run: tuple[dict[str, Any], list[str], Any]) -> None:
    document = run[0]
    creates = document["results"]["creates"]
    rates = [creates[side]["per_s"] for side in ("raw", "client", "floor")] + [
        creates[key] for key in creates if key.endswith("_window_per_s")
    ]
    rates += [document["results"]["gets"][side]["per_s"] for side in ("raw", "client")]
    rates.append(document["results"]["parallel_creates"]["per_s"])
    assert all(isinstance(rate, float) and rate > 0 for rate in rates), rates
    ratios = document["ratios"]
    assert {"client_vs_raw_creates", "client_vs_raw_gets", "slowdown_ratio", "raw_creates_vs_floor",
            "parallel_vs_sequential_creates"} <= set(ratios)
    assert all(isinstance(r, float) and r > 0 and math.isfinite(r) for r in ratios.values()), ratios


def test_no_emulator_or_watch_thread_outlives_the_run(run: tuple[dict[str, Any], list[str], Any]) -> None:
    _, _, before = run
    assert sim_threads() - before == set()


def test_a_spent_budget_skips_the_phases_and_still_stops_everything() -> None:
    before = sim_threads()
    document = run_kube_bench(objects=OBJECTS, watchers=WATCHERS, budget_s=0)
    assert document["complete"] is False
    assert document["skipped"] == ["creates", "parallel_creates", "gets", "list", "watch"]
    assert document["results"] == {}
    assert all(value is None for value in document["ratios"].values())
    assert document["met"] == {"parallel_raw_creates_per_s": False, "slowdown_ratio_min": False}
    assert sim_threads() - before == set()


def test_a_failure_midway_still_stops_the_emulator() -> None:
    before = sim_threads()

    def interrupt(message: str) -> None:
        if message.startswith("list"):
            raise KeyboardInterrupt  # what Ctrl-C raises in the main thread

    with pytest.raises(KeyboardInterrupt):
        run_kube_bench(objects=20, watchers=1, progress=interrupt)
    assert sim_threads() - before == set()


def test_nonsense_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        run_kube_bench(objects=1)
    with pytest.raises(ValueError):
        run_kube_bench(watchers=0)
