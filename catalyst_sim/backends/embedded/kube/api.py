"""The Kubernetes REST API over HTTP: one Starlette app serving many clusters by path prefix.

``/clusters/{cluster}/...`` carries everything a kubeconfig's ``server:`` URL can point at:
discovery (``/version``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/{group}[/{version}]``),
``/openapi/v2`` and ``/openapi/v3[/...]``, and the resource paths (namespaced, cluster-scoped,
``/status``, ``/scale``, ``/finalize``, ``pods/{name}/log``, legacy ``/watch/`` prefixes). Every
failure is a ``kind: Status`` body with upstream's reason and code.

Media types, as measured against kubectl 1.37 and the ``kubernetes`` Python client:

* responses are JSON (``application/json``), also for watches (newline-delimited events); a
  ``Table`` is served when asked for (``as=Table``), which is how ``kubectl get`` prints columns;
* aggregated discovery (``as=APIGroupDiscoveryList``) is answered with the legacy documents and a
  plain ``application/json`` content type, which makes kubectl fall back to per-group discovery;
* request bodies may be JSON, YAML, or Kubernetes protobuf for the built-in kinds kubectl's
  ``create`` sub-commands send (``kubectl create cm/secret/ns/deployment/...`` post protobuf and
  do not retry with JSON on 415, so we decode them, see :mod:`.protobuf`); other protobuf bodies
  get 415 ``UnsupportedMediaType``.
* PATCH takes ``merge-patch+json``, ``json-patch+json``, ``strategic-merge-patch+json`` (built-in
  kinds; 415 for custom resources, as upstream) and ``apply-patch+yaml`` (server-side apply).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from catalyst_sim import fastyaml

from . import errors, openapi, tables
from .errors import ApiError
from .patch import apply_patch, json_patch, merge_patch, strategic_merge
from .protobuf import ProtobufUnsupported, decode_object
from .resources import ResourceType
from .selectors import dig, parse_field_selector, parse_label_selector, selector_string
from .store import ClusterStore, Watcher

log = logging.getLogger(__name__)

JSON = "application/json"
PROTOBUF = "application/vnd.kubernetes.protobuf"
READ_VERBS = {"get", "list", "watch"}
PUBLIC_PATHS = {"version", "healthz", "livez", "readyz"}
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


@dataclass
class ClusterEndpoint:
    """What the HTTP layer knows of one cluster: its store and who may call it."""

    name: str
    store: ClusterStore
    tokens: dict[str, str] = field(default_factory=dict)  # token -> "admin" | "read-only"


def _dumps(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(body: Any, status: int = 200) -> Response:
    return Response(_dumps(body), status_code=status, media_type=JSON)


def error_response(exc: ApiError) -> Response:
    return json_response(exc.status(), exc.code)


def _present(obj: dict[str, Any], rt: ResourceType) -> dict[str, Any]:
    """The object as the requested version shows it (CRD versions share storage, schema-less)."""
    if obj.get("apiVersion") == rt.api_version:
        return obj
    return {**obj, "apiVersion": rt.api_version}


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


def _int_param(params: Any, name: str) -> int | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise errors.bad_request(f"invalid {name} {raw!r}: must be an integer") from None


@dataclass
class _Target:
    """A parsed resource path."""

    group: str
    version: str
    resource: str
    namespace: str | None
    name: str | None
    subresource: str
    watch_path: bool


class KubeApi:
    """The ASGI application; ``lookup`` maps a cluster name to its endpoint (None: unknown)."""

    def __init__(
        self,
        lookup: Callable[[str], ClusterEndpoint | None],
        *,
        bookmark_interval: float = 30.0,
        host_label: Callable[[], str] | None = None,
    ) -> None:
        self.lookup = lookup
        self.bookmark_interval = bookmark_interval
        self._host_label = host_label or (lambda: "127.0.0.1")
        self._sessions: set[_WatchSession] = set()
        self.active_streams = 0  # watch responses still writing (stop() lets them finish cleanly)
        self.app = Starlette(
            routes=[
                Route("/clusters/{cluster}", self.handle, methods=METHODS),
                Route("/clusters/{cluster}/{path:path}", self.handle, methods=METHODS),
            ]
        )

    def close_streams(self) -> None:
        for session in list(self._sessions):
            session.close()

    # ------------------------------------------------------------------ entry

    async def handle(self, request: Request) -> Response:
        cluster_name = request.path_params["cluster"]
        path = request.path_params.get("path", "").strip("/")
        endpoint = self.lookup(cluster_name)
        if endpoint is None:
            return error_response(ApiError(404, "NotFound", f'cluster "{cluster_name}" not found'))
        try:
            role = self._authenticate(endpoint, request, path)
            return await self._route(endpoint, role, request, path)
        except ApiError as exc:
            return error_response(exc)
        except Exception as exc:  # an emulator bug must surface as a 500 Status, never a hang
            log.exception("kube api: %s %s failed", request.method, request.url.path)
            return error_response(ApiError(500, "InternalError", f"Internal error occurred: {exc!r}"))

    def _authenticate(self, endpoint: ClusterEndpoint, request: Request, path: str) -> str:
        header = request.headers.get("authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            role = endpoint.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
            if role is None:
                raise errors.unauthorized()
            return role
        if path in PUBLIC_PATHS:
            return "anonymous"
        raise errors.forbidden(f'forbidden: User "system:anonymous" cannot get path "/{path}"')

    async def _route(self, endpoint: ClusterEndpoint, role: str, request: Request, path: str) -> Response:
        segments = [s for s in path.split("/") if s] if path else []
        prefix = f"/clusters/{endpoint.name}"
        store = endpoint.store
        if not segments:
            return json_response(
                {
                    "paths": [
                        "/api",
                        "/api/v1",
                        "/apis",
                        "/healthz",
                        "/livez",
                        "/openapi/v2",
                        "/openapi/v3",
                        "/readyz",
                        "/version",
                    ]
                }
            )
        head = segments[0]
        if head == "version" and len(segments) == 1:
            return json_response(_version())
        if head in ("healthz", "livez", "readyz"):
            return Response(b"ok", media_type="text/plain")
        if head == "openapi":
            return self._openapi(store, segments, request, prefix)
        if head == "api":
            if len(segments) == 1:
                return json_response(
                    {
                        "kind": "APIVersions",
                        "versions": ["v1"],
                        "serverAddressByClientCIDRs": [
                            {"clientCIDR": "0.0.0.0/0", "serverAddress": self._host_label()}
                        ],
                    }
                )
            if len(segments) == 2:
                return self._resource_list(store, "", segments[1])
            target = self._target("", segments[1], segments[2:])
        elif head == "apis":
            if len(segments) == 1:
                return json_response(self._group_list(store))
            if len(segments) == 2:
                group = self._group(store, segments[1])
                if group is None:
                    raise errors.unknown_resource()
                return json_response(group)
            if len(segments) == 3:
                return self._resource_list(store, segments[1], segments[2])
            target = self._target(segments[1], segments[2], segments[3:])
        else:
            raise errors.unknown_resource()
        return await self._resource(endpoint, role, request, target)

    # ------------------------------------------------------------------ discovery

    def _group(self, store: ClusterStore, name: str) -> dict[str, Any] | None:
        for group, versions in store.registry.groups():
            if group == name and group:
                entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
                return {
                    "kind": "APIGroup",
                    "apiVersion": "v1",
                    "name": group,
                    "versions": entries,
                    "preferredVersion": entries[0],
                }
        return None

    def _group_list(self, store: ClusterStore) -> dict[str, Any]:
        groups = []
        for group, _ in store.registry.groups():
            if group:
                entry = self._group(store, group)
                if entry is not None:
                    entry = {k: v for k, v in entry.items() if k not in ("kind", "apiVersion")}
                    groups.append(entry)
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def _resource_list(self, store: ClusterStore, group: str, version: str) -> Response:
        types = store.registry.types_in(group, version)
        if not types:
            raise errors.unknown_resource()
        resources = [entry for rt in sorted(types, key=lambda t: t.plural) for entry in rt.discovery()]
        return json_response(
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version,
                "resources": resources,
            }
        )

    def _openapi(self, store: ClusterStore, segments: list[str], request: Request, prefix: str) -> Response:
        if segments[1:] == ["v2"]:
            if "protobuf" in request.headers.get("accept", ""):
                # An empty message is a valid openapi_v2.Document: kubectl finds no schemas and
                # falls back to its compiled-in types.
                return Response(b"", media_type="application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
            return json_response(openapi.swagger_v2_json())
        if segments[1:] == ["v3"]:
            return json_response(openapi.root_document(store.registry, prefix))
        if len(segments) >= 4 and segments[1] == "v3":
            rest = segments[2:]
            if rest[0] == "api" and len(rest) == 2:
                doc = openapi.group_version_document(store.registry, "", rest[1])
            elif rest[0] == "apis" and len(rest) == 3:
                doc = openapi.group_version_document(store.registry, rest[1], rest[2])
            else:
                doc = None
            if doc is not None:
                return json_response(doc)
        raise errors.unknown_resource()

    # ------------------------------------------------------------------ resources

    @staticmethod
    def _target(group: str, version: str, rest: list[str]) -> _Target:
        watch_path = False
        if rest and rest[0] == "watch":
            watch_path = True
            rest = rest[1:]
        namespace: str | None = None
        if (
            len(rest) >= 3
            and rest[0] == "namespaces"
            and not (len(rest) == 3 and rest[2] in ("status", "finalize") and not group)
        ):
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise errors.unknown_resource()
        return _Target(
            group,
            version,
            rest[0],
            namespace,
            rest[1] if len(rest) > 1 else None,
            rest[2] if len(rest) > 2 else "",
            watch_path,
        )

    async def _resource(self, endpoint: ClusterEndpoint, role: str, request: Request, target: _Target) -> Response:
        store = endpoint.store
        rt = store.registry.lookup(target.group, target.version, target.resource)
        if rt is None:
            raise errors.unknown_resource()
        storage = store.registry.storage_type(rt.gr) or rt
        if target.namespace is not None and not rt.namespaced:
            raise errors.unknown_resource()
        sub = target.subresource
        allowed_subs = (
            {""}
            | ({"status"} if rt.status else set())
            | ({"scale"} if rt.scale else set())
            | set(rt.extra_subresources)
        )
        if sub not in allowed_subs:
            raise errors.unknown_resource()
        if rt.namespaced and target.name is not None and target.namespace is None:
            raise errors.unknown_resource()
        method = request.method
        params = request.query_params
        if method == "HEAD":
            method = "GET"
        watch = target.watch_path or _flag(params.get("watch"))
        verb = self._verb(method, target, watch)
        if role == "anonymous":
            raise errors.forbidden(
                f'{rt.plural} is forbidden: User "system:anonymous" cannot {verb} resource '
                f'"{rt.plural}" in API group "{rt.group}"'
            )
        if role == "read-only" and verb not in READ_VERBS and sub != "log":
            where = f' in the namespace "{target.namespace}"' if target.namespace else " at the cluster scope"
            raise ApiError(
                403,
                "Forbidden",
                f'{rt.plural} "{target.name or ""}" is forbidden: User "catalyst-sim:read-only" cannot '
                f'{verb} resource "{rt.plural}" in API group "{rt.group}"{where}',
                {"name": target.name or "", "group": rt.group, "kind": rt.plural},
            )
        ns = target.namespace
        dry_run = params.get("dryRun") == "All"
        if sub == "scale":
            return await self._scale(store, rt, storage, request, ns, target.name or "", dry_run)
        if sub == "log":
            return self._log(store, storage, ns, target.name or "", params)
        if verb == "watch":
            return self._watch(store, rt, storage, ns, target.name, request)
        if verb == "list":
            return self._list(store, rt, storage, ns, request)
        if verb == "get":
            obj = store.get(storage, ns, target.name or "")
            return self._object_response(store, request, rt, _present(obj, rt))
        if verb == "create":
            body = await self._body(request)
            obj = store.create(storage, ns, body, dry_run=dry_run)
            return json_response(_present(obj, rt), 201)
        if verb == "update":
            body = await self._body(request)
            obj = store.update(storage, ns, target.name or "", body, subresource=sub, dry_run=dry_run)
            return json_response(_present(obj, rt))
        if verb == "patch":
            return await self._patch(store, rt, storage, request, ns, target.name or "", sub, dry_run)
        if verb == "delete":
            return await self._delete(store, rt, storage, request, ns, target.name or "", dry_run)
        if verb == "deletecollection":
            return await self._delete_collection(store, rt, storage, request, ns, dry_run)
        raise errors.method_not_allowed(method, rt.plural)

    @staticmethod
    def _verb(method: str, target: _Target, watch: bool) -> str:
        named = target.name is not None
        if method == "GET":
            if watch:
                return "watch"
            return "get" if named else "list"
        if method == "POST" and not named:
            return "create"
        if method == "PUT" and named:
            return "update"
        if method == "PATCH" and named:
            return "patch"
        if method == "DELETE":
            return "delete" if named else "deletecollection"
        return f"unsupported:{method}"

    async def _body(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        content_type = request.headers.get("content-type", JSON).split(";")[0].strip().lower()
        if content_type == PROTOBUF:
            try:
                return decode_object(raw)
            except ProtobufUnsupported as exc:
                raise errors.unsupported_media_type(content_type, [JSON, "application/yaml"]) from exc
        try:
            if content_type in ("application/yaml", "application/x-yaml", "application/apply-patch+yaml"):
                body = yaml.safe_load(raw.decode() or "{}")
            else:
                body = json.loads(raw or b"{}")
        except (ValueError, yaml.YAMLError) as exc:
            raise errors.bad_request(f"the body of the request could not be decoded: {exc}") from None
        if not isinstance(body, (dict, list)):
            raise errors.bad_request("the body of the request must be a JSON object")
        return body  # type: ignore[return-value]

    def _object_response(
        self, store: ClusterStore, request: Request, rt: ResourceType, obj: dict[str, Any]
    ) -> Response:
        if tables.wants_table(request.headers.get("accept", "")):
            return json_response(
                tables.table(
                    rt,
                    [obj],
                    obj["metadata"].get("resourceVersion", ""),
                    _include_object(request),
                    now=store.clock.now(),
                )
            )
        return json_response(obj)

    def _list(
        self, store: ClusterStore, rt: ResourceType, storage: ResourceType, ns: str | None, request: Request
    ) -> Response:
        params = request.query_params
        result = store.list(
            storage,
            ns,
            labels=parse_label_selector(params.get("labelSelector")),
            fields=parse_field_selector(params.get("fieldSelector"), storage.field_getters()),
            limit=_int_param(params, "limit") or 0,
            continue_token=params.get("continue", ""),
            resource_version=params.get("resourceVersion", ""),
            resource_version_match=params.get("resourceVersionMatch", ""),
        )
        meta: dict[str, Any] = {"resourceVersion": str(result.resource_version)}
        if result.continue_token:
            meta["continue"] = result.continue_token
        if result.remaining is not None:
            meta["remainingItemCount"] = result.remaining
        items = [_present(obj, rt) for obj in result.items]
        if tables.wants_table(request.headers.get("accept", "")):
            table = tables.table(rt, items, meta["resourceVersion"], _include_object(request), now=store.clock.now())
            table["metadata"] = meta
            return json_response(table)
        return json_response({"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta, "items": items})

    async def _patch(
        self,
        store: ClusterStore,
        rt: ResourceType,
        storage: ResourceType,
        request: Request,
        ns: str | None,
        name: str,
        sub: str,
        dry_run: bool,
    ) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        raw = await request.body()
        if content_type == "application/apply-patch+yaml":
            return self._apply(store, rt, storage, request, ns, name, sub, raw, dry_run)
        try:
            body = json.loads(raw or b"null")
        except ValueError as exc:
            raise errors.bad_request(f"the body of the request could not be decoded: {exc}") from None
        if content_type == "application/merge-patch+json" and not isinstance(body, dict):
            raise errors.bad_request("merge patch must be a JSON object")
        if content_type == "application/strategic-merge-patch+json" and not storage.strategic_merge:
            raise errors.unsupported_media_type(
                content_type,
                [  # custom resources, as upstream
                    "application/json-patch+json",
                    "application/merge-patch+json",
                    "application/apply-patch+yaml",
                ],
            )
        patchers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "application/merge-patch+json": lambda current: merge_patch(current, body),
            "application/json-patch+json": lambda current: json_patch(current, body),
            "application/strategic-merge-patch+json": lambda current: strategic_merge(current, body, storage.kind),
        }
        change = patchers.get(content_type)
        if change is None:
            raise errors.unsupported_media_type(content_type, [*patchers, "application/apply-patch+yaml"])
        obj = store.mutate(storage, ns, name, change, subresource=sub, dry_run=dry_run)
        return json_response(_present(obj, rt))

    def _apply(
        self,
        store: ClusterStore,
        rt: ResourceType,
        storage: ResourceType,
        request: Request,
        ns: str | None,
        name: str,
        sub: str,
        raw: bytes,
        dry_run: bool,
    ) -> Response:
        manager = request.query_params.get("fieldManager", "")
        if not manager:
            raise errors.bad_request(
                'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch'
            )
        config = _apply_config(raw)
        if not isinstance(config, dict):
            raise errors.bad_request("apply patch must be an object")
        meta = config.get("metadata") or {}
        if meta.get("name") and meta["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        with store.lock:
            current = store.find(storage, ns, name)
            if current is None:
                if sub:
                    raise errors.not_found(rt.plural, name, rt.group)
                body = dict(config, metadata=dict(meta, name=name))
                obj = store.create(storage, ns, body, dry_run=dry_run)
                if not dry_run:
                    store.remember_applied(obj["metadata"]["uid"], manager, config)
                return json_response(_present(obj, rt), 201)
            uid = current["metadata"]["uid"]
            previous = store.applied_config(uid, manager) or {}

            def change(live: dict[str, Any]) -> dict[str, Any]:
                return apply_patch(live, previous, config, storage.kind, storage.strategic_merge)

            obj = store.mutate(storage, ns, name, change, subresource=sub, dry_run=dry_run)
            if not dry_run:
                store.remember_applied(uid, manager, config)
        return json_response(_present(obj, rt))

    async def _delete_options(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        options: dict[str, Any] = {}
        if raw.strip():
            try:
                options = json.loads(raw)
            except ValueError:
                options = {}
        params = request.query_params
        if params.get("propagationPolicy"):
            options["propagationPolicy"] = params["propagationPolicy"]
        if params.get("gracePeriodSeconds") not in (None, ""):
            options["gracePeriodSeconds"] = _int_param(params, "gracePeriodSeconds")
        if params.get("orphanDependents") not in (None, ""):
            options["orphanDependents"] = _flag(params.get("orphanDependents"))
        if "propagationPolicy" not in options and "orphanDependents" in options:
            options["propagationPolicy"] = "Orphan" if options["orphanDependents"] else "Background"
        return options if isinstance(options, dict) else {}

    async def _delete(
        self,
        store: ClusterStore,
        rt: ResourceType,
        storage: ResourceType,
        request: Request,
        ns: str | None,
        name: str,
        dry_run: bool,
    ) -> Response:
        options = await self._delete_options(request)
        dry_run = dry_run or options.get("dryRun") == ["All"]
        obj, removed = store.delete(
            storage,
            ns,
            name,
            propagation=options.get("propagationPolicy"),
            grace_period=options.get("gracePeriodSeconds"),
            preconditions=options.get("preconditions"),
            dry_run=dry_run,
        )
        if removed and not storage.return_deleted_object:
            return json_response(errors.success_status(name, rt.plural, rt.group, obj["metadata"]["uid"]))
        return json_response(_present(obj, rt))

    async def _delete_collection(
        self,
        store: ClusterStore,
        rt: ResourceType,
        storage: ResourceType,
        request: Request,
        ns: str | None,
        dry_run: bool,
    ) -> Response:
        if "deletecollection" not in rt.verbs:
            raise errors.method_not_allowed("DELETE", rt.plural)
        options = await self._delete_options(request)
        params = request.query_params
        items = store.delete_collection(
            storage,
            ns,
            labels=parse_label_selector(params.get("labelSelector")),
            fields=parse_field_selector(params.get("fieldSelector"), storage.field_getters()),
            propagation=options.get("propagationPolicy"),
            grace_period=options.get("gracePeriodSeconds"),
            dry_run=dry_run,
        )
        return json_response(
            {
                "kind": rt.list_kind,
                "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(store.resource_version)},
                "items": [_present(o, rt) for o in items],
            }
        )

    # ------------------------------------------------------------------ /scale and /log

    @staticmethod
    def _scale_of(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        assert rt.scale is not None
        meta = obj["metadata"]
        if rt.scale.label_selector:
            selector = dig(obj, rt.scale.label_selector)
        else:
            selector = selector_string((obj.get("spec") or {}).get("selector"))
        spec_replicas = dig(obj, rt.scale.spec_replicas)
        status_replicas = dig(obj, rt.scale.status_replicas)
        status: dict[str, Any] = {"replicas": int(status_replicas or 0)}
        if selector:
            status["selector"] = selector
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta
            },
            "spec": {"replicas": int(spec_replicas or 0)} if spec_replicas else {},
            "status": status,
        }

    async def _scale(
        self,
        store: ClusterStore,
        rt: ResourceType,
        storage: ResourceType,
        request: Request,
        ns: str | None,
        name: str,
        dry_run: bool,
    ) -> Response:
        assert rt.scale is not None
        paths = rt.scale
        if request.method in ("GET", "HEAD"):
            return json_response(self._scale_of(rt, store.get(storage, ns, name)))
        raw = await request.body()
        content_type = request.headers.get("content-type", JSON).split(";")[0].strip().lower()
        try:
            body = json.loads(raw or b"{}") if content_type != "application/apply-patch+yaml" else yaml.safe_load(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise errors.bad_request(f"the body of the request could not be decoded: {exc}") from None

        def change(current: dict[str, Any]) -> dict[str, Any]:
            scale = self._scale_of(rt, current)
            if request.method == "PUT":
                new_scale = body
            elif content_type == "application/json-patch+json":
                new_scale = json_patch(scale, body)
            elif content_type == "application/strategic-merge-patch+json":
                new_scale = strategic_merge(scale, body, "Scale")
            else:
                new_scale = merge_patch(scale, body)
            sent_rv = ((new_scale or {}).get("metadata") or {}).get("resourceVersion")
            if sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
                raise errors.conflict(rt.plural, name, rt.group)
            replicas = ((new_scale or {}).get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                raise errors.invalid(
                    "Scale",
                    name,
                    [
                        (
                            "FieldValueInvalid",
                            "spec.replicas",
                            f"Invalid value: {replicas}: must be greater than or equal to 0",
                        )
                    ],
                    "autoscaling",
                )
            target = current
            parts = paths.spec_replicas.split(".")
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = replicas
            current["metadata"].pop("resourceVersion", None)
            return current

        obj = store.mutate(storage, ns, name, change, dry_run=dry_run)
        return json_response(self._scale_of(rt, obj))

    @staticmethod
    def _log(store: ClusterStore, storage: ResourceType, ns: str | None, name: str, params: Any) -> Response:
        pod = store.get(storage, ns, name)
        containers = (pod.get("spec") or {}).get("containers") or []
        wanted = params.get("container") or (containers[0]["name"] if len(containers) == 1 else "")
        if not wanted:
            names = " ".join(c["name"] for c in containers)
            raise errors.bad_request(f"a container name must be specified for pod {name}, choose one of: [{names}]")
        statuses = {c.get("name"): c for c in (pod.get("status") or {}).get("containerStatuses") or []}
        status = statuses.get(wanted)
        if status is None or (not (status.get("state") or {}).get("running") and not status.get("restartCount")):
            if wanted not in {c["name"] for c in containers}:
                raise errors.bad_request(f"container {wanted} is not valid for pod {name}")
            raise errors.bad_request(
                f'container "{wanted}" in pod "{name}" is waiting to start: '
                f"{((status or {}).get('state') or {}).get('waiting', {}).get('reason', 'ContainerCreating')}"
            )
        image = status.get("image", "")
        return Response(
            f"catalyst-sim: container {wanted} ({image}) started, restarts: {status.get('restartCount', 0)}\n".encode(),
            media_type="text/plain",
        )

    # ------------------------------------------------------------------ watch

    def _watch(
        self,
        store: ClusterStore,
        rt: ResourceType,
        storage: ResourceType,
        ns: str | None,
        name: str | None,
        request: Request,
    ) -> Response:
        params = request.query_params
        fields_text = params.get("fieldSelector") or ""
        if name:  # the legacy /watch/namespaces/{ns}/{resource}/{name} form
            fields_text = ",".join(p for p in (fields_text, f"metadata.name={name}") if p)
        labels = parse_label_selector(params.get("labelSelector"))
        fields = parse_field_selector(fields_text, storage.field_getters())
        send_initial = params.get("sendInitialEvents")
        initial_events = _flag(send_initial) if send_initial is not None else None
        if initial_events and not _flag(params.get("allowWatchBookmarks")):
            raise errors.invalid(
                "ListOptions",
                "",
                [
                    (
                        "FieldValueForbidden",
                        "allowWatchBookmarks",
                        "Forbidden: sendInitialEvents requires setting allowWatchBookmarks=true",
                    )
                ],
                "meta.k8s.io",
            )
        timeout = _int_param(params, "timeoutSeconds")
        session = _WatchSession(
            self,
            rt,
            timeout=float(timeout) if timeout is not None else None,
            bookmarks=_flag(params.get("allowWatchBookmarks")),
            initial_events_end=bool(initial_events),
            table=_include_object(request) if tables.wants_table(request.headers.get("accept", "")) else None,
        )
        try:
            watcher, initial, rv = store.watch(
                storage,
                ns,
                labels=labels,
                fields=fields,
                resource_version=params.get("resourceVersion", ""),
                send_initial_events=initial_events,
                sink=session.sink,
            )
        except ApiError as exc:
            if exc.code != 410:
                raise
            session.fail(exc)
            return _WatchStreamResponse(session)
        session.attach(store, watcher, initial, rv)
        return _WatchStreamResponse(session)


def _include_object(request: Request) -> str:
    return request.query_params.get("includeObject", "Metadata")


def _version() -> dict[str, str]:
    return {
        "major": "1",
        "minor": "37",
        "emulationMajor": "1",
        "emulationMinor": "37",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "36",
        "gitVersion": openapi.VERSION,
        "gitCommit": "catalyst-sim",
        "gitTreeState": "clean",
        "buildDate": "2026-11-01T00:00:00Z",
        "goVersion": "go1.25.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


class _WatchSession:
    """One watch stream: events arrive from any thread, are written on the server's loop.

    The store calls :meth:`sink` under its lock; we append to a deque and wake the loop. A bookmark
    carries the last resourceVersion this watcher has been offered, read *before* draining the
    deque, so a client resuming from a bookmark can never skip an event.
    """

    def __init__(
        self,
        api: KubeApi,
        rt: ResourceType,
        *,
        timeout: float | None,
        bookmarks: bool,
        initial_events_end: bool,
        table: str | None = None,
    ) -> None:
        self.api = api
        self.table = table
        self.headers_sent = False
        self.rt = rt
        self.timeout = timeout
        self.bookmarks = bookmarks
        self.initial_events_end = initial_events_end
        self.pending: deque[tuple[str, dict[str, Any], int]] = deque()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.wake: asyncio.Event | None = None
        self.store: ClusterStore | None = None
        self.watcher: Watcher | None = None
        self.initial: list[tuple[str, dict[str, Any]]] = []
        self.start_rv = 0
        self.error: ApiError | None = None
        self.closed = False

    def sink(self, kind: str, obj: dict[str, Any]) -> None:
        rv = self.store.resource_version if self.store is not None else 0
        self.pending.append((kind, obj, rv))
        loop, wake = self.loop, self.wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed: the stream is over anyway
                loop.call_soon_threadsafe(wake.set)

    def attach(self, store: ClusterStore, watcher: Watcher, initial: list[tuple[str, dict[str, Any]]], rv: int) -> None:
        self.store, self.watcher, self.initial, self.start_rv = store, watcher, initial, rv
        self.api._sessions.add(self)

    def fail(self, exc: ApiError) -> None:
        self.error = exc

    def close(self) -> None:
        self.closed = True
        if self.store is not None and self.watcher is not None:
            self.store.unwatch(self.watcher)
        self.api._sessions.discard(self)
        if self.loop is not None and self.wake is not None:
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self.wake.set)

    def _line(self, kind: str, obj: dict[str, Any]) -> bytes:
        shown = _present(obj, self.rt)
        if self.table is not None and self.store is not None:
            # As upstream: only the first event of a Table watch carries the column definitions.
            shown = tables.table(
                self.rt,
                [shown],
                obj["metadata"].get("resourceVersion", ""),
                self.table,
                now=self.store.clock.now(),
                headers=not self.headers_sent,
            )
            self.headers_sent = True
        return _dumps({"type": kind, "object": shown}) + b"\n"

    def _bookmark(self, rv: int, initial_end: bool = False) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return (
            _dumps(
                {
                    "type": "BOOKMARK",
                    "object": {"kind": self.rt.kind, "apiVersion": self.rt.api_version, "metadata": meta},
                }
            )
            + b"\n"
        )


class _WatchStreamResponse(Response):
    """Streams a watch as newline-delimited JSON until timeout, disconnect or shutdown."""

    def __init__(self, session: _WatchSession) -> None:
        super().__init__(content=b"", status_code=200, media_type=JSON)
        self.session = session

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        session = self.session
        loop = asyncio.get_running_loop()
        session.loop = loop
        session.wake = asyncio.Event()
        if session.pending:
            session.wake.set()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", JSON.encode()), (b"cache-control", b"no-cache, private")],
            }
        )

        async def body(chunk: bytes) -> None:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

        async def disconnected() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return

        gone = asyncio.ensure_future(disconnected())
        session.api.active_streams += 1
        try:
            if session.error is not None:
                await body(_dumps({"type": "ERROR", "object": session.error.status()}) + b"\n")
                return
            chunk = b"".join(session._line(kind, obj) for kind, obj in session.initial)
            if session.initial_events_end:
                chunk += session._bookmark(session.start_rv, initial_end=True)
            if chunk:
                await body(chunk)
            session.initial = []
            deadline = loop.time() + session.timeout if session.timeout is not None else None
            interval = self._interval(session)
            next_bookmark = loop.time() + interval
            while not session.closed:
                now = loop.time()
                waits = [next_bookmark - now] if session.bookmarks else []
                if deadline is not None:
                    waits.append(deadline - now)
                wait = max(0.0, min(waits)) if waits else None
                waker = asyncio.ensure_future(session.wake.wait())
                done, _ = await asyncio.wait({waker, gone}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
                if not waker.done():
                    waker.cancel()
                if gone in done:
                    return
                session.wake.clear()
                out = []
                while session.pending:
                    kind, obj, _rv = session.pending.popleft()
                    if kind == "CLOSE":
                        session.closed = True
                        break
                    out.append(session._line(kind, obj))
                if out:
                    await body(b"".join(out))
                now = loop.time()
                if deadline is not None and now >= deadline:
                    if session.bookmarks and session.store is not None:
                        await body(session._bookmark(self._seen(session)))
                    return
                if session.bookmarks and now >= next_bookmark and session.store is not None:
                    await body(session._bookmark(self._seen(session)))
                    next_bookmark = now + interval
        finally:
            gone.cancel()
            session.close()
            try:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except Exception:  # the client is gone; nothing left to tell it
                log.debug("closing a watch stream failed", exc_info=True)
            finally:
                session.api.active_streams -= 1

    @staticmethod
    def _interval(session: _WatchSession) -> float:
        return max(0.05, session.api.bookmark_interval)

    @staticmethod
    def _seen(session: _WatchSession) -> int:
        """The resourceVersion up to which this stream has delivered everything relevant."""
        store = session.store
        assert store is not None
        with store.lock:
            rv = store.resource_version
            if session.pending:
                return max(session.start_rv, min(item[2] for item in session.pending) - 1)
            return max(rv, session.start_rv)


def _apply_config(raw: bytes) -> Any:
    """The apply configuration: YAML, of which JSON (what clients send) is the fast subset."""
    text = raw.decode() or "{}"
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return fastyaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise errors.bad_request(f"error decoding YAML: {exc}") from None


