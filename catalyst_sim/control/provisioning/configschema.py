"""configSchema: the JSON Schema every Application config is validated against (R-CS-01..04).

The provisioning service validates submitted config against the Blueprint's configSchema, applying
defaults, before anything is committed (R-CS-03, R-PROV-03), so a bad install leaves no repo behind.

Decisions (disclose per R-PRIN-03):

* **Draft 7.** R-CS-01 lists ``dependencies`` (conditional fields), which is a Draft-7 keyword that
  Draft 2020-12 split into ``dependentRequired``/``dependentSchemas``; Draft 7 also has ``const`` and
  ``if``/``then``/``else`` used by real Blueprints. A ``$schema`` naming another draft is rejected.
* **Every violation, with its JSON pointer.** ``replicas: 0`` and a missing ``adminEmail`` are
  reported together as ``/replicas`` and ``/adminEmail`` (a missing property points at where it
  belongs, not at its parent object).
* **Formats.** ``hostname`` (RFC 1123) and ``email`` use checkers written here: jsonschema's own
  hostname check needs the optional ``fqdn`` package, and its email check only looks for an ``@``.
  Other formats use jsonschema's checkers where available.
* **Defaults** are applied before validating: recursively through ``properties``, ``allOf``, array
  ``items``, local ``$ref``, and the one ``oneOf``/``anyOf`` branch the value matches; a missing object
  is created when its own properties have defaults. A default that violates its own schema is a
  schema error.
* **Strict keywords.** A keyword that is neither Draft 7 nor an ``x-`` vendor extension (e.g. a typo
  such as ``requried``) makes the schema invalid, as unknown fields do everywhere else in the
  harness. ``x-catalyst-*`` is a closed set: ``x-catalyst-ui-hint`` ∈ {password, domain-picker,
  application-ref} and ``x-catalyst-ui-filter`` {blueprint, environment: current}, the latter only
  next to ``application-ref`` (R-CS-02). Other vendors' ``x-*`` keys are ignored.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft7Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from catalyst_sim.model.base import CatalystError, Problem

DRAFT = Draft7Validator
DRAFT_URIS = {
    "http://json-schema.org/draft-07/schema#",
    "http://json-schema.org/draft-07/schema",
    "https://json-schema.org/draft-07/schema#",
    "https://json-schema.org/draft-07/schema",
}
UI_HINTS = ("password", "domain-picker", "application-ref")
UI_FILTER_KEYS = ("blueprint", "environment")
UI_FILTER_ENVIRONMENTS = ("current",)
CATALYST_EXTENSIONS = ("x-catalyst-ui-hint", "x-catalyst-ui-filter")

_ANNOTATIONS = {
    "$schema",
    "$id",
    "$comment",
    "definitions",
    "title",
    "description",
    "default",
    "examples",
    "readOnly",
    "writeOnly",
    "contentMediaType",
    "contentEncoding",
}
KNOWN_KEYWORDS = frozenset(set(DRAFT.VALIDATORS) | _ANNOTATIONS)
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "definitions")
_SUBSCHEMA_SINGLE = (
    "additionalProperties",
    "additionalItems",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
)
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf")

# ------------------------------------------------------------------ formats

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")


def is_hostname(value: object) -> bool:
    """RFC 1123 host name: dot-separated labels of 1-63 [A-Za-z0-9-], no edge hyphens, ≤253 chars."""
    if not isinstance(value, str):
        return True  # formats only constrain strings
    name = value[:-1] if value.endswith(".") else value
    if not name or len(name) > 253:
        return False
    return all(_LABEL.match(label) for label in name.split("."))


def is_email(value: object) -> bool:
    """``local@host``: a dot-atom local part (≤64) and an RFC 1123 host name."""
    if not isinstance(value, str):
        return True
    local, sep, host = value.rpartition("@")
    if not sep or not local or len(local) > 64:
        return False
    return bool(_LOCAL_PART.match(local)) and is_hostname(host) and not host.endswith(".")


def format_checker() -> FormatChecker:
    checker = FormatChecker()
    checker.checks("hostname")(is_hostname)
    checker.checks("email")(is_email)
    return checker


FORMAT_CHECKER = format_checker()

# ------------------------------------------------------------------ helpers


def pointer(parts: Any) -> str:
    """JSON pointer (RFC 6901) for a sequence of keys/indexes; ``""`` for the root."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _dotted(base: str, parts: Any) -> str:
    out = base
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _resolve_ref(schema: Any, root: Mapping[str, Any]) -> Any:
    """Follow local ``$ref`` (``#/definitions/x``); other refs are left alone."""
    seen = 0
    while (
        isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str) and schema["$ref"].startswith("#")
    ):
        seen += 1
        if seen > 32:
            return {}
        target: Any = root
        for raw in schema["$ref"][1:].split("/")[1:]:
            key = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(target, Mapping) and key in target:
                target = target[key]
            elif isinstance(target, list) and key.isdigit() and int(key) < len(target):
                target = target[int(key)]
            else:
                return {}
        schema = target
    return schema


def _subschemas(schema: Mapping[str, Any]) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """(relative location, subschema) for every place a Draft-7 keyword holds a schema."""
    for key in _SUBSCHEMA_MAPS:
        value = schema.get(key)
        if isinstance(value, Mapping):
            for name, sub in value.items():
                yield (key, name), sub
    for key in _SUBSCHEMA_SINGLE:
        if key in schema:
            yield (key,), schema[key]
    for key in _SUBSCHEMA_LISTS:
        value = schema.get(key)
        if isinstance(value, list):
            for i, sub in enumerate(value):
                yield (key, i), sub
    items = schema.get("items")
    if isinstance(items, list):
        for i, sub in enumerate(items):
            yield ("items", i), sub
    elif items is not None:
        yield ("items",), items
    deps = schema.get("dependencies")
    if isinstance(deps, Mapping):
        for name, sub in deps.items():
            if isinstance(sub, Mapping | bool):
                yield ("dependencies", name), sub


# ------------------------------------------------------------------ schema checks


def check_schema(
    schema: Any, *, object: str = "", source: str = "", field: str = "spec.configSchema"
) -> list[Problem]:
    """Every reason ``schema`` is not a usable configSchema (empty list when it is)."""

    def problem(message: str, parts: Any = ()) -> Problem:
        return Problem(message=message, field=_dotted(field, parts), object=object, source=source)

    if not isinstance(schema, Mapping):
        return [problem(f"configSchema must be a JSON Schema object, not {type(schema).__name__}")]
    problems: list[Problem] = []
    declared = schema.get("$schema")
    if declared is not None and declared not in DRAFT_URIS:
        problems.append(
            problem(f"unsupported $schema {declared!r}: configSchema is JSON Schema draft-07", ("$schema",))
        )
    root_type = schema.get("type")
    if root_type is not None and root_type != "object":
        problems.append(
            problem(f"the root of a configSchema must be of type 'object', not {root_type!r}", ("type",))
        )
    meta = DRAFT(DRAFT.META_SCHEMA)
    meta_errors = sorted(meta.iter_errors(schema), key=lambda e: [str(p) for p in e.absolute_path])
    for err in meta_errors:
        problems.append(problem(err.message, tuple(err.absolute_path)))
    # Defaults are only checked against a schema that is itself well-formed (jsonschema would crash).
    _walk_schema(schema, (), schema, problems, problem, check_defaults=not meta_errors)
    return problems


def _walk_schema(
    node: Any,
    at: tuple[Any, ...],
    root: Mapping[str, Any],
    problems: list[Problem],
    problem: Any,
    *,
    check_defaults: bool,
) -> None:
    if not isinstance(node, Mapping):
        return
    for key in node:
        if not isinstance(key, str):
            problems.append(problem(f"keyword {key!r} must be a string", at))
        elif key.startswith("x-catalyst-"):
            if key not in CATALYST_EXTENSIONS:
                problems.append(
                    problem(
                        f"unknown Catalyst extension {key!r} (known: {', '.join(CATALYST_EXTENSIONS)})",
                        (*at, key),
                    )
                )
        elif key.startswith("x-"):
            continue
        elif key not in KNOWN_KEYWORDS:
            problems.append(
                problem(
                    f"unknown JSON Schema keyword {key!r} (draft-07; vendor extensions start with 'x-')",
                    (*at, key),
                )
            )
    hint = node.get("x-catalyst-ui-hint")
    if "x-catalyst-ui-hint" in node and hint not in UI_HINTS:
        problems.append(
            problem(
                f"x-catalyst-ui-hint must be one of {', '.join(UI_HINTS)}, not {hint!r}",
                (*at, "x-catalyst-ui-hint"),
            )
        )
    if hint in {"password", "domain-picker", "application-ref"} and node.get("type", "string") != "string":
        problems.append(problem(f"x-catalyst-ui-hint {hint!r} needs type 'string'", (*at, "type")))
    if "x-catalyst-ui-filter" in node:
        flt = node["x-catalyst-ui-filter"]
        loc = (*at, "x-catalyst-ui-filter")
        if hint != "application-ref":
            problems.append(
                problem("x-catalyst-ui-filter only applies with x-catalyst-ui-hint: application-ref", loc)
            )
        if not isinstance(flt, Mapping):
            problems.append(problem("x-catalyst-ui-filter must be an object {blueprint, environment}", loc))
        else:
            for k in flt:
                if k not in UI_FILTER_KEYS:
                    problems.append(
                        problem(f"unknown field (allowed: {', '.join(UI_FILTER_KEYS)})", (*loc, k))
                    )
            bp = flt.get("blueprint")
            if bp is not None and not (isinstance(bp, str) and bp.startswith("bp-")):
                problems.append(
                    problem(f"blueprint must name a Blueprint (bp-*), not {bp!r}", (*loc, "blueprint"))
                )
            env = flt.get("environment")
            if env is not None and env not in UI_FILTER_ENVIRONMENTS:
                problems.append(
                    problem(
                        f"environment must be one of {', '.join(UI_FILTER_ENVIRONMENTS)}, not {env!r}",
                        (*loc, "environment"),
                    )
                )
    if check_defaults and "default" in node:
        sub = _standalone({k: v for k, v in node.items() if k != "default"}, root)
        errors = list(DRAFT(sub, format_checker=FORMAT_CHECKER).iter_errors(node["default"]))
        for err in errors[:1]:
            problems.append(
                problem(
                    f"default {node['default']!r} does not satisfy its own schema: {err.message}",
                    (*at, "default"),
                )
            )
    for rel, sub in _subschemas(node):
        _walk_schema(sub, (*at, *rel), root, problems, problem, check_defaults=check_defaults)


def _standalone(schema: Any, root: Mapping[str, Any]) -> Any:
    """A subschema made validatable on its own: the root's ``definitions`` travel with it so that
    local ``#/definitions/x`` references still resolve."""
    if (
        isinstance(schema, Mapping)
        and isinstance(root.get("definitions"), Mapping)
        and "definitions" not in schema
    ):
        return {"definitions": root["definitions"], **schema}
    return schema


def _matches(schema: Any, value: Any, root: Mapping[str, Any]) -> bool:
    return bool(DRAFT(_standalone(_resolve_ref(schema, root), root)).is_valid(value))


# ------------------------------------------------------------------ defaults

_ABSENT = object()


def apply_defaults(schema: Mapping[str, Any], config: Any) -> Any:
    """A copy of ``config`` with every applicable ``default`` filled in (see module doc)."""
    result = _defaults(schema, copy.deepcopy(config) if config is not None else {}, schema)
    return {} if result is _ABSENT else result


def _defaults(schema: Any, value: Any, root: Mapping[str, Any]) -> Any:
    schema = _resolve_ref(schema, root)
    if not isinstance(schema, Mapping):
        return value
    if value is _ABSENT:
        if "default" not in schema:
            return _ABSENT
        value = copy.deepcopy(schema["default"])
    if isinstance(value, dict):
        for name, sub in (schema.get("properties") or {}).items():
            current = value.get(name, _ABSENT)
            filled = _defaults(sub, current, root)
            if filled is not _ABSENT:
                value[name] = filled
            elif _is_object_schema(_resolve_ref(sub, root)):
                created = _defaults(sub, {}, root)
                if isinstance(created, dict) and created:
                    value[name] = created
        for sub in schema.get("allOf") or []:
            value = _defaults(sub, value, root)
        for key in ("oneOf", "anyOf"):
            branches = schema.get(key) or []
            matching = [b for b in branches if _matches(b, value, root)]
            if len(matching) == 1:
                value = _defaults(matching[0], value, root)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        value = [_defaults(schema["items"], item, root) for item in value]
    return value


def _is_object_schema(schema: Any) -> bool:
    return isinstance(schema, Mapping) and (schema.get("type") == "object" or "properties" in schema)


# ------------------------------------------------------------------ validation


def _describe(err: ValidationError) -> tuple[str, str]:
    """(JSON pointer, message) for one violation, pointing at the offending property."""
    path = list(err.absolute_path)
    message = err.message
    if err.validator == "required" and isinstance(err.instance, Mapping):
        missing = [p for p in err.validator_value if p not in err.instance and repr(p) in err.message]
        if missing:
            path.append(missing[0])
    elif err.validator == "dependencies" and isinstance(err.instance, Mapping):
        # "'cert' is a dependency of 'tls'": point at the missing property, like ``required``.
        for trigger, needed in err.validator_value.items():
            if trigger in err.instance and isinstance(needed, list):
                missing = [p for p in needed if p not in err.instance and repr(p) in err.message]
                if missing:
                    path.append(missing[0])
                    break
    elif err.validator in {"oneOf", "anyOf"} and err.context:
        by_branch: dict[int, list[ValidationError]] = {}
        for sub in err.context:
            by_branch.setdefault(int(sub.relative_schema_path[0]), []).append(sub)
        options = []
        for index in sorted(by_branch):
            sub_msgs = []
            for sub in by_branch[index][:3]:
                sub_ptr, sub_msg = _describe(sub)
                sub_msgs.append(f"{sub_ptr or '/'}: {sub_msg}" if sub_ptr else sub_msg)
            options.append(f"option {index + 1}: " + ", ".join(sub_msgs))
        word = "exactly one" if err.validator == "oneOf" else "at least one"
        message = f"must match {word} of the allowed shapes ({'; '.join(options)})"
    elif err.validator == "format":
        message = f"{err.instance!r} is not a valid {err.validator_value}"
    return pointer(path), message


def config_problems(
    schema: Mapping[str, Any], config: Any, *, object: str = "", source: str = ""
) -> list[Problem]:
    """Every violation of ``schema`` by ``config`` (defaults NOT applied here)."""
    if not isinstance(config, Mapping):
        return [
            Problem(
                message=f"config must be an object, not {type(config).__name__}",
                field="",
                object=object,
                source=source,
            )
        ]
    validator = DRAFT(schema, format_checker=FORMAT_CHECKER)
    problems = []
    errors = sorted(validator.iter_errors(config), key=lambda e: (pointer(e.absolute_path), str(e.validator)))
    for err in errors:
        where, message = _describe(err)
        problems.append(Problem(message=message, field=where or "/", object=object, source=source))
    return problems


def validate_config(schema: Mapping[str, Any] | None, config: Any, *, object: str) -> dict[str, Any]:
    """Apply defaults, validate, and return the defaulted config (R-CS-03).

    Raises :class:`CatalystError` (code ``InvalidSchema``) if the schema itself is unusable, or
    (code ``Invalid``) listing every violation with ``field`` = the JSON pointer (``/replicas``).
    """
    if schema is None:
        schema = {"type": "object"}
    schema_errors = check_schema(schema, object=object)
    if schema_errors:
        raise CatalystError(schema_errors, code="InvalidSchema")
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        raise CatalystError.single(
            f"config must be an object, not {type(config).__name__}", object=object, field="/"
        )
    defaulted = apply_defaults(schema, dict(config))
    problems = config_problems(schema, defaulted, object=object)
    if problems:
        raise CatalystError(problems, code="Invalid")
    return defaulted


# ------------------------------------------------------------------ application references


@dataclass(frozen=True)
class ApplicationRef:
    """A config value the schema marks ``x-catalyst-ui-hint: application-ref`` (R-CS-02, R-DEP-05)."""

    pointer: str
    value: Any
    blueprint: str | None = None  # x-catalyst-ui-filter.blueprint
    environment: str | None = None  # x-catalyst-ui-filter.environment ("current")


def application_refs(schema: Mapping[str, Any], config: Any) -> list[ApplicationRef]:
    """Every application-ref value present in ``config``; in ``oneOf``/``anyOf`` only the branches
    the config actually matches count, so an ``embedded`` Postgres never demands a ``ref``."""
    found: list[ApplicationRef] = []
    _find_refs(schema, config, (), schema, found)
    unique: dict[str, ApplicationRef] = {}
    for ref in found:
        unique.setdefault(ref.pointer, ref)
    return list(unique.values())


def _find_refs(
    schema: Any, value: Any, at: tuple[Any, ...], root: Mapping[str, Any], out: list[ApplicationRef]
) -> None:
    schema = _resolve_ref(schema, root)
    if not isinstance(schema, Mapping) or value is _ABSENT:
        return
    if schema.get("x-catalyst-ui-hint") == "application-ref" and isinstance(value, str) and value:
        flt = schema.get("x-catalyst-ui-filter") or {}
        out.append(ApplicationRef(pointer(at), value, flt.get("blueprint"), flt.get("environment")))
    if isinstance(value, Mapping):
        for name, sub in (schema.get("properties") or {}).items():
            if name in value:
                _find_refs(sub, value[name], (*at, name), root, out)
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(value):
            _find_refs(schema["items"], item, (*at, i), root, out)
    for sub in schema.get("allOf") or []:
        _find_refs(sub, value, at, root, out)
    for key in ("oneOf", "anyOf"):
        for sub in schema.get(key) or []:
            if _matches(sub, value, root):
                _find_refs(sub, value, at, root, out)
