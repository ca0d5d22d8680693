"""Contract tests: the embedded backend's real nats-server, driven by the real nats-py client.

What the rest of the suite relies on (R-NAME-16, R-NAME-17): one NATS Account per Organization
with JetStream, isolation between accounts (subjects, streams, KV), adding an Organization without
losing data, a restart (also a crash) that keeps streams and KV, and a start/stop that never leaves
a process or a port behind.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.js.errors import BucketNotFoundError, NotFoundError

from catalyst_sim.backends.embedded.nats import NATS_PACKAGE, SYSTEM_ACCOUNT, EmbeddedNats, account_name
from catalyst_sim.backends.embedded.process import (
    ManagedProcess,
    ProcessStartError,
    find_binary,
    live_processes,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    run_dir = tmp_path_factory.mktemp("nats-run")
    srv = EmbeddedNats(run_dir, ["acme", "beta"])
    began = time.perf_counter()
    srv.start()
    print(
        f"\nnats-server {srv.version} started in {(time.perf_counter() - began) * 1000:.0f} ms at {srv.url}"
    )
    try:
        yield srv
    finally:
        srv.stop()


async def _connect(srv: EmbeddedNats, org: str) -> nats.NATS:
    return await nats.connect(**srv.connect_options(org), allow_reconnect=False, connect_timeout=5)


def _port_free(port: int) -> bool:
    """Can a server bind the port now? SO_REUSEADDR as servers use it: TIME_WAIT from our own
    probes does not count as "taken"."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_config_has_one_account_per_org_and_a_system_account(server: EmbeddedNats) -> None:
    config = server.config_path.read_text()
    assert f'system_account: "{SYSTEM_ACCOUNT}"' in config
    for org in ("acme", "beta"):
        assert f'"{org}": {{' in config
        assert server.credentials(org)[0] == org
    assert config.count("jetstream: enabled") == 2
    assert server.connect_options("acme") == {
        "servers": [server.url],
        "user": "acme",
        "password": server.credentials("acme")[1],
    }
    with pytest.raises(KeyError):
        server.credentials("nobody")
    assert server.version.count(".") == 2
    assert server.config_path.stat().st_mode & 0o077 == 0  # passwords inside


def test_account_name_is_the_org_slug() -> None:
    assert account_name("omantel-internal") == "omantel-internal"
    for bad in ("Acme", "SYS", "a.b", "", "acme-"):
        with pytest.raises(ValueError):
            account_name(bad)


async def test_jetstream_publish_and_kv_per_account(server: EmbeddedNats) -> None:
    for org in ("acme", "beta"):
        nc = await _connect(server, org)
        try:
            js = nc.jetstream()
            await js.add_stream(name=f"events-{org}", subjects=[f"ws.{org}-prod.>"])
            ack = await js.publish(f"ws.{org}-prod.k8s.pod.{org}.web-0", f"pod of {org}".encode())
            assert ack.stream == f"events-{org}"
            sub = await js.pull_subscribe(f"ws.{org}-prod.>", durable=f"reader-{org}")
            (msg,) = await sub.fetch(1, timeout=5)
            assert msg.data == f"pod of {org}".encode()
            await msg.ack()
            kv = await js.create_key_value(bucket=f"ws-{org}-prod-state")  # R-NAME-17
            revision = await kv.put("Application/web", b"Running")
            entry = await kv.get("Application/web")
            assert entry.value == b"Running" and entry.revision == revision
        finally:
            await nc.close()


async def test_core_subjects_are_isolated_between_accounts(server: EmbeddedNats) -> None:
    a, b = await _connect(server, "acme"), await _connect(server, "beta")
    try:
        seen_by_a: list[bytes] = []
        seen_by_b: list[str] = []

        async def on_a(msg: nats.aio.msg.Msg) -> None:
            seen_by_a.append(msg.data)

        async def on_b(msg: nats.aio.msg.Msg) -> None:
            seen_by_b.append(msg.subject)

        await a.subscribe("ws.acme-prod.>", cb=on_a)
        await b.subscribe(">", cb=on_b)  # B listens to everything it is allowed to see
        await a.flush()
        await b.flush()
        await a.publish("ws.acme-prod.flux.apps", b"reconciled")
        await a.flush()
        for _ in range(100):
            if seen_by_a:
                break
            await asyncio.sleep(0.01)
        await b.flush()  # a round trip on B's connection: anything routed to B has arrived
        assert seen_by_a == [b"reconciled"]
        assert not [s for s in seen_by_b if s.startswith("ws.acme-prod")]
    finally:
        await a.close()
        await b.close()


async def test_jetstream_streams_and_kv_are_isolated_between_accounts(server: EmbeddedNats) -> None:
    a, b = await _connect(server, "acme"), await _connect(server, "beta")
    try:
        ja, jb = a.jetstream(), b.jetstream()
        await ja.add_stream(name="secret-acme", subjects=["ws.acme-dev.>"])
        kv_a = await ja.create_key_value(bucket="ws-acme-dev-state")
        await kv_a.put("Application/crm", b"acme-only")

        with pytest.raises(NotFoundError):
            await jb.stream_info("secret-acme")
        with pytest.raises(BucketNotFoundError):
            await jb.key_value("ws-acme-dev-state")
        assert "secret-acme" not in [s.config.name for s in await jb.streams_info()]
        # Same bucket name in B's account is a different bucket.
        kv_b = await jb.create_key_value(bucket="ws-acme-dev-state")
        await kv_b.put("Application/crm", b"beta-copy")
        assert (await kv_a.get("Application/crm")).value == b"acme-only"
    finally:
        await a.close()
        await b.close()


async def test_add_account_reloads_without_losing_data_or_connections(server: EmbeddedNats) -> None:
    pid = server.pid
    a = await _connect(server, "acme")
    try:
        kv = await a.jetstream().create_key_value(bucket="ws-acme-stg-state")
        await kv.put("Application/web", b"v1")

        began = time.perf_counter()
        user, password = server.add_account("gamma")
        print(f"\nadd_account + reload: {(time.perf_counter() - began) * 1000:.0f} ms")
        assert (user, password) == server.credentials("gamma")
        assert server.add_account("gamma") == (user, password)  # idempotent
        assert server.pid == pid  # reloaded, not restarted

        assert a.is_connected and a.stats["reconnects"] == 0
        assert (await kv.get("Application/web")).value == b"v1"

        g = await _connect(server, "gamma")
        try:
            gkv = await g.jetstream().create_key_value(bucket="ws-gamma-prod-state")
            await gkv.put("Application/api", b"ok")
            assert (await gkv.get("Application/api")).value == b"ok"
            with pytest.raises(BucketNotFoundError):
                await g.jetstream().key_value("ws-acme-stg-state")
        finally:
            await g.close()
    finally:
        await a.close()


async def test_restart_and_crash_keep_streams_and_kv(server: EmbeddedNats) -> None:
    url = server.url
    a = await _connect(server, "acme")
    js = a.jetstream()
    await js.add_stream(name="durable-acme", subjects=["ws.acme-uat.>"])
    for i in range(3):
        await js.publish(f"ws.acme-uat.git.c{i}", f"commit {i}".encode())
    kv = await js.create_key_value(bucket="ws-acme-uat-state")
    await kv.put("Application/web", b"Installing")
    await a.close()

    # Round 1: graceful restart. Round 2: SIGKILL (a crash) then start; it must still see the
    # value written after round 1.
    expected = b"Installing"
    for how, grace in (("restart", None), ("crash + restart", 0.0)):
        began = time.perf_counter()
        server.restart(grace=grace)
        print(f"\nnats {how}: {(time.perf_counter() - began) * 1000:.0f} ms")
        assert server.url == url
        a = await _connect(server, "acme")
        try:
            js = a.jetstream()
            info = await js.stream_info("durable-acme")
            assert info.state.messages == 3
            kv = await js.key_value("ws-acme-uat-state")
            assert (await kv.get("Application/web")).value == expected
            expected = b"Running"
            await kv.put("Application/web", expected)
        finally:
            await a.close()


def test_port_taken_raises_with_log_tail_and_leaves_nothing(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        srv = EmbeddedNats(tmp_path, ["acme"], port=taken, ready_timeout=10)
        with pytest.raises(ProcessStartError) as info:
            srv.start()
    message = str(info.value)
    assert "--- log tail ---" in message
    assert "address already in use" in message
    assert srv.process is not None and srv.process.last_pid is not None
    assert _pid_gone(srv.process.last_pid)
    assert srv.process not in live_processes()


def test_bad_config_raises_with_the_servers_complaint(tmp_path: Path) -> None:
    config = tmp_path / "bad.conf"
    config.write_text('listen: 127.0.0.1:0\naccounts { acme: { users: [ { user: "a" \n')
    binary = find_binary("nats-server", NATS_PACKAGE)
    proc = ManagedProcess("nats-bad", [binary, "-c", config], tmp_path, ready=lambda: False, ready_timeout=10)
    with pytest.raises(ProcessStartError) as info:
        proc.start()
    assert "exited with code" in str(info.value)
    assert "--- log tail ---" in str(info.value)
    assert "Parse error on line 3" in info.value.log_tail  # the server's own words
    assert not proc.running and proc.last_pid is not None and _pid_gone(proc.last_pid)


def test_stop_ends_the_process_and_frees_the_ports(tmp_path: Path) -> None:
    srv = EmbeddedNats(tmp_path, ["acme"])
    began = time.perf_counter()
    with srv:
        print(f"\nnats start: {(time.perf_counter() - began) * 1000:.0f} ms")
        pid, port, monitor = srv.pid, srv.port, srv.monitor_port
        assert pid is not None and not _pid_gone(pid)
        assert not _port_free(port) and not _port_free(monitor)
        began = time.perf_counter()
    print(f"nats stop: {(time.perf_counter() - began) * 1000:.0f} ms")
    assert _pid_gone(pid)
    assert _port_free(port) and _port_free(monitor)
    assert srv.stop() is None  # idempotent
    assert not srv.running
