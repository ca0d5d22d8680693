"""The wire details clients depend on, checked with plain HTTP (httpx): documents, headers, streams."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from catalyst_sim.backends.embedded.kube import Cluster, KubeEmulator
from catalyst_sim.clock import WallClock

from .conftest import emulator_threads


@pytest.fixture
def http(emulator: KubeEmulator, cluster: Cluster) -> Iterator[httpx.Client]:
    context = ssl.create_default_context(cadata=emulator.ca_pem.decode())
    with httpx.Client(
        base_url=cluster.server,
        verify=context,
        timeout=10,
        headers={"Authorization": f"Bearer {cluster.token}"},
    ) as client:
        yield client


def status(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert response.headers["content-type"] == "application/json"
    assert (body["kind"], body["apiVersion"], body["status"], body["code"]) == (
        "Status",
        "v1",
        "Failure",
        response.status_code,
    )
    return response.status_code, body["reason"]


def test_discovery_documents(http: httpx.Client) -> None:
    aggregated = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    api = http.get("/api", headers={"Accept": aggregated})
    assert api.headers["content-type"] == "application/json"  # not the aggregated type: clients fall back
    assert api.json()["kind"] == "APIVersions" and api.json()["versions"] == ["v1"]
    groups = http.get("/apis", headers={"Accept": aggregated}).json()
    assert groups["kind"] == "APIGroupList"
    apps = next(g for g in groups["groups"] if g["name"] == "apps")
    assert apps["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}
    core = http.get("/api/v1").json()
    assert core["groupVersion"] == "v1"
    pods = {r["name"]: r for r in core["resources"]}
    assert pods["pods"]["shortNames"] == ["po"] and pods["pods"]["categories"] == ["all"]
    assert set(pods["pods"]["verbs"]) >= {"create", "delete", "get", "list", "patch", "update", "watch"}
    assert pods["pods/status"]["verbs"] == ["get", "patch", "update"]
    scale = {r["name"]: r for r in http.get("/apis/apps/v1").json()["resources"]}["deployments/scale"]
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
    assert http.get("/apis/apps").json()["kind"] == "APIGroup"
    assert http.get("/version").json()["gitVersion"] == "v1.37.0"


def test_openapi_documents_declare_server_side_field_validation(http: httpx.Client, cluster: Cluster) -> None:
    root = http.get("/openapi/v3").json()["paths"]
    url = root["apis/apps/v1"]["serverRelativeURL"]
    assert url.startswith(f"/clusters/{cluster.name}/openapi/v3/apis/apps/v1?hash=")
    doc = http.get(url.split(f"/clusters/{cluster.name}", 1)[1]).json()
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "apps",
        "version": "v1",
        "kind": "Deployment",
    }
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]
    v2 = http.get("/openapi/v2", headers={"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
    assert v2.status_code == 200 and v2.content == b""  # an empty (valid) protobuf Document
    assert http.get("/openapi/v2").json()["swagger"] == "2.0"


def test_status_errors(emulator: KubeEmulator, http: httpx.Client, cluster: Cluster) -> None:
    assert status(http.get("/api/v1/namespaces/default/widgets")) == (404, "NotFound")
    assert status(http.get("/apis/nope.example.com/v1")) == (404, "NotFound")
    missing = http.get("/api/v1/namespaces/default/configmaps/nope")
    assert status(missing) == (404, "NotFound")
    assert missing.json()["details"] == {"name": "nope", "kind": "configmaps"}
    assert status(http.post("/api/v1/namespaces/default/configmaps/named", json={})) == (
        405,
        "MethodNotAllowed",
    )
    assert status(http.post("/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "BAD"}})) == (
        422,
        "Invalid",
    )
    protobuf = http.post(
        "/api/v1/namespaces/default/events",
        content=b"k8s\x00\n\x0b\n\x02v1\x12\x05Event",
        headers={"Content-Type": "application/vnd.kubernetes.protobuf"},
    )
    assert status(protobuf) == (415, "UnsupportedMediaType")
    assert status(
        http.patch("/api/v1/namespaces/default/configmaps/x", content=b"{}", headers={"Content-Type": "text/plain"})
    ) == (415, "UnsupportedMediaType")
    assert status(http.get("/api/v1/pods", params={"labelSelector": "a in (b"})) == (400, "BadRequest")
    wrong = http.get("/api/v1/namespaces", headers={"Authorization": "Bearer nope"})
    assert status(wrong) == (401, "Unauthorized")
    anonymous = httpx.get(
        f"{cluster.server}/version", verify=ssl.create_default_context(cadata=emulator.ca_pem.decode())
    )
    assert anonymous.status_code == 200
    denied = httpx.get(
        f"{cluster.server}/api/v1/namespaces",
        verify=ssl.create_default_context(cadata=emulator.ca_pem.decode()),
    )
    assert status(denied) == (403, "Forbidden")
    other = httpx.get(
        f"{emulator.url}/clusters/no-such-cluster/api",
        verify=ssl.create_default_context(cadata=emulator.ca_pem.decode()),
    )
    assert status(other) == (404, "NotFound")


def test_yaml_bodies_dry_run_scale_and_delete_collection(http: httpx.Client) -> None:
    created = http.post(
        "/api/v1/namespaces/default/configmaps",
        content=b"metadata: {name: y, labels: {a: b}}\n",
        headers={"Content-Type": "application/yaml"},
    )
    assert created.status_code == 201 and created.json()["metadata"]["name"] == "y"
    dry = http.post(
        "/api/v1/namespaces/default/configmaps", params={"dryRun": "All"}, json={"metadata": {"name": "dry"}}
    )
    assert dry.status_code == 201 and http.get("/api/v1/namespaces/default/configmaps/dry").status_code == 404
    deployment = {
        "metadata": {"name": "d"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"a": "d"}},
            "template": {
                "metadata": {"labels": {"a": "d"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
        },
    }
    assert http.post("/apis/apps/v1/namespaces/default/deployments", json=deployment).status_code == 201
    scale = http.get("/apis/apps/v1/namespaces/default/deployments/d/scale").json()
    assert scale["kind"] == "Scale" and scale["spec"] == {"replicas": 1} and scale["status"]["selector"] == "a=d"
    stale = dict(scale, spec={"replicas": 5}, metadata=dict(scale["metadata"], resourceVersion="1"))
    assert status(http.put("/apis/apps/v1/namespaces/default/deployments/d/scale", json=stale)) == (
        409,
        "Conflict",
    )
    scale["spec"] = {"replicas": 4}
    assert http.put("/apis/apps/v1/namespaces/default/deployments/d/scale", json=scale).json()["spec"] == {
        "replicas": 4
    }
    deleted = http.request("DELETE", "/api/v1/namespaces/default/configmaps", params={"labelSelector": "a=b"})
    assert deleted.json()["kind"] == "ConfigMapList" and [i["metadata"]["name"] for i in deleted.json()["items"]] == [
        "y"
    ]


def test_tables_for_kubectl_get(http: httpx.Client) -> None:
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    table = http.get("/api/v1/namespaces", headers={"Accept": accept}).json()
    assert table["kind"] == "Table" and [c["name"] for c in table["columnDefinitions"]] == [
        "Name",
        "Status",
        "Age",
    ]
    assert table["rows"][0]["cells"][:2] == ["default", "Active"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    one = http.get("/api/v1/namespaces/default", headers={"Accept": accept}, params={"includeObject": "Object"})
    assert one.json()["rows"][0]["object"]["kind"] == "Namespace"


def read_events(response: httpx.Response, count: int) -> list[dict[str, Any]]:
    events = []
    for line in response.iter_lines():
        if line:
            events.append(json.loads(line))
        if len(events) == count:
            break
    return events


def test_watch_stream_bookmarks_initial_events_and_expiry(http: httpx.Client, emulator: KubeEmulator) -> None:
    http.post("/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "w"}})
    params = {
        "watch": "1",
        "allowWatchBookmarks": "true",
        "sendInitialEvents": "true",
        "resourceVersionMatch": "NotOlderThan",
        "timeoutSeconds": "5",
    }
    with http.stream("GET", "/api/v1/namespaces/default/configmaps", params=params) as response:
        assert response.headers["content-type"] == "application/json"
        added, end, bookmark = read_events(response, 3)
    assert (added["type"], added["object"]["metadata"]["name"]) == ("ADDED", "w")
    assert end["type"] == "BOOKMARK"
    assert end["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert bookmark["type"] == "BOOKMARK" and int(bookmark["object"]["metadata"]["resourceVersion"]) >= int(
        added["object"]["metadata"]["resourceVersion"]
    )
    with http.stream(
        "GET", "/api/v1/namespaces/default/configmaps", params={"watch": "true", "resourceVersion": "1"}
    ) as response:
        ok = read_events(response, 1)  # still inside the history window: replayed
    assert ok[0]["type"] in ("ADDED", "MODIFIED")


def test_a_watch_from_before_the_window_gets_an_error_event(emulator: KubeEmulator) -> None:
    small = emulator.add_cluster("tiny-window", history_window=5)
    try:
        context = ssl.create_default_context(cadata=emulator.ca_pem.decode())
        with httpx.Client(
            base_url=small.server, verify=context, headers={"Authorization": f"Bearer {small.token}"}
        ) as client:
            for i in range(10):
                client.post("/api/v1/namespaces/default/configmaps", json={"metadata": {"name": f"c{i}"}})
            with client.stream(
                "GET", "/api/v1/namespaces/default/configmaps", params={"watch": "1", "resourceVersion": "2"}
            ) as response:
                assert response.status_code == 200
                [event] = read_events(response, 1)
        assert event["type"] == "ERROR"
        assert (event["object"]["code"], event["object"]["reason"]) == (410, "Expired")
        assert event["object"]["message"].startswith("too old resource version: 2")
    finally:
        emulator.remove_cluster("tiny-window")


def test_watch_ends_at_timeout_and_on_shutdown() -> None:
    before = len(emulator_threads())
    with KubeEmulator(WallClock()) as kube:
        cluster = kube.add_cluster("stream")
        context = ssl.create_default_context(cadata=kube.ca_pem.decode())
        client = httpx.Client(
            base_url=cluster.server, verify=context, headers={"Authorization": f"Bearer {cluster.token}"}
        )
        with client.stream("GET", "/api/v1/namespaces", params={"watch": "1", "timeoutSeconds": "1"}) as response:
            assert len([line for line in response.iter_lines() if line]) == 4  # the default namespaces
        ended = threading.Event()

        def hang_on() -> None:
            with client.stream("GET", "/api/v1/configmaps", params={"watch": "1"}) as response:
                for _ in response.iter_lines():
                    pass
            ended.set()

        thread = threading.Thread(target=hang_on, daemon=True)
        thread.start()
        port = int(kube.url.rsplit(":", 1)[1])
        while cluster.open_watches() == 0:
            threading.Event().wait(0.01)
    assert ended.wait(5), "an open watch must end when the emulator stops"
    thread.join(5)
    client.close()
    assert len(emulator_threads()) == before
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
