"""Lifecycle and timings: a forge starts fast, serves real git, and stops without leaving anything.

DESIGN.md §4: every thread and socket started is stopped at the end and two runs never collide.
The timings (start, clone, push, API commit) are printed (``-s``) and kept in the test's
``user_properties`` for reports; the bounds asserted are generous (they guard against hangs, not for speed).
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from catalyst_sim.backends.embedded.forge import EmbeddedForge
from catalyst_sim.clients.gitea import FileChange, GiteaClient
from catalyst_sim.clock import VirtualClock
from catalyst_sim.serving import ServerThread

from .conftest import Git, started, threads_of, unique


def port_is_closed(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_two_forges_side_by_side_then_everything_is_stopped(tmp_path: Path, git: Git) -> None:
    names = {started(unique("forge-life")), started(unique("forge-life"))}
    got: list[bytes] = []

    async def hook(request: Request) -> PlainTextResponse:
        got.append(await request.body())
        return PlainTextResponse("ok")

    receiver_name = started(unique("forge-life-receiver"))
    receiver = ServerThread(Starlette(routes=[Route("/", hook, methods=["POST"])]), receiver_name).start()
    forges = [EmbeddedForge(tmp_path / name, VirtualClock(), name=name).start() for name in sorted(names)]
    ports = [f.port for f in forges] + [receiver.port]
    try:
        assert len(set(ports)) == 3
        for forge in forges:
            with GiteaClient(forge.url, forge.token) as client:
                client.create_org("acme")  # the same names in both: separate state, separate roots
                client.create_org_repo("acme", "app", auto_init=True)
                client.create_repo_hook("acme", "app", receiver.url + "/")
            work = git.home / forge.name
            git.run("clone", "--quiet", forge.clone_url("acme/app"), str(work))
            (work / "f.txt").write_text(forge.name)
            git.run("add", ".", cwd=work)
            git.run("commit", "--quiet", "-m", "f", cwd=work)
            git.run("push", "--quiet", "origin", "main", cwd=work)
            assert forge.wait_for_webhooks()
        assert len(got) == 2
    finally:
        for forge in forges:
            forge.stop()
            forge.stop()  # twice is harmless
        receiver.stop()
    assert threads_of(names | {receiver_name}) == []
    assert all(port_is_closed(port) for port in ports)
    for forge in forges:
        assert not forge.running
        with pytest.raises(RuntimeError):
            _ = forge.url


def test_stop_drains_queued_webhooks(tmp_path: Path) -> None:
    name = started(unique("forge-drain"))
    received: list[bytes] = []

    async def slow(request: Request) -> PlainTextResponse:
        received.append(await request.body())
        return PlainTextResponse("ok")

    receiver_name = started(unique("forge-drain-receiver"))
    receiver = ServerThread(Starlette(routes=[Route("/", slow, methods=["POST"])]), receiver_name).start()
    try:
        with (
            EmbeddedForge(tmp_path, VirtualClock(), name=name) as forge,
            GiteaClient(forge.url, forge.token) as client,
        ):
            client.create_org("acme")
            client.create_org_repo("acme", "app", auto_init=True)
            client.create_repo_hook("acme", "app", receiver.url + "/")
            for index in range(5):
                client.create_file("acme", "app", f"{index}.txt", "x")
        assert len(received) == 5  # stop() delivered what was queued before ending the worker
    finally:
        receiver.stop()
    assert threads_of({name, receiver_name}) == []


def test_timings(tmp_path: Path, git: Git, request: pytest.FixtureRequest) -> None:
    name = started(unique("forge-timing"))
    begin = time.perf_counter()
    forge = EmbeddedForge(tmp_path, VirtualClock(), name=name).start()
    start_ms = (time.perf_counter() - begin) * 1000
    clones, pushes, commits = [], [], []
    try:
        with GiteaClient(forge.url, forge.token) as client:
            client.create_org("acme")
            client.create_org_repo("acme", "app", auto_init=True)
            for index in range(5):
                work = git.home / f"w{index}"
                begin = time.perf_counter()
                git.run("clone", "--quiet", forge.clone_url("acme/app"), str(work))
                clones.append((time.perf_counter() - begin) * 1000)
                (work / f"n{index}.txt").write_text("n")
                git.run("add", ".", cwd=work)
                git.run("commit", "--quiet", "-m", "n", cwd=work)
                begin = time.perf_counter()
                git.run("push", "--quiet", "origin", "main", cwd=work)
                pushes.append((time.perf_counter() - begin) * 1000)
                begin = time.perf_counter()
                client.change_files(
                    "acme", "app", [FileChange("create", f"api{index}/{n}.yaml", "x: 1\n") for n in range(5)]
                )
                commits.append((time.perf_counter() - begin) * 1000)
            with httpx.Client(trust_env=False) as raw:
                begin = time.perf_counter()
                for _ in range(20):
                    raw.get(f"{forge.url}/api/v1/version")
                version_ms = (time.perf_counter() - begin) * 1000 / 20
    finally:
        forge.stop()
    local = subprocess.run(["git", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    timings = {
        "forge_start_ms": start_ms,
        "clone_ms_median": statistics.median(clones),
        "push_ms_median": statistics.median(pushes),
        "api_commit_5_files_ms_median": statistics.median(commits),
        "api_keepalive_request_ms": version_ms,
    }
    request.node.user_properties.extend((key, round(value, 1)) for key, value in timings.items())
    print(f"\nforge timings ({local}): " + ", ".join(f"{k}={v:.1f}" for k, v in timings.items()))
    assert start_ms < 2000 and max(clones + pushes + commits) < 5000
