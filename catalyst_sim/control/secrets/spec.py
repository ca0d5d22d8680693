"""What an ExternalSecret asks for, checked field by field (ESO ``external-secrets.io/v1beta1``).

The CRD the vcluster serves keeps unknown fields (:mod:`catalyst_sim.control.gitops.crds`), so a
malformed ExternalSecret reaches the controller; :func:`parse` turns it into an
:class:`ExternalSecretSpec` or raises :class:`SpecError` naming the object and the field, which the
controller reports on the object's ``Ready`` condition instead of crashing.

Supported: ``spec.refreshInterval`` (Go duration, ``0`` = sync once), ``spec.secretStoreRef`` (the
Sovereign's one ``ClusterSecretStore`` ``openbao``), ``spec.target.name``, ``spec.data[]``
(``secretKey`` + ``remoteRef.key``/``property``/``version``) and ``spec.dataFrom[].extract.key``.
Remote keys are full OpenBao paths (``org/{org}/env/{env_type}/...``, R-NAME-18); whether a path is
allowed is decided by OpenBao's policy for the Org, not here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from catalyst_sim.control.gitops.conditions import DurationError, parse_duration

STORE_KIND = "ClusterSecretStore"
STORE_NAME = "openbao"
DEFAULT_REFRESH = 3600.0  # ESO's default refreshInterval: 1h
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")  # a Kubernetes Secret data key
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


class SpecError(ValueError):
    """A malformed ExternalSecret; ``field`` is the path of the offending field."""

    def __init__(self, obj: str, field: str, message: str) -> None:
        super().__init__(f"ExternalSecret {obj}: {field}: {message}")
        self.field = field


@dataclass(frozen=True)
class RemoteRef:
    secret_key: str | None  # None: every property of the remote secret (dataFrom.extract)
    key: str
    property: str | None = None
    version: int | None = None


@dataclass(frozen=True)
class ExternalSecretSpec:
    namespace: str
    name: str
    target: str
    refresh_seconds: float
    store: tuple[str, str]
    refs: tuple[RemoteRef, ...]


def _str(value: Any, obj: str, field: str, *, required: bool = True) -> str | None:
    if value is None or value == "":
        if required:
            raise SpecError(obj, field, "required")
        return None
    if not isinstance(value, str):
        raise SpecError(obj, field, f"must be a string, got {type(value).__name__}")
    return value


def _remote_key(value: Any, obj: str, field: str) -> str:
    key = _str(value, obj, field)
    assert key is not None
    parts = key.strip("/").split("/")
    if any(part in ("", ".", "..") for part in parts) or len(parts) < 2:
        raise SpecError(obj, field, f"{key!r} is not an OpenBao KV path '<mount>/<path>' without empty, '.' or "
                        "'..' segments")
    return "/".join(parts)


def _version(value: Any, obj: str, field: str) -> int | None:
    if value is None:
        return None
    text = str(value)
    if not text.isdigit() or int(text) < 1:
        raise SpecError(obj, field, f"{value!r} is not a KV v2 version number (1, 2, ...)")
    return int(text)


def parse(resource: dict[str, Any]) -> ExternalSecretSpec:
    meta = resource.get("metadata") or {}
    namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    obj = f"{namespace}/{name}"
    spec = resource.get("spec")
    if not isinstance(spec, dict):
        raise SpecError(obj, "spec", "required (a mapping)")
    try:
        refresh = parse_duration(spec.get("refreshInterval"), DEFAULT_REFRESH)
    except DurationError as exc:
        raise SpecError(obj, "spec.refreshInterval", str(exc)) from None
    if refresh < 0:
        raise SpecError(obj, "spec.refreshInterval", "must not be negative")
    store = spec.get("secretStoreRef")
    if not isinstance(store, dict):
        raise SpecError(obj, "spec.secretStoreRef", "required (a mapping with name and kind)")
    store_name = _str(store.get("name"), obj, "spec.secretStoreRef.name") or ""
    store_kind = _str(store.get("kind"), obj, "spec.secretStoreRef.kind", required=False) or "SecretStore"
    target = spec.get("target") or {}
    if not isinstance(target, dict):
        raise SpecError(obj, "spec.target", "must be a mapping")
    target_name = _str(target.get("name"), obj, "spec.target.name", required=False) or name
    if len(target_name) > 253 or not _NAME.match(target_name):
        raise SpecError(obj, "spec.target.name", f"{target_name!r} is not a valid Secret name")
    refs: list[RemoteRef] = []
    data = spec.get("data") or []
    if not isinstance(data, list):
        raise SpecError(obj, "spec.data", "must be a list")
    seen: set[str] = set()
    for index, item in enumerate(data):
        where = f"spec.data[{index}]"
        if not isinstance(item, dict):
            raise SpecError(obj, where, "must be a mapping with secretKey and remoteRef")
        secret_key = _str(item.get("secretKey"), obj, f"{where}.secretKey")
        assert secret_key is not None
        if not _SECRET_KEY.match(secret_key) or len(secret_key) > 253:
            raise SpecError(obj, f"{where}.secretKey", f"{secret_key!r} is not a valid Secret data key "
                            "(letters, digits, '-', '_' and '.')")
        if secret_key in seen:
            raise SpecError(obj, f"{where}.secretKey", f"{secret_key!r} is used twice")
        seen.add(secret_key)
        remote = item.get("remoteRef")
        if not isinstance(remote, dict):
            raise SpecError(obj, f"{where}.remoteRef", "required (a mapping with key)")
        refs.append(RemoteRef(secret_key, _remote_key(remote.get("key"), obj, f"{where}.remoteRef.key"),
                              _str(remote.get("property"), obj, f"{where}.remoteRef.property", required=False),
                              _version(remote.get("version"), obj, f"{where}.remoteRef.version")))
    data_from = spec.get("dataFrom") or []
    if not isinstance(data_from, list):
        raise SpecError(obj, "spec.dataFrom", "must be a list")
    for index, item in enumerate(data_from):
        where = f"spec.dataFrom[{index}]"
        extract = item.get("extract") if isinstance(item, dict) else None
        if not isinstance(extract, dict):
            raise SpecError(obj, where, "only 'extract: {key: ...}' is supported")
        refs.append(RemoteRef(None, _remote_key(extract.get("key"), obj, f"{where}.extract.key"),
                              version=_version(extract.get("version"), obj, f"{where}.extract.version")))
    if not refs:
        raise SpecError(obj, "spec.data", "an ExternalSecret needs at least one entry in data or dataFrom")
    return ExternalSecretSpec(namespace, name, target_name, refresh, (store_kind, store_name), tuple(refs))
