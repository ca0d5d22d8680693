"""Contract tests: the embedded backend's real OpenBao, driven by hvac and the real ``bao`` CLI.

What the rest of the suite relies on (R-SEC-01, R-NAME-18, R-MR-05): secrets under
``org/{org}/env/{env_type}/`` in KV v2, an Organization's token confined to its own subtree by
OpenBao itself (403), one independent server per region, a raft server whose data survives a
restart, and a start/stop that never leaves a process or a port behind.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import hvac
import hvac.exceptions
import pytest
import requests

from catalyst_sim.backends.embedded.openbao import (
    ORG_MOUNT,
    EmbeddedOpenBao,
    kv2_location,
    org_policy_name,
    org_secret_path,
)
from catalyst_sim.backends.embedded.process import ProcessStartError, live_processes


def _ms(since: float) -> str:
    return f"{(time.perf_counter() - since) * 1000:.0f} ms"


@pytest.fixture(scope="module")
def bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedOpenBao]:
    srv = EmbeddedOpenBao(tmp_path_factory.mktemp("bao-run"), "dev", name="fsn")
    began = time.perf_counter()
    srv.start()
    print(f"\nbao {srv.version} dev started in {_ms(began)} at {srv.url}")
    srv.enable_kv2(ORG_MOUNT)
    try:
        yield srv
    finally:
        srv.stop()


def _write(client: hvac.Client, org: str, env: str, key: str, data: dict[str, str]) -> None:
    mount, path = org_secret_path(org, env, key)
    client.secrets.kv.v2.create_or_update_secret(path=path, mount_point=mount, secret=data)


def _read(client: hvac.Client, org: str, env: str, key: str) -> dict[str, str]:
    mount, path = org_secret_path(org, env, key)
    resp = client.secrets.kv.v2.read_secret_version(
        path=path, mount_point=mount, raise_on_deleted_version=True
    )
    data: dict[str, str] = resp["data"]["data"]
    return data


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_dev_server_is_unsealed_with_our_root_token(bao: EmbeddedOpenBao) -> None:
    client = bao.client()
    assert client.is_authenticated()
    assert not client.sys.is_sealed()
    assert bao.version.count(".") == 2
    assert bao.token.startswith("dev-root-")
    bao.enable_kv2(ORG_MOUNT)  # idempotent


def test_kv2_write_read_under_the_spec_path(bao: EmbeddedOpenBao) -> None:
    client = bao.client()
    _write(client, "acme", "prod", "postgres", {"password": "s3cret"})
    assert _read(client, "acme", "prod", "postgres") == {"password": "s3cret"}
    assert org_secret_path("acme", "prod", "postgres") == ("org", "acme/env/prod/postgres")
    # A full spec path (as naming.openbao_path builds it) splits the way ESO splits it.
    mount, path = kv2_location("org/acme/env/prod/postgres")
    assert client.secrets.kv.v2.read_secret_version(
        path=path, mount_point=mount, raise_on_deleted_version=True
    )["data"]["data"] == {"password": "s3cret"}
    with pytest.raises(ValueError):
        kv2_location("secret/acme/env/prod/postgres")

    # The real CLI sees exactly the R-NAME-18 path: org/acme/env/prod/postgres.
    env = {**os.environ, "BAO_ADDR": bao.url, "BAO_TOKEN": bao.token, "HOME": str(bao.home)}
    out = subprocess.run(
        [str(bao.binary), "kv", "get", "-format=json", "org/acme/env/prod/postgres"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=30,
    )
    assert json.loads(out.stdout)["data"]["data"] == {"password": "s3cret"}


def test_org_token_is_refused_on_another_orgs_path(bao: EmbeddedOpenBao) -> None:
    root = bao.client()
    _write(root, "acme", "prod", "db", {"password": "acme-pw"})
    _write(root, "beta", "prod", "db", {"password": "beta-pw"})

    acme = bao.client(bao.create_org_token("acme"))
    assert _read(acme, "acme", "prod", "db") == {"password": "acme-pw"}
    mount, beta_path = org_secret_path("beta", "prod", "db")
    with pytest.raises(hvac.exceptions.Forbidden):  # 403 from OpenBao itself
        acme.secrets.kv.v2.read_secret_version(
            path=beta_path, mount_point=mount, raise_on_deleted_version=True
        )
    with pytest.raises(hvac.exceptions.Forbidden):  # cannot even list who else has secrets
        acme.secrets.kv.v2.list_secrets(path="", mount_point=mount)
    with pytest.raises(hvac.exceptions.Forbidden):  # read-only token: no writes, own path included
        _write(acme, "acme", "prod", "db", {"password": "changed"})
    assert "db" in acme.secrets.kv.v2.list_secrets(path="acme/env/prod", mount_point=mount)["data"]["keys"]

    # The raw HTTP status, without hvac's exception mapping.
    session = requests.Session()
    session.trust_env = False
    beta_token = bao.create_org_token("beta")
    for path, status in (("beta/env/prod/db", 200), ("acme/env/prod/db", 403)):
        resp = session.get(f"{bao.url}/v1/{mount}/data/{path}", headers={"X-Vault-Token": beta_token})
        assert resp.status_code == status, resp.text

    writer = bao.client(bao.create_org_token("acme", writable=True))
    _write(writer, "acme", "prod", "db", {"password": "rotated"})
    assert _read(acme, "acme", "prod", "db") == {"password": "rotated"}
    with pytest.raises(hvac.exceptions.Forbidden):
        _write(writer, "beta", "prod", "db", {"password": "hijack"})
    assert _read(root, "beta", "prod", "db") == {"password": "beta-pw"}
    policies = root.sys.list_policies()["data"]["policies"]
    assert {org_policy_name("acme"), org_policy_name("acme", True), org_policy_name("beta")} <= set(policies)


def test_two_regions_run_side_by_side_independently(bao: EmbeddedOpenBao, tmp_path: Path) -> None:
    began = time.perf_counter()
    with EmbeddedOpenBao(tmp_path, "dev", name="hel") as other:
        print(f"\nsecond bao dev started in {_ms(began)} at {other.url}")
        assert other.port not in (bao.port, bao.cluster_port)
        assert other.cluster_port not in (bao.port, bao.cluster_port)
        other.enable_kv2()
        _write(other.client(), "acme", "prod", "region", {"name": "hel"})
        _write(bao.client(), "acme", "prod", "region", {"name": "fsn"})
        assert _read(other.client(), "acme", "prod", "region") == {"name": "hel"}
        assert _read(bao.client(), "acme", "prod", "region") == {"name": "fsn"}
        pid = other.pid
    assert pid is not None and _pid_gone(pid)


def test_raft_init_unseal_restart_keeps_data(tmp_path: Path) -> None:
    srv = EmbeddedOpenBao(tmp_path, "raft", name="rtz")
    began = time.perf_counter()
    srv.start()
    try:
        t = {k: f"{v * 1000:.0f} ms" for k, v in srv.timings.items()}
        print(
            f"\nbao raft first start {_ms(began)} (process {t['process_ready']}, init {t['init']}, "
            f"unseal+active {t['unseal_active']})"
        )
        assert (srv.home / "init.json").stat().st_mode & 0o077 == 0
        srv.enable_kv2()
        _write(srv.client(), "acme", "prod", "db", {"password": "durable"})
        token = srv.create_org_token("acme")

        began = time.perf_counter()
        srv.restart()  # graceful: SIGTERM, OpenBao seals and exits
        print(f"bao raft restart {_ms(began)} (start part {srv.timings['start'] * 1000:.0f} ms)")
        assert _read(srv.client(), "acme", "prod", "db") == {"password": "durable"}
        assert _read(srv.client(token), "acme", "prod", "db") == {"password": "durable"}  # tokens persist
        _write(srv.client(), "acme", "prod", "db", {"password": "written-before-crash"})
        port = srv.port
    finally:
        srv.kill()  # a crash: SIGKILL, no seal

    # A new instance over the same run directory (a new harness process) re-unseals, no re-init,
    # and sees what was written right before the crash.
    again = EmbeddedOpenBao(tmp_path, "raft", name="rtz", port=port)
    began = time.perf_counter()
    again.start()
    try:
        print(f"bao raft reopen after crash {_ms(began)}")
        assert "init" not in again.timings
        assert again.token == srv.token
        assert _read(again.client(), "acme", "prod", "db") == {"password": "written-before-crash"}
    finally:
        again.stop(grace=0)


def test_port_taken_raises_with_log_tail_and_leaves_nothing(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        srv = EmbeddedOpenBao(tmp_path, "dev", name="busy", port=taken, ready_timeout=20)
        with pytest.raises(ProcessStartError) as info:
            srv.start()
    assert "--- log tail ---" in str(info.value)
    assert "address already in use" in info.value.log_tail
    proc = srv.process
    assert proc is not None and proc.last_pid is not None and _pid_gone(proc.last_pid)
    assert proc not in live_processes()


def test_stop_ends_the_process_and_frees_the_ports(tmp_path: Path) -> None:
    srv = EmbeddedOpenBao(tmp_path, "dev", name="stop")
    srv.start()
    pid, port, cluster = srv.pid, srv.port, srv.cluster_port
    assert pid is not None and not _port_free(port)
    began = time.perf_counter()
    srv.stop(grace=5.0)  # graceful here, to prove SIGTERM alone ends it
    print(f"\nbao dev stop (graceful) {_ms(began)}")
    assert _pid_gone(pid)
    assert _port_free(port) and _port_free(cluster)
    assert srv.stop() is None  # idempotent
