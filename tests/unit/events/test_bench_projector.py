"""``bench projector`` with tiny numbers: the document's shape, that every number is measured (positive),
and that it leaves no server or thread behind. Never its timings (project standard)."""

from __future__ import annotations

import threading

from catalyst_sim.bench.projector import TARGET_RATIO, run_projector_bench


def test_bench_projector_document_and_cleanup() -> None:
    before = {t for t in threading.enumerate() if t.name.startswith("catalyst-sim:")}
    messages: list[str] = []
    document = run_projector_bench(events=200, apps=5, latency_events=20, progress=messages.append)
    assert document["benchmark"] == "projector" and document["nats_server"]
    results = document["results"]
    assert results["raw_nats_py"]["events"] == results["pipeline_publish_kv_sse"]["events"] == 200
    assert results["raw_nats_py"]["events_per_s"] > 0 and results["pipeline_publish_kv_sse"]["events_per_s"] > 0
    latency = results["latency_publish_to_sse"]
    assert latency["events"] == 20 and 0 < latency["p50_ms"] <= latency["p99_ms"] <= latency["max_ms"]
    assert document["targets"]["pipeline_vs_raw_events_per_s"] == TARGET_RATIO
    assert document["met"]["pipeline_vs_raw_events_per_s"] == (
        document["ratios"]["pipeline_vs_raw_events_per_s"] >= TARGET_RATIO)
    assert any("events/s" in m for m in messages)
    after = {t for t in threading.enumerate() if t.name.startswith("catalyst-sim:") and t.is_alive()}
    assert after <= before, f"threads left behind: {sorted(t.name for t in after - before)}"
