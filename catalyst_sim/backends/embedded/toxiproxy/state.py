"""Toxiproxy's data model and request validation, apart from sockets and HTTP (moto-style).

A real client must not be able to tell this emulator from Shopify's Toxiproxy 2.x on the calls it
makes, so the JSON field names and order, the defaults (``downstream``, toxicity 1, name
``<type>_<stream>``), the order in which a request body is checked, and the error objects
(``{"error": "...", "status": N}`` with the same messages and status codes) follow the Go server.
Request bodies are checked the way Go's ``encoding/json`` checks them: unknown fields are ignored,
``null`` leaves a default alone, a value of the wrong JSON type is a 400 "bad request body".
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

#: The Toxiproxy release whose HTTP API and toxic semantics this emulator follows.
TOXIPROXY_VERSION = "2.12.0"

UPSTREAM = "upstream"
DOWNSTREAM = "downstream"
STREAMS = (UPSTREAM, DOWNSTREAM)

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class ToxiproxyError(Exception):
    """An API error as the real server reports it: a message and the HTTP status it is sent with."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def to_json(self) -> dict[str, Any]:
        return {"error": self.message, "status": self.status}


@dataclass(frozen=True)
class ErrorKind:
    """One of the Go server's fixed errors; ``detail`` is appended as Go's ``joinError`` does."""

    message: str
    status: int

    def error(self, detail: str | None = None) -> ToxiproxyError:
        return ToxiproxyError(self.message if detail is None else f"{self.message}: {detail}", self.status)


BAD_REQUEST_BODY = ErrorKind("bad request body", 400)
MISSING_FIELD = ErrorKind("missing required field", 400)
PROXY_NOT_FOUND = ErrorKind("proxy not found", 404)
PROXY_ALREADY_EXISTS = ErrorKind("proxy already exists", 409)
INVALID_STREAM = ErrorKind("stream was invalid, can be either upstream or downstream", 400)
INVALID_TOXIC_TYPE = ErrorKind("invalid toxic type", 400)
TOXIC_ALREADY_EXISTS = ErrorKind("toxic already exists", 409)
TOXIC_NOT_FOUND = ErrorKind("toxic not found", 404)


@dataclass(frozen=True)
class ToxicType:
    """A registered toxic type: its attributes (JSON name → default) in the order Go marshals them."""

    name: str
    go_struct: str
    go_int: str
    attributes: tuple[str, ...]


#: The toxics the real server registers. ``noop`` is registered too, so it is a valid type.
TOXIC_TYPES: dict[str, ToxicType] = {
    t.name: t
    for t in (
        ToxicType("latency", "LatencyToxic", "int64", ("latency", "jitter")),
        ToxicType("bandwidth", "BandwidthToxic", "int64", ("rate",)),
        ToxicType("slow_close", "SlowCloseToxic", "int64", ("delay",)),
        ToxicType("timeout", "TimeoutToxic", "int64", ("timeout",)),
        ToxicType("reset_peer", "ResetToxic", "int64", ("timeout",)),
        ToxicType("slicer", "SlicerToxic", "int", ("average_size", "size_variation", "delay")),
        ToxicType("limit_data", "LimitDataToxic", "int64", ("bytes",)),
        ToxicType("noop", "NoopToxic", "int64", ()),
    )
}


def _json_kind(value: Any) -> str:
    """The JSON type name Go's decoder uses in "cannot unmarshal X into ..." messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_error(value: Any, where: str, go_type: str) -> ToxiproxyError:
    return BAD_REQUEST_BODY.error(
        f"json: cannot unmarshal {_json_kind(value)} into {where} of type {go_type}"
    )


def _field(body: dict[str, Any], key: str) -> Any:
    """Go matches JSON keys to struct fields case-insensitively, preferring an exact match."""
    if key in body:
        return body[key]
    for k, v in body.items():
        if k.lower() == key:
            return v
    return None


def _opt_str(body: dict[str, Any], key: str, struct: str, default: str) -> str:
    value = _field(body, key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _type_error(value, f"Go struct field {struct}.{key}", "string")
    return value


def _opt_bool(body: dict[str, Any], key: str, struct: str, default: bool) -> bool:
    value = _field(body, key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _type_error(value, f"Go struct field {struct}.{key}", "bool")
    return value


def _opt_float(body: dict[str, Any], key: str, struct: str, default: float) -> float:
    value = _field(body, key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _type_error(value, f"Go struct field {struct}.{key}", "float32")
    return float(value)


def _require_object(body: Any, go_type: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _type_error(body, "Go value", go_type)
    return body


def decode_attributes(toxic_type: ToxicType, raw: Any, base: dict[str, int]) -> dict[str, int]:
    """Merge a request's ``attributes`` onto ``base`` the way Go decodes JSON into the toxic struct.

    Only integers fit (Go's fields are int64/int: ``1.5`` and ``"100"`` are 400s), unknown keys are
    ignored, and a missing key keeps its current value — which is what makes a toxic update partial.
    """
    merged = dict(base)
    if raw is None:
        return merged
    if not isinstance(raw, dict):
        raise _type_error(raw, "Go struct field ToxicWrapper.attributes", f"toxics.{toxic_type.go_struct}")
    for attr in toxic_type.attributes:
        value = _field(raw, attr)
        if value is None:
            continue
        where = f"Go struct field {toxic_type.go_struct}.attributes.{attr}"
        if isinstance(value, bool) or not isinstance(value, int) or not _INT64_MIN <= value <= _INT64_MAX:
            raise _type_error(value, where, toxic_type.go_int)
        merged[attr] = value
    return merged


def go_float(value: float) -> float | int:
    """Render a float as Go's encoder does: 1.0 is written ``1``."""
    return int(value) if value.is_integer() else value


@dataclass(eq=False)
class Toxic:
    """One toxic on a proxy. ``stream`` keeps the caller's spelling, as the real one does."""

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, int]

    @property
    def direction(self) -> str:
        """``upstream`` (client → server) or ``downstream`` (server → client)."""
        return self.stream.lower()

    def to_json(self) -> dict[str, Any]:
        return {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": go_float(self.toxicity),
        }

    def apply_update(self, body: Any) -> None:
        """Apply ``POST|PATCH /proxies/{p}/toxics/{t}``: attributes and toxicity only, all-or-nothing.

        The real server ignores ``name``, ``type`` and ``stream`` in an update; so do we.
        """
        obj = _require_object(body, "struct { Attributes interface {}; Toxicity float32 }")
        toxic_type = TOXIC_TYPES[self.type]
        attributes = decode_attributes(toxic_type, _field(obj, "attributes"), self.attributes)
        toxicity = _opt_float(
            obj, "toxicity", "struct { Attributes interface {}; Toxicity float32 }", self.toxicity
        )
        self.attributes = attributes
        self.toxicity = toxicity


def parse_toxic(body: Any, existing_names: Iterable[str]) -> Toxic:
    """Validate ``POST /proxies/{p}/toxics`` in the real server's order.

    Body shape (400) → stream (400) → default name → type (400) → duplicate name in either
    stream (409) → attributes (400). Toxicity is not range-checked by the real server either: a
    value above 1 always applies, a negative one never does.
    """
    obj = _require_object(body, "toxics.ToxicWrapper")
    name = _opt_str(obj, "name", "ToxicWrapper", "")
    type_name = _opt_str(obj, "type", "ToxicWrapper", "")
    stream = _opt_str(obj, "stream", "ToxicWrapper", DOWNSTREAM)
    toxicity = _opt_float(obj, "toxicity", "ToxicWrapper", 1.0)
    raw_attributes = _field(obj, "attributes")
    if raw_attributes is not None and not isinstance(raw_attributes, dict):
        raise _type_error(raw_attributes, "Go struct field ToxicWrapper.attributes", "toxics.NoopToxic")
    if stream.lower() not in STREAMS:
        raise INVALID_STREAM.error()
    if not name:
        name = f"{type_name}_{stream}"
    toxic_type = TOXIC_TYPES.get(type_name)
    if toxic_type is None:
        raise INVALID_TOXIC_TYPE.error()
    if name in set(existing_names):
        raise TOXIC_ALREADY_EXISTS.error()
    defaults = dict.fromkeys(toxic_type.attributes, 0)
    attributes = decode_attributes(toxic_type, raw_attributes, defaults)
    return Toxic(name=name, type=type_name, stream=stream, toxicity=toxicity, attributes=attributes)


@dataclass(eq=False)
class Proxy:
    """One proxy. ``listen`` is rewritten to the bound address (port 0 → the OS's port) on start."""

    name: str
    listen: str
    upstream: str
    enabled: bool = False
    toxics: list[Toxic] = field(default_factory=list)

    def toxic(self, name: str) -> Toxic | None:
        return next((t for t in self.toxics if t.name == name), None)

    def ordered_toxics(self) -> list[Toxic]:
        """Toxics as the real server lists them: the upstream chain, then the downstream chain."""
        return [t for d in STREAMS for t in self.toxics if t.direction == d]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [t.to_json() for t in self.ordered_toxics()],
        }


@dataclass(frozen=True)
class ProxyInput:
    """A validated create/populate request."""

    name: str
    listen: str
    upstream: str
    enabled: bool


def parse_proxy_create(body: Any) -> ProxyInput:
    """``POST /proxies``: name and upstream required, ``enabled`` defaults to true."""
    obj = _require_object(body, "toxiproxy.Proxy")
    name = _opt_str(obj, "name", "Proxy", "")
    listen = _opt_str(obj, "listen", "Proxy", "")
    upstream = _opt_str(obj, "upstream", "Proxy", "")
    enabled = _opt_bool(obj, "enabled", "Proxy", True)
    if not name:
        raise MISSING_FIELD.error("name")
    if not upstream:
        raise MISSING_FIELD.error("upstream")
    return ProxyInput(name, listen, upstream, enabled)


def parse_proxy_update(body: Any, current: Proxy) -> tuple[str, str, bool]:
    """``POST|PATCH /proxies/{p}``: listen, upstream, enabled, each defaulting to the current value."""
    obj = _require_object(body, "toxiproxy.Proxy")
    return (
        _opt_str(obj, "listen", "Proxy", current.listen),
        _opt_str(obj, "upstream", "Proxy", current.upstream),
        _opt_bool(obj, "enabled", "Proxy", current.enabled),
    )


def parse_populate(body: Any) -> list[ProxyInput]:
    """``POST /populate``: a JSON array, every entry checked before any proxy is touched."""
    go_type = "[]struct { toxiproxy.Proxy; Enabled *bool }"
    if not isinstance(body, list):
        raise _type_error(body, "Go value", go_type)
    inputs: list[ProxyInput] = []
    for index, entry in enumerate(body, start=1):
        if entry is None:
            entry = {}
        obj = _require_object(entry, go_type)
        name = _opt_str(obj, "name", "Proxy", "")
        listen = _opt_str(obj, "listen", "Proxy", "")
        upstream = _opt_str(obj, "upstream", "Proxy", "")
        enabled = _opt_bool(obj, "enabled", "Proxy", True)
        if not name:
            raise MISSING_FIELD.error(f"name at proxy {index}")
        if not upstream:
            raise MISSING_FIELD.error(f"upstream at proxy {index}")
        inputs.append(ProxyInput(name, listen, upstream, enabled))
    return inputs


def split_host_port(address: str) -> tuple[str, int]:
    """Split ``host:port`` / ``[v6]:port`` like Go's ``net.SplitHostPort`` + port lookup.

    Errors are 500s carrying Go's wording, because that is what the real server answers when it
    cannot listen on the address it was given.
    """
    if address.startswith("["):
        end = address.find("]")
        if end < 0:
            raise _addr_error(address, "missing ']' in address")
        host, rest = address[1:end], address[end + 1 :]
        if not rest.startswith(":"):
            raise _addr_error(address, "missing port in address")
        port_text = rest[1:]
    else:
        if ":" not in address:
            raise _addr_error(address, "missing port in address")
        host, port_text = address.rsplit(":", 1)
        if ":" in host:
            raise _addr_error(address, "too many colons in address")
    if port_text.isdigit():
        port = int(port_text)
        if port > 65535:
            raise _addr_error(address, "invalid port")
        return host, port
    try:
        return host, socket.getservbyname(port_text, "tcp")
    except OSError:
        raise ToxiproxyError(f"lookup tcp/{port_text}: unknown port", 500) from None


def _addr_error(address: str, reason: str) -> ToxiproxyError:
    return ToxiproxyError(f"address {address}: {reason}", 500)


def join_host_port(host: str, port: int) -> str:
    """Format an address as Go's ``TCPAddr.String()``: IPv6 in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
