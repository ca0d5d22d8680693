"""The OCI distribution API emulator over HTTP: what a registry client sees, and Harbor proxy-cache."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import httpx
import pytest

from catalyst_sim.backends.embedded.mothership.oci import Registry
from catalyst_sim.backends.embedded.mothership.registry_api import create_app
from catalyst_sim.serving import ServerThread


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def upstream() -> Iterator[tuple[Registry, str]]:
    registry = Registry("ghcr.io")
    with ServerThread(create_app({"ghcr.io": registry}, default="ghcr.io"), "test-registry") as server:
        yield registry, server.url


def push(client: httpx.Client, name: str, tag: str, layer: bytes) -> str:
    config = b'{"os": "linux"}'
    for blob in (config, layer):
        started = client.post(f"/v2/{name}/blobs/uploads/")
        assert started.status_code == 202 and "Location" in started.headers
        done = client.put(started.headers["Location"], params={"digest": sha(blob)}, content=blob)
        assert done.status_code == 201 and done.headers["Docker-Content-Digest"] == sha(blob)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config),
                                      "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                       "digest": sha(layer), "size": len(layer)}]}).encode()
    put = client.put(f"/v2/{name}/manifests/{tag}", content=manifest,
                     headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert put.status_code == 201
    return put.headers["Docker-Content-Digest"]


def test_push_pull_tags_and_errors(upstream: tuple[Registry, str]) -> None:
    _, url = upstream
    with httpx.Client(base_url=url) as client:
        base = client.get("/v2/")
        assert base.status_code == 200 and base.headers["Docker-Distribution-API-Version"] == "registry/2.0"
        digest = push(client, "openova-io/openova/catalyst-api", "1.4.0", b"layer bytes")
        got = client.get("/v2/openova-io/openova/catalyst-api/manifests/1.4.0")
        assert got.status_code == 200 and sha(got.content) == digest == got.headers["Docker-Content-Digest"]
        assert client.head(f"/v2/openova-io/openova/catalyst-api/manifests/{digest}").status_code == 200
        assert client.get(f"/v2/openova-io/openova/catalyst-api/blobs/{sha(b'layer bytes')}").content == b"layer bytes"
        assert client.get("/v2/openova-io/openova/catalyst-api/tags/list").json() == {
            "name": "openova-io/openova/catalyst-api", "tags": ["1.4.0"]}
        missing = client.get("/v2/openova-io/openova/catalyst-api/manifests/9.9.9")
        assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
        assert client.get("/v2/nope/tags/list").json()["errors"][0]["code"] == "NAME_UNKNOWN"
        bad = client.post("/v2/x/blobs/uploads/", params={"digest": sha(b"other")}, content=b"data")
        assert bad.status_code == 400 and bad.json()["errors"][0]["code"] == "DIGEST_INVALID"
        unknown_blob = client.put("/v2/x/manifests/1", content=json.dumps(
            {"schemaVersion": 2, "config": {"digest": sha(b"never pushed")}, "layers": []}))
        assert unknown_blob.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"


def test_harbor_proxy_cache_fetches_once_and_never_caches_garbage(upstream: tuple[Registry, str]) -> None:
    source, url = upstream
    source.push_artifact("fluxcd/source-controller", "v1", config=b"{}", layers=[b"rootfs"])

    def fetch(target: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        response = httpx.get(target.replace("https://ghcr.io", url), headers=headers)
        return response.status_code, dict(response.headers), response.content

    harbor = Registry("harbor.sov", harbor=True, fetch=fetch)
    with ServerThread(create_app({"harbor.sov": harbor}, default="harbor.sov"), "test-harbor") as server, \
            httpx.Client(base_url=server.url) as client:
        assert client.post("/api/v2.0/registries", json={"name": "ghcr", "type": "github-ghcr",
                                                         "url": "https://ghcr.io"}).status_code == 201
        registry_id = client.get("/api/v2.0/registries", params={"name": "ghcr"}).json()[0]["id"]
        assert client.post("/api/v2.0/projects", json={"project_name": "proxy-ghcr",
                                                       "registry_id": registry_id}).status_code == 201
        assert client.post("/api/v2.0/projects", json={"project_name": "proxy-ghcr"}).status_code == 409
        source.corrupt = True
        garbage = client.get("/v2/proxy-ghcr/fluxcd/source-controller/manifests/v1")
        assert garbage.status_code == 502 and "does not match its digest" in garbage.json()["errors"][0]["message"]
        assert client.get("/v2/proxy-ghcr/fluxcd/source-controller/tags/list").status_code == 404  # nothing cached
        source.corrupt = False
        assert client.get("/v2/proxy-ghcr/fluxcd/source-controller/manifests/v1").status_code == 200
        pulls = len(source.pulls)
        assert client.get("/v2/proxy-ghcr/fluxcd/source-controller/manifests/v1").status_code == 200
        assert len(source.pulls) == pulls  # the second pull is served from the cache
        assert client.get("/v2/proxy-ghcr/fluxcd/source-controller/tags/list").json()["tags"] == ["v1"]
