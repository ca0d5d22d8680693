"""The OCI distribution API (and Harbor's project API subset) over :class:`~.oci.Registry` models.

One server may host several registry hosts; the ``Host`` header picks one, the way a name-based
virtual host does (``ghcr.io`` and ``harbor.openova.io`` share the mothership's server, each
behind its own Toxiproxy proxy). Paths, status codes, headers and error bodies follow the
distribution spec: ``/v2/`` answers 200 with ``Docker-Distribution-API-Version``; manifests and
blobs carry ``Docker-Content-Digest``; errors are ``{"errors": [...]}``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .oci import OCI_MANIFEST, OciError, Registry, name_unknown

API_VERSION_HEADER = {"Docker-Distribution-API-Version": "registry/2.0"}


def _error(error: OciError) -> JSONResponse:
    return JSONResponse(error.to_json(), status_code=error.status, headers=API_VERSION_HEADER)


def create_app(registries: dict[str, Registry], default: str | None = None) -> Starlette:
    """``registries`` by host name; a request for an unknown host goes to ``default`` if set."""

    def registry_of(request: Request) -> Registry:
        host = request.headers.get("host", "").rsplit(":", 1)[0]
        found = registries.get(host) or (registries.get(default) if default else None)
        if found is None:
            raise OciError("NAME_UNKNOWN", f"no registry is served for host {host!r}", 404, {"host": host})
        return found

    def harbor_of(request: Request) -> Registry:
        registry = registry_of(request)
        if not registry.harbor:
            raise OciError("NOT_FOUND", f"{registry.host} is not a Harbor", 404)
        return registry

    async def base(request: Request) -> Response:
        registry_of(request)
        return JSONResponse({}, headers=API_VERSION_HEADER)

    async def manifest(request: Request) -> Response:
        registry = registry_of(request)
        name, reference = request.path_params["name"], request.path_params["reference"]
        if request.method == "PUT":
            media_type = request.headers.get("content-type", OCI_MANIFEST)
            digest = registry.put_manifest(name, reference, media_type, await request.body())
            return Response(status_code=201, headers={**API_VERSION_HEADER, "Docker-Content-Digest": digest,
                                                      "Location": f"/v2/{name}/manifests/{digest}"})
        found = await run_in_threadpool(registry.manifest, name, reference)  # a proxy miss goes upstream
        headers = {**API_VERSION_HEADER, "Docker-Content-Digest": found.digest, "Content-Type": found.media_type}
        if request.method == "HEAD":
            return Response(status_code=200, headers={**headers, "Content-Length": str(len(found.body))})
        return Response(found.body, headers=headers)

    async def blob(request: Request) -> Response:
        registry = registry_of(request)
        name, digest = request.path_params["name"], request.path_params["digest"]
        data = await run_in_threadpool(registry.blob, name, digest)
        headers = {**API_VERSION_HEADER, "Docker-Content-Digest": digest,
                   "Content-Type": "application/octet-stream"}
        if request.method == "HEAD":
            return Response(status_code=200, headers={**headers, "Content-Length": str(len(data))})
        return Response(data, headers=headers)

    async def start_upload(request: Request) -> Response:
        registry = registry_of(request)
        name = request.path_params["name"]
        digest = request.query_params.get("digest")
        upload_id = str(uuid.uuid4())
        registry.start_upload(upload_id)
        if digest:  # single-request monolithic upload
            stored = registry.finish_upload(upload_id, digest, await request.body())
            return Response(status_code=201, headers={**API_VERSION_HEADER, "Docker-Content-Digest": stored,
                                                      "Location": f"/v2/{name}/blobs/{stored}"})
        return Response(status_code=202, headers={**API_VERSION_HEADER, "Location": f"/v2/{name}/blobs/uploads/"
                                                  f"{upload_id}", "Range": "0-0", "Docker-Upload-UUID": upload_id})

    async def upload(request: Request) -> Response:
        registry = registry_of(request)
        name, upload_id = request.path_params["name"], request.path_params["upload_id"]
        if request.method == "PATCH":
            size = registry.append_upload(upload_id, await request.body())
            return Response(status_code=202, headers={**API_VERSION_HEADER, "Range": f"0-{max(0, size - 1)}",
                                                      "Location": f"/v2/{name}/blobs/uploads/{upload_id}"})
        digest = request.query_params.get("digest")
        if not digest:
            raise OciError("DIGEST_INVALID", "provided digest did not match uploaded content", 400,
                           {"reason": "the digest query parameter is required"})
        stored = registry.finish_upload(upload_id, digest, await request.body())
        return Response(status_code=201, headers={**API_VERSION_HEADER, "Docker-Content-Digest": stored,
                                                  "Location": f"/v2/{name}/blobs/{stored}"})

    async def tags(request: Request) -> Response:
        registry = registry_of(request)
        name = request.path_params["name"]
        found = registry.tags(name)
        limit = request.query_params.get("n")
        last = request.query_params.get("last")
        if last:
            found = [t for t in found if t > last]
        if limit is not None and limit.isdigit():
            found = found[: int(limit)]
        return JSONResponse({"name": name, "tags": found}, headers=API_VERSION_HEADER)

    async def catalog(request: Request) -> Response:
        return JSONResponse({"repositories": registry_of(request).catalog()}, headers=API_VERSION_HEADER)

    # -- Harbor v2.0 API subset -----------------------------------------------------------------------
    async def projects(request: Request) -> Response:
        registry = harbor_of(request)
        if request.method == "POST":
            body = await _json_body(request)
            name = body.get("project_name")
            if not isinstance(name, str) or not name:
                raise OciError("BAD_REQUEST", "project_name: required", 400)
            public = str((body.get("metadata") or {}).get("public", "true")).lower() == "true"
            registry_id = body.get("registry_id")
            if registry_id is not None and not isinstance(registry_id, int):
                raise OciError("BAD_REQUEST", "registry_id: must be an integer", 400)
            project = registry.create_project(name, public=public, registry_id=registry_id)
            return Response(status_code=201, headers={"Location": f"/api/v2.0/projects/{project.id}"})
        wanted = request.query_params.get("project_name") or request.query_params.get("name")
        found = [p for p in registry.projects.values() if wanted in (None, p.name)]
        if request.method == "HEAD":
            return Response(status_code=200 if found else 404)
        return JSONResponse([p.to_json() for p in found])

    async def project(request: Request) -> Response:
        registry = harbor_of(request)
        found = registry.projects.get(request.path_params["project"])
        if found is None:
            raise OciError("NOT_FOUND", f"project {request.path_params['project']} not found", 404)
        return JSONResponse(found.to_json())

    async def endpoints(request: Request) -> Response:
        registry = harbor_of(request)
        if request.method == "POST":
            body = await _json_body(request)
            missing = [f for f in ("name", "type", "url") if not isinstance(body.get(f), str) or not body.get(f)]
            if missing:
                raise OciError("BAD_REQUEST", f"{missing[0]}: required", 400)
            endpoint = registry.create_endpoint(body["name"], body["type"], body["url"])
            return Response(status_code=201, headers={"Location": f"/api/v2.0/registries/{endpoint.id}"})
        wanted = request.query_params.get("name")
        return JSONResponse([e.to_json() for e in registry.endpoints.values() if wanted in (None, e.name)])

    async def oci_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, OciError)
        if request.url.path.startswith("/api/"):  # Harbor's own error shape
            return JSONResponse({"errors": [{"code": exc.code, "message": exc.message}]}, status_code=exc.status)
        return _error(exc)

    manifest_methods = ["GET", "HEAD", "PUT"]
    return Starlette(
        routes=[
            Route("/v2/", base, methods=["GET"]),
            Route("/v2/_catalog", catalog, methods=["GET"]),
            Route("/v2/{name:path}/manifests/{reference}", manifest, methods=manifest_methods),
            Route("/v2/{name:path}/blobs/uploads/", start_upload, methods=["POST"]),
            Route("/v2/{name:path}/blobs/uploads/{upload_id}", upload, methods=["PATCH", "PUT"]),
            Route("/v2/{name:path}/blobs/{digest}", blob, methods=["GET", "HEAD"]),
            Route("/v2/{name:path}/tags/list", tags, methods=["GET"]),
            Route("/api/v2.0/projects", projects, methods=["GET", "HEAD", "POST"]),
            Route("/api/v2.0/projects/{project}", project, methods=["GET"]),
            Route("/api/v2.0/registries", endpoints, methods=["GET", "POST"]),
        ],
        exception_handlers={OciError: oci_error},
    )


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise OciError("BAD_REQUEST", "the request body is not JSON", 400) from None
    if not isinstance(body, dict):
        raise OciError("BAD_REQUEST", "the request body must be a JSON object", 400)
    return body


__all__ = ["create_app", "name_unknown"]
