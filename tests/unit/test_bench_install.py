"""``bench install`` on a tiny scale: the JSON shape and that every Application really ran.
No timing thresholds: targets are reported, never asserted."""

import json
import threading

import pytest

from catalyst_sim.bench.install import run_install_bench


def test_install_bench_reports_both_measurements_and_stops_everything() -> None:
    lines: list[str] = []
    before = set(threading.enumerate())  # a session-wide Sovereign of the journeys may be running
    result = run_install_bench(orgs=2, repeats=2, progress=lines.append)
    json.loads(json.dumps(result))
    assert result["benchmark"] == "install"
    assert result["results"]["bundle"]["applications"] == 5
    assert result["results"]["scale"]["applications"] == 10
    bundle = result["results"]["bundle"]
    assert len(bundle["samples_wall_s"]) == 2 and all(wall > 0 for wall in bundle["samples_wall_s"])
    assert bundle["min_wall_s"] <= bundle["install_to_running_wall_s"] <= bundle["max_wall_s"]
    assert result["met"]["bundle_install_to_running_wall_s"] == (bundle["install_to_running_wall_s"] < 2.0)
    assert result["results"]["scale"]["virtual_s_to_running"] > 0
    assert set(result["met"]) == set(result["targets"])
    assert any("Running" in line for line in lines) and any(line.startswith("bundle 2/2") for line in lines)
    leftovers = [t.name for t in set(threading.enumerate()) - before if t.name.startswith("catalyst-sim")]
    assert not leftovers


def test_nonsense_parameters_are_refused_before_anything_starts() -> None:
    with pytest.raises(ValueError, match="repeats"):
        run_install_bench(orgs=1, repeats=0)
