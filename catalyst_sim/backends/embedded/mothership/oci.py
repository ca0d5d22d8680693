"""An OCI distribution registry's state, apart from HTTP (moto-style), with Harbor's proxy-cache projects.

``docker-registry`` (Debian's distribution server) is not installed on this machine, so registries
are emulated: repositories of content-addressed manifests and blobs, tags, and the error codes of
the OCI distribution spec. A :class:`Registry` can also act like a Harbor: *projects*, some of
them proxy-cache projects bound to an upstream registry endpoint, where a miss on
``<project>/<path>`` is fetched from ``<upstream>/<path>`` over the network, verified against its
digest and only then cached (a garbage answer is never cached).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
MANIFEST_TYPES = (OCI_MANIFEST, "application/vnd.docker.distribution.manifest.v2+json")


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class OciError(Exception):
    """An error as the distribution spec reports it: ``{"errors": [{code, message, detail}]}``."""

    def __init__(self, code: str, message: str, status: int, detail: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.status, self.detail = code, message, status, detail

    def to_json(self) -> dict[str, Any]:
        return {"errors": [{"code": self.code, "message": self.message, "detail": self.detail}]}


def name_unknown(name: str) -> OciError:
    return OciError("NAME_UNKNOWN", "repository name not known to registry", 404, {"name": name})


def manifest_unknown(name: str, reference: str) -> OciError:
    return OciError("MANIFEST_UNKNOWN", "manifest unknown", 404, {"name": name, "reference": reference})


def blob_unknown(digest: str) -> OciError:
    return OciError("BLOB_UNKNOWN", "blob unknown to registry", 404, {"digest": digest})


@dataclass
class Manifest:
    media_type: str
    body: bytes

    @property
    def digest(self) -> str:
        return digest_of(self.body)

    def blob_digests(self) -> list[str]:
        document = json.loads(self.body)
        return [d["digest"] for d in [document.get("config", {}), *document.get("layers", [])] if d.get("digest")]


@dataclass
class Repository:
    manifests: dict[str, Manifest] = field(default_factory=dict)  # digest -> manifest
    tags: dict[str, str] = field(default_factory=dict)  # tag -> digest


@dataclass
class Endpoint:
    """A Harbor registry endpoint (``/api/v2.0/registries``): where a proxy-cache project pulls from."""

    id: int
    name: str
    type: str
    url: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "type": self.type, "url": self.url, "insecure": False,
                "status": "healthy"}


@dataclass
class Project:
    id: int
    name: str
    public: bool = True
    registry_id: int | None = None  # set: a proxy-cache project

    def to_json(self) -> dict[str, Any]:
        return {"project_id": self.id, "name": self.name, "registry_id": self.registry_id,
                "metadata": {"public": str(self.public).lower()}}


# Fetches (status, headers, body) for a URL on the simulated network; raises OSError-like errors when
# the network refuses (a disabled Toxiproxy proxy, a reset connection).
Fetch = Callable[[str, dict[str, str]], tuple[int, dict[str, str], bytes]]


class UpstreamError(Exception):
    """A proxy-cache project could not get content from its upstream: the reason, for the pull error."""


class Registry:
    """One registry host (``ghcr.io``, ``harbor.openova.io``, the Sovereign's Harbor ...)."""

    def __init__(self, host: str, *, harbor: bool = False, fetch: Fetch | None = None) -> None:
        self.host = host
        self.harbor = harbor
        self.fetch = fetch
        self.repositories: dict[str, Repository] = {}
        self.blobs: dict[str, bytes] = {}
        self.projects: dict[str, Project] = {}
        self.endpoints: dict[int, Endpoint] = {}
        self.uploads: dict[str, bytearray] = {}
        self.corrupt = False  # serve garbage instead of blob bytes (a fault for bad-input scenarios)
        self.pulls: list[tuple[str, str]] = []  # (repository, reference) of every manifest served
        self._lock = threading.RLock()
        self._ids = 0

    # -- content ---------------------------------------------------------------------------------
    def put_blob(self, data: bytes) -> str:
        digest = digest_of(data)
        with self._lock:
            self.blobs[digest] = bytes(data)
        return digest

    def put_manifest(self, name: str, reference: str, media_type: str, body: bytes) -> str:
        manifest = Manifest(media_type, body)
        try:
            document = json.loads(body)
        except ValueError:
            raise OciError("MANIFEST_INVALID", "manifest invalid", 400, {"reason": "not JSON"}) from None
        if not isinstance(document, dict) or document.get("schemaVersion") != 2:
            raise OciError("MANIFEST_INVALID", "manifest invalid", 400, {"reason": "schemaVersion must be 2"})
        with self._lock:
            missing = [d for d in manifest.blob_digests() if d not in self.blobs]
            if missing:
                raise OciError("MANIFEST_BLOB_UNKNOWN", "blob unknown to registry", 400, {"digest": missing[0]})
            repo = self.repositories.setdefault(name, Repository())
            repo.manifests[manifest.digest] = manifest
            if not reference.startswith("sha256:"):
                repo.tags[reference] = manifest.digest
            elif reference != manifest.digest:
                raise OciError("DIGEST_INVALID", "provided digest did not match uploaded content", 400,
                               {"reference": reference, "digest": manifest.digest})
        return manifest.digest

    def push_artifact(self, name: str, tag: str, *, config: bytes, layers: list[bytes],
                      config_type: str = OCI_CONFIG, layer_type: str = OCI_LAYER) -> str:
        """Store an image (or Helm chart) as the client pushes it: blobs first, then the manifest."""
        document = {
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": config_type, "digest": self.put_blob(config), "size": len(config)},
            "layers": [{"mediaType": layer_type, "digest": self.put_blob(layer), "size": len(layer)}
                       for layer in layers],
        }
        return self.put_manifest(name, tag, OCI_MANIFEST, json.dumps(document, sort_keys=True).encode())

    def manifest(self, name: str, reference: str) -> Manifest:
        with self._lock:
            found = self._local_manifest(name, reference)
        if found is None:
            found = self._proxy_manifest(name, reference)
        with self._lock:
            self.pulls.append((name, reference))
        return found

    def _local_manifest(self, name: str, reference: str) -> Manifest | None:
        repo = self.repositories.get(name)
        if repo is None:
            return None
        digest = reference if reference.startswith("sha256:") else repo.tags.get(reference)
        return repo.manifests.get(digest or "")

    def blob(self, name: str, digest: str) -> bytes:
        with self._lock:
            data = self.blobs.get(digest)
            known = name in self.repositories or self._proxy_project(name) is not None
        if data is None or not known:
            if data is None and self._proxy_project(name) is not None:
                return self._proxy_blob(name, digest)
            raise blob_unknown(digest)
        return b"garbage, not the blob you asked for" if self.corrupt else data

    def tags(self, name: str) -> list[str]:
        with self._lock:
            repo = self.repositories.get(name)
            if repo is None:
                raise name_unknown(name)
            return sorted(repo.tags)

    def catalog(self) -> list[str]:
        with self._lock:
            return sorted(self.repositories)

    def has_image(self, name: str, reference: str) -> bool:
        """Cached here with every blob (what ``harbor-prewarm`` checks), without pulling upstream."""
        with self._lock:
            found = self._local_manifest(name, reference)
            return found is not None and all(d in self.blobs for d in found.blob_digests())

    # -- uploads (monolithic and chunked) ----------------------------------------------------------
    def start_upload(self, upload_id: str) -> None:
        with self._lock:
            self.uploads[upload_id] = bytearray()

    def append_upload(self, upload_id: str, chunk: bytes) -> int:
        with self._lock:
            if upload_id not in self.uploads:
                raise OciError("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", 404, {"uuid": upload_id})
            self.uploads[upload_id] += chunk
            return len(self.uploads[upload_id])

    def finish_upload(self, upload_id: str, digest: str, chunk: bytes = b"") -> str:
        with self._lock:
            data = bytes(self.uploads.pop(upload_id, b"")) + chunk
        if digest_of(data) != digest:
            raise OciError("DIGEST_INVALID", "provided digest did not match uploaded content", 400,
                           {"digest": digest})
        return self.put_blob(data)

    # -- Harbor projects and proxy cache -----------------------------------------------------------
    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def create_endpoint(self, name: str, type_: str, url: str) -> Endpoint:
        with self._lock:
            if any(e.name == name for e in self.endpoints.values()):
                raise OciError("CONFLICT", f"registry {name} already exists", 409)
            endpoint = Endpoint(self._next_id(), name, type_, url)
            self.endpoints[endpoint.id] = endpoint
            return endpoint

    def create_project(self, name: str, *, public: bool = True, registry_id: int | None = None) -> Project:
        with self._lock:
            if name in self.projects:
                raise OciError("CONFLICT", f"The project named {name} already exists", 409)
            if registry_id is not None and registry_id not in self.endpoints:
                raise OciError("BAD_REQUEST", f"registry {registry_id} not found", 400)
            project = Project(self._next_id(), name, public, registry_id)
            self.projects[name] = project
            return project

    def _proxy_project(self, name: str) -> tuple[Project, Endpoint, str] | None:
        project_name, _, rest = name.partition("/")
        project = self.projects.get(project_name)
        if project is None or project.registry_id is None or not rest:
            return None
        return project, self.endpoints[project.registry_id], rest

    def _upstream(self, url: str, accept: str) -> bytes:
        if self.fetch is None:
            raise UpstreamError(f"{self.host} has no network to reach {url}")
        try:
            status, _, body = self.fetch(url, {"Accept": accept})
        except Exception as exc:  # refused, reset, timed out: the reason goes into the pull error
            raise UpstreamError(f"{url}: {exc}") from exc
        if status != 200:
            raise UpstreamError(f"{url}: upstream answered {status}")
        return body

    def _proxy_manifest(self, name: str, reference: str) -> Manifest:
        bound = self._proxy_project(name)
        if bound is None:
            raise manifest_unknown(name, reference) if name in self.repositories else name_unknown(name)
        _, endpoint, rest = bound
        base = endpoint.url.rstrip("/")
        try:
            body = self._upstream(f"{base}/v2/{rest}/manifests/{reference}", ", ".join(MANIFEST_TYPES))
            manifest = Manifest(json.loads(body).get("mediaType", OCI_MANIFEST), body)
            if reference.startswith("sha256:") and manifest.digest != reference:
                raise UpstreamError(f"manifest from {base} does not match digest {reference}")
            blobs = {d: self._upstream(f"{base}/v2/{rest}/blobs/{d}", "*/*") for d in manifest.blob_digests()}
        except (ValueError, AttributeError) as exc:
            raise OciError("MANIFEST_INVALID", f"upstream {base} sent an invalid manifest: {exc}", 502) from exc
        except UpstreamError as exc:
            raise OciError("UNKNOWN", f"proxy-cache fetch failed: {exc}", 502, {"name": name}) from exc
        bad = [d for d, data in blobs.items() if digest_of(data) != d]
        if bad:  # garbage is never cached: the next pull tries upstream again
            raise OciError("DIGEST_INVALID", f"blob {bad[0]} from {base} does not match its digest", 502,
                           {"name": name})
        with self._lock:
            for data in blobs.values():
                self.put_blob(data)
            repo = self.repositories.setdefault(name, Repository())
            repo.manifests[manifest.digest] = manifest
            if not reference.startswith("sha256:"):
                repo.tags[reference] = manifest.digest
        return manifest

    def _proxy_blob(self, name: str, digest: str) -> bytes:
        bound = self._proxy_project(name)
        assert bound is not None
        _, endpoint, rest = bound
        try:
            data = self._upstream(f"{endpoint.url.rstrip('/')}/v2/{rest}/blobs/{digest}", "*/*")
        except UpstreamError as exc:
            raise OciError("UNKNOWN", f"proxy-cache fetch failed: {exc}", 502, {"digest": digest}) from exc
        if digest_of(data) != digest:
            raise OciError("DIGEST_INVALID", f"blob {digest} from {endpoint.url} does not match its digest", 502)
        self.put_blob(data)
        return data

    # -- reset -----------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"repositories": {n: Repository(dict(r.manifests), dict(r.tags))
                                     for n, r in self.repositories.items()},
                    "blobs": dict(self.blobs), "projects": dict(self.projects), "endpoints": dict(self.endpoints),
                    "ids": self._ids}

    def restore(self, snap: dict[str, Any]) -> None:
        with self._lock:
            self.repositories = {n: Repository(dict(r.manifests), dict(r.tags))
                                 for n, r in snap["repositories"].items()}
            self.blobs = dict(snap["blobs"])
            self.projects = dict(snap["projects"])
            self.endpoints = dict(snap["endpoints"])
            self._ids = snap["ids"]
            self.uploads.clear()
            self.pulls.clear()
            self.corrupt = False
