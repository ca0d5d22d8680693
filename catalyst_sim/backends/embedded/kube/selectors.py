"""Label and field selectors with the real API server's grammar and error messages.

Label selectors (``labelSelector=``): ``k``, ``!k``, ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``,
``k notin (a,b)``, plus ``k>n``/``k<n`` (numeric, as in apimachinery). Field selectors
(``fieldSelector=``): ``path=v``, ``path==v``, ``path!=v`` over the fields a resource declares
selectable; any other field is a 400 like upstream's "field label not supported". Controllers use
:func:`from_label_selector` to turn a ``spec.selector`` object into the same requirement list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import bad_request

_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("=", "in"):
            return present and labels[self.key] in self.values
        if self.op in ("!=", "notin"):
            return not present or labels[self.key] not in self.values
        if not present:
            return False
        try:
            have, want = int(labels[self.key]), int(self.values[0])
        except ValueError:
            return False
        return have > want if self.op == "gt" else have < want


LabelSelector = tuple[Requirement, ...]


def labels_match(selector: LabelSelector, labels: Mapping[str, str] | None) -> bool:
    labels = labels or {}
    return all(req.matches(labels) for req in selector)


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _check_key(key: str, raw: str) -> None:
    if not key or not _KEY.match(key):
        raise bad_request(
            f'unable to parse requirement: invalid label key "{key}": '
            f"name part must consist of alphanumeric characters, '-', '_' or '.' ({raw})"
        )


def _check_value(value: str, raw: str) -> None:
    if len(value) > 63 or not _VALUE.match(value):
        raise bad_request(
            f'unable to parse requirement: invalid label value: "{value}": '
            f"a valid label must be an empty string or consist of alphanumeric characters, "
            f"'-', '_' or '.' ({raw})"
        )


_SET_OP = re.compile(r"^\s*(?P<key>[^\s!=<>(),]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)\s*$")
_EQ_OP = re.compile(r"^\s*(?P<key>[^\s!=<>(),]+)\s*(?P<op>==|=|!=|>|<)\s*(?P<value>[^\s!=<>(),]*)\s*$")
_EXISTS = re.compile(r"^\s*(?P<neg>!?)\s*(?P<key>[^\s!=<>(),]+)\s*$")


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse ``labelSelector``; an unparsable selector is a 400 like the real server's."""
    if not text or not text.strip():
        return ()
    reqs: list[Requirement] = []
    for raw in _split_top_level(text):
        if not raw.strip():
            raise bad_request(f"unable to parse requirement: found '', expected: identifier ({text})")
        if m := _SET_OP.match(raw):
            key = m["key"]
            _check_key(key, raw)
            values = tuple(v.strip() for v in m["values"].split(",") if v.strip())
            for value in values:
                _check_value(value, raw)
            reqs.append(Requirement(key, m["op"], values))
        elif m := _EQ_OP.match(raw):
            key, op, value = m["key"], m["op"], m["value"]
            _check_key(key, raw)
            if op in (">", "<"):
                if not re.fullmatch(r"-?\d+", value):
                    raise bad_request(
                        f"unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer ({raw})"
                    )
                reqs.append(Requirement(key, "gt" if op == ">" else "lt", (value,)))
            else:
                _check_value(value, raw)
                reqs.append(Requirement(key, "!=" if op == "!=" else "=", (value,)))
        elif m := _EXISTS.match(raw):
            _check_key(m["key"], raw)
            reqs.append(Requirement(m["key"], "!exists" if m["neg"] else "exists"))
        else:
            raise bad_request(
                f"unable to parse requirement: {raw.strip()!r} is not a valid label selector requirement ({text})"
            )
    return tuple(reqs)


def from_label_selector(selector: Mapping[str, Any] | None) -> LabelSelector:
    """A ``metav1.LabelSelector`` object (matchLabels + matchExpressions) as requirements.

    An empty or missing selector matches everything, exactly as in controllers upstream.
    """
    if not selector:
        return ()
    reqs = [Requirement(k, "=", (str(v),)) for k, v in sorted((selector.get("matchLabels") or {}).items())]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}
    for expr in selector.get("matchExpressions") or []:
        op = ops.get(expr.get("operator", ""))
        if op is None:
            raise bad_request(f"{expr.get('operator')!r} is not a valid label selector operator")
        reqs.append(Requirement(expr.get("key", ""), op, tuple(expr.get("values") or ())))
    return tuple(reqs)


def selector_string(selector: Mapping[str, Any] | None) -> str:
    """Render a ``metav1.LabelSelector`` the way ``/scale`` status.selector and kubectl show it."""
    parts = []
    for req in from_label_selector(selector):
        if req.op == "=":
            parts.append(f"{req.key}={req.values[0]}")
        elif req.op in ("in", "notin"):
            parts.append(f"{req.key} {req.op} ({','.join(req.values)})")
        elif req.op == "exists":
            parts.append(req.key)
        elif req.op == "!exists":
            parts.append(f"!{req.key}")
    return ",".join(parts)


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    equal: bool
    value: str


FieldSelector = tuple[FieldRequirement, ...]
FieldGetter = Callable[[Mapping[str, Any]], str]


def parse_field_selector(text: str | None, supported: Mapping[str, FieldGetter]) -> FieldSelector:
    if not text or not text.strip():
        return ()
    reqs: list[FieldRequirement] = []
    for raw in text.split(","):
        m = re.match(r"^\s*([^=!\s]+)\s*(==|=|!=)\s*(.*?)\s*$", raw)
        if not m:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{raw}'")
        field, op, value = m.groups()
        if field not in supported:
            raise bad_request(f"field label not supported: {field}")
        reqs.append(FieldRequirement(field, op != "!=", value))
    return tuple(reqs)


def fields_match(selector: FieldSelector, obj: Mapping[str, Any], supported: Mapping[str, FieldGetter]) -> bool:
    for req in selector:
        have = supported[req.field](obj)
        if (have == req.value) != req.equal:
            return False
    return True


def dig(obj: Mapping[str, Any], path: str) -> str:
    """The string value at a dotted path, ``""`` when absent (how field selectors see missing fields)."""
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return ""
        current = current.get(part)
        if current is None:
            return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    return str(current)


def field_getters(paths: list[str]) -> dict[str, FieldGetter]:
    def getter(path: str) -> FieldGetter:
        return lambda obj: dig(obj, path)

    return {path: getter(path) for path in paths}
