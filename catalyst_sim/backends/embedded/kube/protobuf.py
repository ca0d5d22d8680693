"""Decode the Kubernetes protobuf request bodies kubectl sends for built-in kinds.

``kubectl create configmap|secret|namespace|deployment|job|service|serviceaccount`` encode the new
object as ``application/vnd.kubernetes.protobuf`` (measured with kubectl 1.37) and, unlike for
CBOR, do not retry with JSON when the server answers 415. So the emulator reads these bodies: the
``k8s\\x00`` magic, a ``runtime.Unknown`` envelope (apiVersion, kind, raw) and the object's
message, walked with the field table in :mod:`._protoschema` and turned into the JSON the same
object would have had. Empty values are dropped the way Go's ``omitempty`` drops them. Responses
are always JSON; kubectl accepts that (it sends ``Accept: ...protobuf,application/json``).
"""

from __future__ import annotations

import base64
import json
import struct
from datetime import UTC, datetime
from functools import cache
from typing import Any

from ._protoschema import SCHEMA

MAGIC = b"k8s\x00"
KINDS: dict[tuple[str, str], str] = {
    ("v1", "Namespace"): "core.Namespace",
    ("v1", "ConfigMap"): "core.ConfigMap",
    ("v1", "Secret"): "core.Secret",
    ("v1", "ServiceAccount"): "core.ServiceAccount",
    ("v1", "Service"): "core.Service",
    ("v1", "Pod"): "core.Pod",
    ("apps/v1", "Deployment"): "apps.Deployment",
    ("apps/v1", "ReplicaSet"): "apps.ReplicaSet",
    ("apps/v1", "StatefulSet"): "apps.StatefulSet",
    ("batch/v1", "Job"): "batch.Job",
    ("v1", "ResourceQuota"): "core.ResourceQuota",
    ("rbac.authorization.k8s.io/v1", "Role"): "rbac.Role",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "rbac.RoleBinding",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "rbac.ClusterRole",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "rbac.ClusterRoleBinding",
    ("networking.k8s.io/v1", "Ingress"): "networking.Ingress",
}
# Pointer fields whose explicit zero/false means something (Go keeps them, omitempty or not).
_KEEP_ZERO = {
    "replicas",
    "parallelism",
    "completions",
    "backoffLimit",
    "terminationGracePeriodSeconds",
    "activeDeadlineSeconds",
    "ttlSecondsAfterFinished",
    "automountServiceAccountToken",
    "enableServiceLinks",
    "suspend",
    "exitCode",
}


class ProtobufUnsupported(ValueError):
    """A protobuf body we cannot read: the caller answers 415 like a server without that codec."""


@cache
def _fields(message: str) -> dict[int, tuple[str, str, str]]:
    spec = SCHEMA.get(message)
    if spec is None:
        raise ProtobufUnsupported(f"no protobuf schema for {message}")
    out: dict[int, tuple[str, str, str]] = {}
    for entry in spec.split():
        number, name, kind, *ref = entry.split(":")
        out[int(number)] = (name, kind, ref[0] if ref else "")
    return out


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufUnsupported("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise ProtobufUnsupported("varint too long")


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _records(data: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, raw value) for each record of a message."""
    out = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
            if pos > len(data):
                raise ProtobufUnsupported("truncated length-delimited field")
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ProtobufUnsupported(f"unsupported wire type {wire}")
        out.append((number, wire, value))
    return out


def _scalar(kind: str, wire: int, value: Any) -> Any:
    if kind == "s":
        return bytes(value).decode("utf-8")
    if kind == "y":
        return base64.b64encode(bytes(value)).decode()
    if kind == "b":
        return bool(value)
    if kind == "i":
        return _signed(value)
    if kind == "d":
        return struct.unpack("<d", value)[0] if wire == 1 else struct.unpack("<f", value)[0]
    raise ProtobufUnsupported(f"unknown scalar kind {kind}")


def _special(message: str, data: bytes) -> tuple[bool, Any]:
    """Messages with a custom JSON form: times, int-or-string, quantities, raw JSON."""
    if message in ("meta.Time", "meta.MicroTime"):
        fields = {n: v for n, _, v in _records(data)}
        seconds = _signed(fields.get(1, 0))
        if not seconds and not fields.get(2):
            return True, None
        moment = datetime.fromtimestamp(seconds, UTC)
        if message == "meta.MicroTime":
            micros = _signed(fields.get(2, 0)) // 1000
            return True, moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{micros:06d}Z"
        return True, moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if message == "intstr.IntOrString":
        fields = {n: v for n, _, v in _records(data)}
        if fields.get(1, 0) == 1:
            return True, bytes(fields.get(3, b"")).decode()
        return True, _signed(fields.get(2, 0))
    if message in ("resource.Quantity", "meta.Duration"):
        fields = {n: v for n, _, v in _records(data)}
        if message == "meta.Duration":
            return True, f"{_signed(fields.get(1, 0)) / 1e9:g}s"
        return True, bytes(fields.get(1, b"")).decode()
    if message in ("runtime.RawExtension", "meta.FieldsV1"):
        fields = {n: v for n, _, v in _records(data)}
        raw = bytes(fields.get(1, b""))
        return True, json.loads(raw) if raw else None
    return False, None


def _empty(value: Any, name: str) -> bool:
    if value is None or value == "" or value == {} or value == []:
        return True
    return (
        value is False or (isinstance(value, int) and not isinstance(value, bool) and value == 0)
    ) and name not in _KEEP_ZERO


def _message(message: str, data: bytes) -> Any:
    handled, value = _special(message, data)
    if handled:
        return value
    fields = _fields(message)
    out: dict[str, Any] = {}
    for number, wire, raw in _records(data):
        spec = fields.get(number)
        if spec is None:
            continue  # a field newer than our table: dropped, as an older server would
        name, kind, ref = spec
        if kind == "map":
            entry = {n: (w, v) for n, w, v in _records(raw)}
            key = bytes(entry.get(1, (2, b""))[1]).decode()
            wire_v, val = entry.get(2, (2, b""))
            decoded = _scalar(ref, wire_v, val) if ref in ("s", "y", "i", "b", "d") else _message(ref, val)
            out.setdefault(name, {})[key] = decoded
            continue
        repeated = kind.startswith("r")
        base = kind[1:] if repeated else kind
        if base == "m":
            decoded = _message(ref, raw)
        elif wire == 2 and base in ("i", "b", "d") and repeated:
            values: list[Any] = []
            pos = 0
            while pos < len(raw):
                if base == "d":
                    values.append(struct.unpack("<d", raw[pos : pos + 8])[0])
                    pos += 8
                else:
                    item, pos = _varint(raw, pos)
                    values.append(_scalar(base, 0, item))
            out.setdefault(name, []).extend(values)
            continue
        else:
            decoded = _scalar(base, wire, raw)
        if repeated:
            out.setdefault(name, []).append(decoded)
        else:
            out[name] = decoded
    return {k: v for k, v in out.items() if not _empty(v, k) or (isinstance(v, list) and v)}


def decode_object(data: bytes) -> dict[str, Any]:
    """A protobuf-encoded object as the JSON dict the same object serialises to."""
    if not data.startswith(MAGIC):
        raise ProtobufUnsupported("not a Kubernetes protobuf envelope (missing k8s\\0 magic)")
    envelope = {n: (w, v) for n, w, v in _records(data[len(MAGIC) :])}
    type_meta = {n: bytes(v).decode() for n, _, v in _records(envelope.get(1, (2, b""))[1])}
    api_version, kind = type_meta.get(1, ""), type_meta.get(2, "")
    if bytes(envelope.get(3, (2, b""))[1]):
        raise ProtobufUnsupported("content encodings are not supported")
    message = KINDS.get((api_version, kind))
    if message is None:
        raise ProtobufUnsupported(f"protobuf bodies for {api_version}/{kind} are not supported")
    body = _message(message, bytes(envelope.get(2, (2, b""))[1]))
    return {"apiVersion": api_version, "kind": kind, **body}
