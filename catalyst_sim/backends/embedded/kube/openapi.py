"""Just enough OpenAPI for kubectl to create, apply and patch without ``--validate=false``.

kubectl (``--validate=strict``, the default) first asks the OpenAPI v3 document of the object's
group/version whether its PATCH operation takes the ``fieldValidation`` query parameter; when it
does, kubectl leaves validation to the server and never downloads schemas. So each group/version
document lists, per kind, a PATCH operation tagged with ``x-kubernetes-group-version-kind`` and
that parameter. The request body deliberately omits the strategic-merge media type, so
``kubectl apply`` computes its patch from its compiled-in types instead of looking for schemas we
do not serve. ``/openapi/v2`` answers an empty protobuf document (a valid ``Document`` with no
definitions) for the same reason. Unknown fields are therefore not rejected (a known gap).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .resources import ResourceRegistry, ResourceType

VERSION = "v1.37.0"
_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml")


def gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _patch_operation(rt: ResourceType) -> dict[str, Any]:
    return {
        "description": f"partially update the specified {rt.kind}",
        "operationId": f"patch{rt.kind}",
        "parameters": [
            {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
            {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": True}},
        ],
        "requestBody": {
            "content": {t: {"schema": {"type": "object"}} for t in _PATCH_TYPES},
            "required": True,
        },
        "responses": {
            "200": {"description": "OK"},
            "201": {"description": "Created"},
            "401": {"description": "Unauthorized"},
        },
        "x-kubernetes-action": "patch",
        "x-kubernetes-group-version-kind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
    }


def group_version_document(registry: ResourceRegistry, group: str, version: str) -> dict[str, Any] | None:
    types = registry.types_in(group, version)
    if not types:
        return None
    paths: dict[str, Any] = {}
    for rt in sorted(types, key=lambda t: t.plural):
        base = "/" + gv_path(group, version)
        scope = f"{base}/namespaces/{{namespace}}" if rt.namespaced else base
        paths[f"{scope}/{rt.plural}/{{name}}"] = {"patch": _patch_operation(rt)}
        if rt.status:
            status_op = _patch_operation(rt)
            status_op["operationId"] = f"patch{rt.kind}Status"
            paths[f"{scope}/{rt.plural}/{{name}}/status"] = {"patch": status_op}
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": VERSION},
        "paths": paths,
        "components": {"schemas": {}},
    }


def root_document(registry: ResourceRegistry, prefix: str) -> dict[str, Any]:
    """``/openapi/v3``: one entry per group/version; the hash changes when its kinds change."""
    paths: dict[str, Any] = {}
    for group, versions in registry.groups():
        for version in versions:
            kinds = sorted(
                f"{rt.kind}/{rt.plural}/{rt.namespaced}/{rt.status}" for rt in registry.types_in(group, version)
            )
            digest = hashlib.sha512(json.dumps(kinds).encode()).hexdigest()[:128].upper()
            path = gv_path(group, version)
            paths[path] = {"serverRelativeURL": f"{prefix}/openapi/v3/{path}?hash={digest}"}
    return {"paths": paths}


def swagger_v2_json() -> dict[str, Any]:
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": VERSION},
        "paths": {},
        "definitions": {},
    }
