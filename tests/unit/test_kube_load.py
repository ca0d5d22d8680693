"""The ``bench kube`` load generator speaks raw HTTP: it must create what it says and report failures.

Its speed is the benchmark's business; here it is checked for honesty against a real emulator:
every create it counts exists afterwards, a conflict or a wrong token is reported, never counted.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from catalyst_sim.backends.embedded.kube import KubeEmulator
from catalyst_sim.bench import kube_load
from catalyst_sim.clock import WallClock

Target = tuple[str, str, Path, httpx.Client]  # server URL, token, CA file, an admin client


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with KubeEmulator(WallClock()) as kube:
        target = kube.add_cluster("load")
        ca = tmp_path_factory.mktemp("load") / "ca.pem"
        ca.write_bytes(kube.ca_pem)
        context = ssl.create_default_context(cadata=kube.ca_pem.decode())
        with httpx.Client(base_url=target.server, verify=context,
                          headers={"Authorization": f"Bearer {target.token}"}) as http:
            http.post("/api/v1/namespaces", json={"metadata": {"name": "load"}}).raise_for_status()
            yield target.server, target.token, ca, http


def load(
    monkeypatch: pytest.MonkeyPatch, token: str, server: str, ca: Path, count: int, prefix: str
) -> dict[str, object]:
    monkeypatch.setitem(os.environ, kube_load.TOKEN_ENV, token)
    return kube_load.run(server, str(ca), "load", count, 3, prefix)


def test_every_counted_create_exists_with_its_data(cluster: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    server, token, ca, http = cluster
    result = load(monkeypatch, token, server, ca, 25, "made")
    assert result["errors"] == [] and result["count"] == 25 and result["connections"] == 3
    items = http.get("/api/v1/namespaces/load/configmaps").json()["items"]
    made = {item["metadata"]["name"]: item["data"]["index"] for item in items
            if item["metadata"]["name"].startswith("made-")}
    assert made == {f"made-{i:06d}": str(i) for i in range(25)}
    assert result["window"] == 12 and result["first_window_per_s"] > 0 and result["last_window_per_s"] > 0


def test_a_conflict_is_an_error_not_a_create(cluster: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    server, token, ca, _ = cluster
    load(monkeypatch, token, server, ca, 3, "twice")
    result = load(monkeypatch, token, server, ca, 3, "twice")
    assert result["count"] == 0
    assert result["errors"] and all("HTTP 409" in error and "AlreadyExists" in error for error in result["errors"])


def test_a_wrong_token_fails_before_the_clock_starts(cluster: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    server, _, ca, _ = cluster
    with pytest.raises(ConnectionError, match="HTTP 401"):
        load(monkeypatch, "not-the-token", server, ca, 1, "denied")


def test_only_an_https_server_with_a_port_is_accepted(cluster: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    _, token, ca, _ = cluster
    with pytest.raises(ValueError, match="https URL"):
        load(monkeypatch, token, "http://127.0.0.1/clusters/load", ca, 1, "plain")
