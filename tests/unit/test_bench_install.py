"""``bench install`` on a tiny scale: the JSON shape and that every Application really ran.
No timing thresholds: targets are reported, never asserted."""

import json
import threading

from catalyst_sim.bench.install import run_install_bench


def test_install_bench_reports_both_measurements_and_stops_everything() -> None:
    lines: list[str] = []
    before = set(threading.enumerate())  # a session-wide Sovereign of the journeys may be running
    result = run_install_bench(orgs=2, progress=lines.append)
    json.loads(json.dumps(result))
    assert result["benchmark"] == "install"
    assert result["results"]["bundle"]["applications"] == 5
    assert result["results"]["scale"]["applications"] == 10
    assert result["results"]["bundle"]["install_to_running_wall_s"] > 0
    assert result["results"]["scale"]["virtual_s_to_running"] > 0
    assert set(result["met"]) == set(result["targets"])
    assert any("Running" in line for line in lines)
    leftovers = [t.name for t in set(threading.enumerate()) - before if t.name.startswith("catalyst-sim")]
    assert not leftovers
