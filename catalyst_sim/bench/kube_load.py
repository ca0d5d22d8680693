"""A load generator for ``bench kube``: ConfigMap creates from a separate process, K connections.

The sequential phases of ``bench kube`` run client and emulator in one process, so every request
pays for both sides in turn on one GIL. Real clients of an API server (controllers, kubectl, CI
jobs) are other processes with several connections open. This module is that client: it runs as
``python -m catalyst_sim.bench.kube_load``, creates ``--count`` ConfigMaps spread over
``--connections`` kept-alive HTTPS connections (one thread each), and prints one JSON line.

The bearer token comes from the ``CATALYST_BENCH_TOKEN`` environment variable, never argv, so it
does not show in a process listing.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import threading
import time

import httpx

TOKEN_ENV = "CATALYST_BENCH_TOKEN"


def run(server: str, ca: str, namespace: str, count: int, connections: int, prefix: str) -> dict[str, object]:
    context = ssl.create_default_context(cafile=ca)
    headers = {"Authorization": f"Bearer {os.environ[TOKEN_ENV]}"}
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors: list[str] = []
    start_gate = threading.Barrier(connections + 1)

    def worker(index: int) -> None:
        path = f"/api/v1/namespaces/{namespace}/configmaps"
        with httpx.Client(base_url=server, verify=context, headers=headers, timeout=30.0) as http:
            http.get("/version")  # the TLS handshake happens before the clock starts
            start_gate.wait()
            for i in range(index, count, connections):
                body = {"metadata": {"name": f"{prefix}-{i:06d}"}, "data": {"index": str(i)}}
                before = time.perf_counter()
                try:
                    response = http.post(path, json=body)
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    return
                latencies[index].append(time.perf_counter() - before)
                if response.status_code != 201:
                    errors.append(f"{body['metadata']['name']}: HTTP {response.status_code} {response.text[:200]}")
                    return

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(connections)]
    for thread in threads:
        thread.start()
    start_gate.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    done = sorted(t for per in latencies for t in per)

    def at(q: float) -> float | None:
        return round(done[min(len(done) - 1, int(q * len(done)))] * 1000, 3) if done else None

    return {"count": len(done), "connections": connections, "seconds": round(seconds, 3),
            "per_s": round(len(done) / seconds, 1) if seconds > 0 else None,
            "latency_ms": {"p50": at(0.5), "p99": at(0.99)}, "errors": errors[:5]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True, help="the cluster's API URL")
    parser.add_argument("--ca", required=True, help="PEM file of the emulator's CA")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--prefix", default="load")
    args = parser.parse_args(argv)
    if TOKEN_ENV not in os.environ:
        parser.error(f"set {TOKEN_ENV} to the cluster's bearer token")
    if args.count < 1 or args.connections < 1:
        parser.error("--count and --connections must be >= 1")
    print(json.dumps(run(args.server, args.ca, args.namespace, args.count, args.connections, args.prefix)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
