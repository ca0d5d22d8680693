"""``bench kube``: how fast the Kubernetes emulator serves real clients, as a JSON document.

Why a benchmark: the emulator must stay fast enough for journeys that create thousands of
objects, but a timing assert on a shared 2-core machine only measures the neighbours. So this
reports absolute rates (compared with :data:`TARGETS`, never asserted) next to ratios measured in
the same run, which noise mostly cancels out of:

* ``client_vs_raw_creates``: the ``kubernetes`` Python client against plain ``httpx`` doing the
  same creates. The two run in alternating blocks (ABBA order), so a noisy minute hurts both.
* ``slowdown_ratio``: the rate of the last 1k raw creates over the first 1k. Per-operation cost
  must not grow with the store ("no slowdown from 1k to 10k"); ``tests/contract/kube/test_scale``
  proves it in counted work, this shows it in wall time over HTTP. (Raw and client creates share
  the cluster, so the last 1k raw creates meet a store of about twice ``objects``.)
* ``raw_creates_vs_floor``: creates against ``GET /version`` through the same client, TLS and
  server but no store, the ceiling the HTTP stack puts on a sequential caller on this machine.
* ``parallel_creates`` (a result, and the creates target): the same raw creates from another
  process over :data:`PARALLEL_CONNECTIONS` connections (:mod:`.kube_load`, raw HTTP/1.1 parsed by
  httptools), as real API clients load a server; ``parallel_vs_sequential_creates`` says what the
  in-process httpx caller left unused, ``parallel_slowdown_ratio`` compares its last 1k with its first.

Each rate also comes with the CPU both sides spent per operation (this thread, and the emulator's
thread from ``/proc`` where there is one): a sequential caller waits for the sum of the two, so
the split says whether the emulator or the client is what a faster run would have to cut.

Everything runs against one emulator started here (always stopped, also on error or Ctrl-C),
in this process, exactly as the embedded backend runs it: clients and server share the GIL, which
is part of what a journey sees. Every phase is bounded in count and by one overall deadline; when
the deadline passes the remaining phases are skipped and the document says so (``complete``).

Run it with ``python -m catalyst_sim.bench.kube --out bench-kube.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

from catalyst_sim import __version__
from catalyst_sim.bench import kube_load

# The creates target is judged on the parallel client (another process, several connections): that is
# how an API server is loaded. The sequential in-process rate is bounded by its own floor (see above).
TARGETS: dict[str, float] = {"parallel_raw_creates_per_s": 1000, "slowdown_ratio_min": 0.8}
PARALLEL_NS = "bench-parallel"
PARALLEL_CONNECTIONS = 4
CLUSTER = "bench"
RAW_NS = "bench-raw"  # objects created through httpx; listed, read and watched
CLIENT_NS = "bench-client"  # the same objects created through the kubernetes client
BLOCK = 250  # creates per block; raw and client blocks alternate
FLOOR_SHARE = 5  # one GET /version per this many creates, in blocks between the create blocks
WINDOW = 1_000  # "first 1k" / "last 1k"
MAX_GETS = 2_000  # gets per client kind (a sample spread over all objects)
PAGE = 500
EMULATOR_THREAD = "catalyst-sim:kube-emulator"
UPDATES = 200
REQUEST_TIMEOUT = 30.0

_T = TypeVar("_T")


class BenchError(RuntimeError):
    """The emulator answered something a benchmark cannot measure (a failed request)."""


class _DeadlineReached(Exception):
    def __init__(self, phase: str) -> None:
        super().__init__(phase)
        self.phase = phase


@dataclass
class _Deadline:
    at: float

    def left(self) -> float:
        return self.at - time.monotonic()

    def check(self, phase: str) -> None:
        if self.left() <= 0:
            raise _DeadlineReached(phase)


@dataclass
class _Run:
    """What the phases share: clients, the deadline, and the document under construction."""

    raw: httpx.Client
    client: Any  # kubernetes.client.CoreV1Api
    cluster: Any  # catalyst_sim.backends.embedded.kube.Cluster
    http: Callable[[], httpx.Client]
    deadline: _Deadline
    say: Callable[[str], None]
    objects: int
    watchers: int
    updates: int
    page_limit: int
    server_thread: int | None = None  # the emulator's thread (native id), for the CPU split
    ca_pem: bytes = b""  # the emulator's CA, for clients in other processes
    streams: list[_WatchStream] = field(default_factory=list)  # joined again once the emulator stopped
    results: dict[str, Any] = field(default_factory=dict)


class _Meter:
    """Per-operation wall times of one kind of call, and the CPU each side spent on them.

    The split (this thread's CPU, the emulator thread's CPU, per operation) says where the time
    goes without a profiler, and CPU time is far less disturbed by a busy machine than wall time.
    """

    def __init__(self, server_thread: int | None) -> None:
        self.server_thread = server_thread
        self.times: list[float] = []
        self.client_cpu = 0.0
        self.server_cpu: float | None = 0.0
        self.blocks: list[tuple[int, float | None]] = []  # (operations, emulator CPU seconds) per block

    @contextlib.contextmanager
    def block(self) -> Iterator[None]:
        client_before, server_before, ops_before = (
            time.thread_time(),
            _thread_cpu_s(self.server_thread),
            len(self.times),
        )
        try:
            yield
        finally:
            self.client_cpu += time.thread_time() - client_before
            server_after = _thread_cpu_s(self.server_thread)
            server = None if server_before is None or server_after is None else server_after - server_before
            self.server_cpu = None if server is None or self.server_cpu is None else self.server_cpu + server
            self.blocks.append((len(self.times) - ops_before, server))

    def window_server_cpu_us(self, window: int, *, last: bool) -> float | None:
        """Emulator CPU per operation over the first (or last) whole blocks covering ``window`` ops.

        Unlike the wall-clock rate, a burst of load from elsewhere on the machine barely moves it:
        the steadiest answer to "does a create cost more in a bigger store?".
        """
        ops, cpu = 0, 0.0
        for count, server in reversed(self.blocks) if last else self.blocks:
            if ops >= window:
                break
            if server is None:
                return None
            ops, cpu = ops + count, cpu + server
        return round(1e6 * cpu / ops, 1) if ops and window else None

    def timed(self, call: Callable[[], _T]) -> _T:
        before = time.perf_counter()
        result = call()
        self.times.append(time.perf_counter() - before)
        return result

    def summary(self) -> dict[str, Any]:
        count = len(self.times)
        return {
            "count": count,
            "per_s": _rate(self.times),
            "latency_ms": _latency_summary(self.times),
            "client_cpu_us_per_op": round(1e6 * self.client_cpu / count, 1) if count else None,
            "server_cpu_us_per_op": (
                round(1e6 * self.server_cpu / count, 1) if count and self.server_cpu is not None else None
            ),
        }


def _thread_cpu_s(native_id: int | None) -> float | None:
    """CPU seconds (user + system) of one thread of this process; None where /proc has no answer."""
    if native_id is None:
        return None
    try:
        fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def run_kube_bench(
    *,
    objects: int = 10_000,
    watchers: int = 10,
    progress: Callable[[str], None] | None = None,
    updates: int = UPDATES,
    page_limit: int = PAGE,
    budget_s: float = 300.0,
) -> dict[str, Any]:
    """Start an emulator, measure creates, gets, lists and watch fan-out on one cluster, stop it.

    ``objects`` ConfigMaps are created through raw httpx and as many through the kubernetes
    client; ``watchers`` watch streams then each receive ``updates`` changes; the paged list asks
    for ``page_limit`` items a page. ``budget_s`` bounds the whole run: the phase it cuts short
    keeps the numbers it has, and it and the phases after it are listed in ``skipped``. Targets
    are reported in ``met``, never enforced: the caller decides what a miss means.
    """
    if objects < 2 or watchers < 1 or updates < 1 or page_limit < 1:
        raise ValueError("objects must be >= 2; watchers, updates and page_limit >= 1")
    from kubernetes import client, config

    from catalyst_sim.backends.embedded.kube import KubeEmulator
    from catalyst_sim.clock import WallClock

    say = progress or (lambda message: None)
    started = datetime.now(UTC)
    t0 = time.monotonic()
    deadline = _Deadline(t0 + budget_s)
    document: dict[str, Any] = {
        "benchmark": "kube",
        "version": __version__,
        "started": started.isoformat(timespec="seconds"),
        "parameters": {
            "objects": objects,
            "watchers": watchers,
            "updates": updates,
            "budget_s": budget_s,
            "block": BLOCK,
            "window": _window(objects),
            "gets": min(objects, MAX_GETS),
            "page_limit": page_limit,
        },
        "machine": _machine(),
        "results": {},
        "ratios": {},
        "targets": dict(TARGETS),
        "met": {},
    }
    kube = KubeEmulator(WallClock())
    api_client = None
    raw = None
    run: _Run | None = None
    try:
        before = {t.ident for t in threading.enumerate()}
        kube.start()
        server_thread = next(
            (t.native_id for t in threading.enumerate() if t.name == EMULATOR_THREAD and t.ident not in before), None
        )
        cluster = kube.add_cluster(CLUSTER)
        context = ssl.create_default_context(cadata=kube.ca_pem.decode())

        def http() -> httpx.Client:
            return httpx.Client(
                base_url=cluster.server,
                verify=context,
                timeout=REQUEST_TIMEOUT,
                headers={"Authorization": f"Bearer {cluster.token}"},
            )

        raw = http()
        with tempfile.TemporaryDirectory(prefix="catalyst-sim-bench-") as scratch:
            api_client = config.new_client_from_config(
                config_file=str(kube.kubeconfig(CLUSTER, Path(scratch) / "kubeconfig"))
            )
        for ns in (RAW_NS, CLIENT_NS):
            _expect(raw.post("/api/v1/namespaces", json={"metadata": {"name": ns}}), 201, f"create namespace {ns}")
        run = _Run(
            raw=raw,
            client=client.CoreV1Api(api_client),
            cluster=cluster,
            http=http,
            deadline=deadline,
            say=say,
            objects=objects,
            watchers=watchers,
            updates=updates,
            page_limit=page_limit,
            server_thread=server_thread,
            ca_pem=kube.ca_pem,
            results=document["results"],
        )
        phases: list[tuple[str, Callable[[_Run], None]]] = [
            ("creates", _creates),
            ("parallel_creates", _parallel_creates),
            ("gets", _gets),
            ("list", _lists),
            ("watch", _watch),
        ]
        skipped: list[str] = []
        for index, (name, phase) in enumerate(phases):
            try:
                deadline.check(name)
                say(f"{name} ...")
                phase(run)
            except _DeadlineReached as reached:
                say(f"deadline of {budget_s:g}s reached in {reached.phase}: skipping the rest")
                skipped = [n for n, _ in phases[index:]]
                break
        document["complete"] = not skipped
        document["skipped"] = skipped
    finally:
        say("stopping the emulator")
        if raw is not None:
            raw.close()
        if api_client is not None:
            api_client.close()
        kube.stop()  # ends any watch stream still open, so the joins below return at once
        for stream in run.streams if run is not None else ():
            stream.join(5)
    document["duration_s"] = round(time.monotonic() - t0, 3)
    document["ratios"], document["met"] = _judge(document["results"])
    return document


# ---------------------------------------------------------------------------------------- phases


def _creates(run: _Run) -> None:
    """Sequential creates, raw and client in alternating blocks so both meet the same noise.

    Between them, a smaller block of ``GET /version`` (the ``floor``): the same client, TLS,
    uvicorn and routing but no store, so the most the HTTP stack allows a sequential caller on
    this machine at this moment. It puts the create rate, and its target, in proportion.
    """
    from kubernetes import client

    raw, typed, floor = _Meter(run.server_thread), _Meter(run.server_thread), _Meter(run.server_thread)
    raw_path = f"/api/v1/namespaces/{RAW_NS}/configmaps"
    phase_start = time.perf_counter()

    def raw_block(start: int, stop: int) -> None:
        with raw.block():
            for i in range(start, stop):
                body = _configmap(i)
                response = raw.timed(lambda body=body: run.raw.post(raw_path, json=body))
                _expect(response, 201, f"create {body['metadata']['name']}")

    def client_block(start: int, stop: int) -> None:
        with typed.block():
            for i in range(start, stop):
                doc = _configmap(i)
                body = client.V1ConfigMap(  # typed models, as client code writes them
                    metadata=client.V1ObjectMeta(**doc["metadata"]), data=doc["data"]
                )
                typed.timed(
                    lambda body=body: run.client.create_namespaced_config_map(
                        CLIENT_NS, body, _request_timeout=REQUEST_TIMEOUT
                    )
                )

    def floor_block(start: int, stop: int) -> None:
        with floor.block():
            for _ in range(max(1, (stop - start) // FLOOR_SHARE)):
                _expect(floor.timed(lambda: run.raw.get("/version")), 200, "get /version")

    try:
        for block, start in enumerate(range(0, run.objects, BLOCK)):
            stop = min(run.objects, start + BLOCK)
            order = (raw_block, client_block, floor_block)
            for create in order if block % 2 == 0 else reversed(order):
                create(start, stop)
                run.deadline.check("creates")
            if block % 8 == 7 or stop == run.objects:
                run.say(f"created {stop}/{run.objects} raw and client ConfigMaps")
    finally:  # partial numbers are still numbers: record them even when the deadline cut in
        window = _window(len(raw.times))
        run.results["creates"] = {
            "wall_s": round(time.perf_counter() - phase_start, 3),
            "raw": raw.summary(),
            "client": typed.summary(),
            "floor": floor.summary(),
            "window": window,
            "raw_first_window_per_s": _rate(raw.times[:window]),
            "raw_last_window_per_s": _rate(raw.times[-window:]) if window else None,
            "client_first_window_per_s": _rate(typed.times[:window]),
            "client_last_window_per_s": _rate(typed.times[-window:]) if window else None,
            "raw_first_window_p50_ms": _latency_summary(raw.times[:window])["p50"],
            "raw_last_window_p50_ms": _latency_summary(raw.times[-window:])["p50"] if window else None,
            "raw_first_window_server_cpu_us_per_op": raw.window_server_cpu_us(window, last=False),
            "raw_last_window_server_cpu_us_per_op": raw.window_server_cpu_us(window, last=True),
        }


def _parallel_creates(run: _Run) -> None:
    """``objects`` raw creates from a separate process over several connections (:mod:`.kube_load`)."""
    _expect(run.raw.post("/api/v1/namespaces", json={"metadata": {"name": PARALLEL_NS}}), 201,
            f"create namespace {PARALLEL_NS}")
    with tempfile.TemporaryDirectory(prefix="catalyst-sim-bench-") as scratch:
        ca = Path(scratch) / "ca.pem"
        ca.write_bytes(run.ca_pem)
        command = [sys.executable, "-m", "catalyst_sim.bench.kube_load", "--server", run.cluster.server,
                   "--ca", str(ca), "--namespace", PARALLEL_NS, "--count", str(run.objects),
                   "--connections", str(PARALLEL_CONNECTIONS), "--prefix", "parallel"]
        server_before = _thread_cpu_s(run.server_thread)
        try:
            finished = subprocess.run(command, capture_output=True, text=True, check=False,
                                      timeout=max(1.0, run.deadline.left()),
                                      env={**os.environ, kube_load.TOKEN_ENV: run.cluster.token})
        except subprocess.TimeoutExpired:  # run() killed the client; what it created is not counted
            raise _DeadlineReached("parallel_creates") from None
        server_after = _thread_cpu_s(run.server_thread)
    if finished.returncode != 0 or not finished.stdout.strip():
        raise BenchError(f"the parallel client failed (exit {finished.returncode}): {finished.stderr[-500:]}")
    result = json.loads(finished.stdout.strip().splitlines()[-1])
    if result["errors"]:
        raise BenchError(f"the parallel client got errors: {result['errors']}")
    if server_before is not None and server_after is not None and result["count"]:
        result["server_cpu_us_per_op"] = round(1e6 * (server_after - server_before) / result["count"], 1)
    run.results["parallel_creates"] = result
    run.say(f"parallel: {result['count']} creates over {result['connections']} connections, {result['per_s']}/s")


def _gets(run: _Run) -> None:
    """Reads of objects spread over the whole namespace, raw and client alternating by block."""
    count = min(run.objects, MAX_GETS)
    names = [_name(i * run.objects // count) for i in range(count)]
    raw, typed = _Meter(run.server_thread), _Meter(run.server_thread)

    def raw_block(chunk: list[str]) -> None:
        with raw.block():
            for name in chunk:
                path = f"/api/v1/namespaces/{RAW_NS}/configmaps/{name}"
                _expect(raw.timed(lambda path=path: run.raw.get(path)), 200, f"get {name}")

    def client_block(chunk: list[str]) -> None:
        with typed.block():
            for name in chunk:
                typed.timed(
                    lambda name=name: run.client.read_namespaced_config_map(
                        name, CLIENT_NS, _request_timeout=REQUEST_TIMEOUT
                    )
                )

    try:
        for block, start in enumerate(range(0, count, BLOCK)):
            chunk = names[start : start + BLOCK]
            for read in (raw_block, client_block) if block % 2 == 0 else (client_block, raw_block):
                read(chunk)
                run.deadline.check("gets")
    finally:
        run.results["gets"] = {"raw": raw.summary(), "client": typed.summary()}


def _lists(run: _Run) -> None:
    """One full list, a paged list (limit, continue) and the client's list of the same objects."""
    path = f"/api/v1/namespaces/{RAW_NS}/configmaps"
    before = time.perf_counter()
    response = run.raw.get(path)
    seconds = time.perf_counter() - before
    _expect(response, 200, "list")
    before = time.perf_counter()
    items = response.json()["items"]
    parse_s = time.perf_counter() - before
    full = {
        "seconds": round(seconds, 4),
        "parse_s": round(parse_s, 4),
        "bytes": len(response.content),
        "items": len(items),
    }
    run.results["list"] = {"full": full}
    run.deadline.check("list")

    pages = 0
    paged_items = 0
    paged_bytes = 0
    names: set[str] = set()
    continue_token = ""
    request_s = parse_s = 0.0
    while True:
        params = {"limit": str(run.page_limit), **({"continue": continue_token} if continue_token else {})}
        before = time.perf_counter()
        response = run.raw.get(path, params=params)
        request_s += time.perf_counter() - before
        _expect(response, 200, f"list page {pages + 1}")
        before = time.perf_counter()
        page = response.json()
        parse_s += time.perf_counter() - before
        pages += 1
        paged_bytes += len(response.content)
        paged_items += len(page["items"])
        names.update(item["metadata"]["name"] for item in page["items"])
        continue_token = page["metadata"].get("continue", "")
        if not continue_token or pages > run.objects // run.page_limit + 2:  # bounded even if paging misbehaves
            break
    run.results["list"]["paged"] = {
        "seconds": round(request_s, 4),  # requests only, as for the full list; parsing apart
        "parse_s": round(parse_s, 4),
        "pages": pages,
        "items": paged_items,
        "distinct": len(names),
        "bytes": paged_bytes,
    }
    run.deadline.check("list")

    before = time.perf_counter()
    listed = run.client.list_namespaced_config_map(CLIENT_NS, _request_timeout=max(REQUEST_TIMEOUT, 120))
    run.results["list"]["client"] = {
        "seconds": round(time.perf_counter() - before, 4),  # request and deserialisation to models
        "items": len(listed.items),
    }


def _watch(run: _Run) -> None:
    """Fan-out latency: ``watchers`` streams see each update; latency is measured per receipt.

    Updates go one at a time and the next waits until every watcher saw the previous one, so
    the numbers are delivery latency, not a queue building up. Latency runs from the moment the
    writer has the update's response; it can be slightly negative, since the server offers the
    event to watchers before it writes that response (``min_ms`` shows it).
    """
    listed = run.raw.get(f"/api/v1/namespaces/{RAW_NS}/configmaps", params={"limit": "1"})
    _expect(listed, 200, "list for the watch's resourceVersion")
    rv = listed.json()["metadata"]["resourceVersion"]
    fan = _FanOut(run.watchers)
    stop = threading.Event()
    timeout = max(1, int(run.deadline.left()) + 1)
    streams = run.streams = [
        _WatchStream(i, run.http, f"/api/v1/namespaces/{RAW_NS}/configmaps", rv, timeout, run.updates, fan, stop)
        for i in range(run.watchers)
    ]
    for stream in streams:
        stream.start()
    from_response: list[float] = []
    from_request: list[float] = []
    missed = 0
    updates_sent = 0
    try:
        wait_until = time.monotonic() + min(30.0, max(0.0, run.deadline.left()))
        while run.cluster.open_watches() < run.watchers:
            if time.monotonic() > wait_until or any(s.error for s in streams):
                errors = [s.error for s in streams if s.error]
                raise BenchError(f"only {run.cluster.open_watches()}/{run.watchers} watches opened: {errors}")
            time.sleep(0.01)
        run.say(f"{run.watchers} watches open, sending {run.updates} updates")
        for u in range(run.updates):
            name = _name(u % run.objects)
            sent = time.perf_counter()
            response = run.raw.patch(
                f"/api/v1/namespaces/{RAW_NS}/configmaps/{name}",
                content=json.dumps({"data": {"tick": str(u)}}).encode(),
                headers={"Content-Type": "application/merge-patch+json"},
            )
            answered = time.perf_counter()
            _expect(response, 200, f"update {name}")
            updates_sent += 1
            event_rv = int(response.json()["metadata"]["resourceVersion"])
            times = fan.wait(event_rv, min(10.0, max(0.1, run.deadline.left())))
            missed += run.watchers - len(times)
            from_response.extend(t - answered for t in times)
            from_request.extend(t - sent for t in times)
            run.deadline.check("watch")
    finally:
        stop.set()  # each stream also ends by itself after its last expected event
        join_by = time.monotonic() + 5
        for stream in streams:
            stream.join(max(0.0, join_by - time.monotonic()))
        run.results["watch"] = {
            "watchers": run.watchers,
            "updates_sent": updates_sent,
            "deliveries": len(from_response),
            "missed": missed,
            "from_response_ms": _latency_summary(from_response),
            "from_request_ms": _latency_summary(from_request),
            "stream_errors": [s.error for s in streams if s.error],
        }


class _FanOut:
    """Receipt times per resourceVersion, shared by the watcher threads and the writer."""

    def __init__(self, watchers: int) -> None:
        self.watchers = watchers
        self._cond = threading.Condition()
        self._received: dict[int, list[float]] = {}

    def record(self, rv: int, at: float) -> None:
        with self._cond:
            times = self._received.setdefault(rv, [])
            times.append(at)
            if len(times) >= self.watchers:
                self._cond.notify_all()

    def wait(self, rv: int, timeout: float) -> list[float]:
        """The receipts of ``rv`` once every watcher has it, or those there are at the timeout."""
        with self._cond:
            self._cond.wait_for(lambda: len(self._received.get(rv, ())) >= self.watchers, timeout)
            return self._received.pop(rv, [])


class _WatchStream(threading.Thread):
    """One watch over its own connection, timestamping each event line as it arrives.

    Named ``catalyst-sim:...`` like the emulator's own threads, so the no-leftover-threads
    checks of the test suite cover it as well.
    """

    def __init__(
        self,
        index: int,
        http: Callable[[], httpx.Client],
        path: str,
        rv: str,
        timeout_s: int,
        expected: int,
        fan: _FanOut,
        stop: threading.Event,
    ) -> None:
        super().__init__(name=f"catalyst-sim:bench-kube-watch-{index}", daemon=True)
        self._http, self._path, self._rv, self._timeout_s = http, path, rv, timeout_s
        self._expected, self._fan, self._stop_event = expected, fan, stop
        self.events = 0
        self.error = ""

    def run(self) -> None:
        params = {"watch": "1", "resourceVersion": self._rv, "timeoutSeconds": str(self._timeout_s)}
        try:
            with self._http() as http, http.stream("GET", self._path, params=params) as response:
                if response.status_code != 200:
                    self.error = f"watch answered {response.status_code}"
                    return
                for line in response.iter_lines():
                    if not line:
                        continue
                    at = time.perf_counter()
                    event = json.loads(line)
                    if event.get("type") == "ERROR":
                        self.error = f"watch error event: {event.get('object')}"
                        return
                    self._fan.record(int(event["object"]["metadata"]["resourceVersion"]), at)
                    self.events += 1
                    if self.events >= self._expected or self._stop_event.is_set():
                        return
        except Exception as exc:  # reported in the document; a stopped emulator ends streams abruptly
            if not self._stop_event.is_set():
                self.error = repr(exc)


# ---------------------------------------------------------------------------------------- numbers


def _judge(results: dict[str, Any]) -> tuple[dict[str, float | None], dict[str, bool]]:
    """Ratios from the same run, and whether the targets were met (False when not measured)."""
    creates = results.get("creates") or {}
    gets = results.get("gets") or {}
    lists = results.get("list") or {}
    raw_rate = (creates.get("raw") or {}).get("per_s")
    parallel_rate = (results.get("parallel_creates") or {}).get("per_s")
    ratios = {
        "client_vs_raw_creates": _ratio((creates.get("client") or {}).get("per_s"), raw_rate),
        "client_vs_raw_gets": _ratio((gets.get("client") or {}).get("per_s"), (gets.get("raw") or {}).get("per_s")),
        "slowdown_ratio": _ratio(creates.get("raw_last_window_per_s"), creates.get("raw_first_window_per_s")),
        # The same question, answered by figures a noise burst moves less (median, emulator CPU).
        "slowdown_ratio_p50": _ratio(creates.get("raw_first_window_p50_ms"), creates.get("raw_last_window_p50_ms")),
        "slowdown_ratio_server_cpu": _ratio(
            creates.get("raw_first_window_server_cpu_us_per_op"), creates.get("raw_last_window_server_cpu_us_per_op")
        ),
        "client_slowdown_ratio": _ratio(
            creates.get("client_last_window_per_s"), creates.get("client_first_window_per_s")
        ),
        # The parallel run meets a store of 2-3x `objects`: its last window against its first.
        "parallel_slowdown_ratio": _ratio(
            (results.get("parallel_creates") or {}).get("last_window_per_s"),
            (results.get("parallel_creates") or {}).get("first_window_per_s"),
        ),
        "raw_creates_vs_floor": _ratio(raw_rate, (creates.get("floor") or {}).get("per_s")),
        "parallel_vs_sequential_creates": _ratio(parallel_rate, raw_rate),
        "paged_vs_full_list": _ratio(
            (lists.get("paged") or {}).get("seconds"), (lists.get("full") or {}).get("seconds")
        ),
    }
    slowdown = ratios["slowdown_ratio"]
    met = {
        "parallel_raw_creates_per_s": (parallel_rate is not None
                                       and parallel_rate >= TARGETS["parallel_raw_creates_per_s"]),
        "slowdown_ratio_min": slowdown is not None and slowdown >= TARGETS["slowdown_ratio_min"],
    }
    return ratios, met


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, 4)


def _rate(durations: list[float]) -> float | None:
    total = sum(durations)
    return round(len(durations) / total, 1) if durations and total > 0 else None


def _latency_summary(seconds: list[float]) -> dict[str, float | None]:
    ordered = sorted(seconds)

    def at(q: float) -> float | None:
        if not ordered:
            return None
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)

    return {
        "p50": at(0.50),
        "p99": at(0.99),
        "max": round(ordered[-1] * 1000, 3) if ordered else None,
        "min": round(ordered[0] * 1000, 3) if ordered else None,
    }


def _window(n: int) -> int:
    """1k, or half the objects for small runs, so first and last never overlap."""
    return min(WINDOW, n // 2)


def _name(i: int) -> str:
    return f"cm-{i:06d}"


def _configmap(i: int) -> dict[str, Any]:
    """A small, realistic ConfigMap (~300 bytes of JSON): labels, an annotation, a few keys."""
    return {
        "metadata": {
            "name": _name(i),
            "labels": {"app.kubernetes.io/part-of": "catalyst-sim-bench", "shard": str(i % 16)},
            "annotations": {"catalyst.openova.io/bench": "kube"},
        },
        "data": {"index": str(i), "greeting": "hello", "payload": "x" * 64},
    }


def _expect(response: httpx.Response, status: int, what: str) -> None:
    if response.status_code != status:
        raise BenchError(f"{what}: expected {status}, got {response.status_code}: {response.text[:300]}")


def _machine() -> dict[str, Any]:
    """Where the numbers came from: they mean little without the machine (and its load)."""
    load: list[float] | None = None
    with contextlib.suppress(OSError):  # not every platform has a load average
        load = [round(x, 2) for x in os.getloadavg()]
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "load_average": load,
        "gil_switch_interval_s": sys.getswitchinterval(),
        "gc_enabled": gc.isenabled(),
    }


# ---------------------------------------------------------------------------------------- command line


def _print_progress(message: str) -> None:
    print(f"[bench kube] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m catalyst_sim.bench.kube``: run, print the JSON, optionally write it to a file."""
    parser = argparse.ArgumentParser(prog="catalyst-sim bench kube", description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--watchers", type=int, default=10)
    parser.add_argument("--updates", type=int, default=UPDATES)
    parser.add_argument("--budget", type=float, default=300.0, help="seconds for the whole run")
    parser.add_argument("--out", type=Path, help="also write the JSON document here")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    document = run_kube_bench(
        objects=args.objects,
        watchers=args.watchers,
        updates=args.updates,
        budget_s=args.budget,
        progress=None if args.quiet else _print_progress,
    )
    text = json.dumps(document, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
