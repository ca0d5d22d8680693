"""The cutover end to end on one handed-over cluster, and the proof failing on tethered Sovereigns."""

from __future__ import annotations

import httpx
import pytest

from catalyst_sim.control.sovereignty import JOB_NAMES, CutoverConflict

from .conftest import CLUSTER, World


def tethered(world: World) -> dict[int, bool]:
    return {t["number"]: t["tethered"] for t in world.sovereignty.tethers()[CLUSTER]}


def test_handed_over_sovereign_is_dormant_and_tethered(world: World) -> None:
    status = world.sovereignty.status()
    assert status["phase"] == "Dormant" and not status["cutoverComplete"]
    assert world.sovereignty.context.primary.list("Job", "flux-system") == []  # R-CUT-03: zero Jobs
    assert all(tethered(world).values())


def test_cutover_completes_and_the_egress_block_holds(world: World) -> None:
    world.run(world.sovereignty.runner.start("ahmed", []))
    with pytest.raises(CutoverConflict):
        world.run(world.sovereignty.runner.start("layla", []))
    started = world.clock.now()
    status = world.until_done()
    assert status["phase"] == "Succeeded", status
    assert status["cutoverComplete"] is True
    assert [s["state"] for s in status["steps"]] == ["Succeeded"] * len(JOB_NAMES)
    assert (world.clock.now() - started).total_seconds() >= 600  # the hold is 10 virtual minutes
    jobs = sorted(j["metadata"]["name"] for j in world.sovereignty.context.primary.list("Job", "flux-system"))
    assert jobs == [f"self-sovereign-cutover-{i:02d}-{n}" for i, n in enumerate(JOB_NAMES, start=1)]
    remaining = {n for n, on in tethered(world).items() if on}
    assert remaining == {6, 8}  # not pivoted by ADR-0002's Jobs, not in its deny-list (R-DOD-05)
    # the proxies are back after the hold
    proxies = httpx.get(f"{world.mothership.toxiproxy_url}/proxies").json()
    assert all(p["enabled"] for p in proxies.values())


def test_the_proof_fails_on_a_tethered_sovereign_naming_the_tethers(world: World) -> None:
    world.run(world.sovereignty.runner.start_proof())
    world.until_done()
    proof = world.sovereignty.runner.last_proof
    assert proof is not None and proof["held"] is False
    broken = " | ".join(proof["brokenTethers"])
    for number in (1, 2, 3, 4):
        assert f"tether {number}:" in broken, broken
    assert world.sovereignty.status()["cutoverComplete"] is False
    assert proof["samples"] == 1  # the first red sample ends the hold: the block is lifted at once
    proxies = httpx.get(f"{world.mothership.toxiproxy_url}/proxies").json()
    assert all(p["enabled"] for p in proxies.values())


def test_skipping_registry_pivot_fails_the_egress_test_on_tether_2(world: World) -> None:
    world.run(world.sovereignty.runner.start("ahmed", ["registry-pivot"]))
    status = world.until_done()
    assert status["phase"] == "Failed" and not status["cutoverComplete"]
    steps = {s["name"]: s for s in status["steps"]}
    assert steps["registry-pivot"]["state"] == "Skipped"
    assert steps["egress-block-test"]["state"] == "Failed"
    assert "tether 2:" in steps["egress-block-test"]["message"]
    assert "tether 1:" not in steps["egress-block-test"]["message"]


def test_the_cutover_resumes_after_a_crash(world: World) -> None:
    world.run(world.sovereignty.runner.start("ahmed", []))
    for _ in range(500):
        world.settle()
        states = {s["name"]: s["state"] for s in world.sovereignty.status()["steps"]}
        if states["harbor-projects"] == "Succeeded":
            break
        world.clock.set(world.clock.next_timer_at())
    world.run(world.sovereignty.stop())  # the control plane dies between Jobs
    assert world.sovereignty.status()["phase"] == "Running"
    world.run(world.sovereignty.start())  # ... and comes back: it resumes from the ConfigMap
    status = world.until_done()
    assert status["phase"] == "Succeeded" and status["cutoverComplete"], status
    assert any(e["type"] == "catalyst.cutover.resumed" for e in world.sovereignty.events)
