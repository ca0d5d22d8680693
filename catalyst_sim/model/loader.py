"""Load Catalyst CRs from YAML into typed objects, and write them back as stable YAML.

Fixtures, Git commits and API bodies all pass through here, so every error names where it is: the
file with its line (``policies/acme-prod-policy.yaml:14``), the object (``Environment/acme-prod`` or
``document 2``) and the field path (``spec.rules[1].duration``). All problems of all documents are
collected and raised as one :class:`CatalystError`, so a broken fixture is fixed in one pass.

The loader checks what no single kind can: YAML syntax, duplicate keys (PyYAML would silently keep
the last), that a document is a mapping, that ``kind`` is known and ``apiVersion`` is in the
``catalyst.openova.io`` group, and that an object is not defined twice. The exact ``apiVersion`` of a
kind is the kind's own rule (R-CRD-01; Blueprint has its own normalization path for R-BP-08).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from catalyst_sim.model import resources
from catalyst_sim.model.base import (
    API_GROUP,
    API_VERSION,
    KINDS,
    CatalystError,
    CatalystObject,
    Problem,
    field_path,
    problems_from_validation,
)

try:  # the Blueprint kind is optional here: it registers itself when its module exists
    importlib.import_module("catalyst_sim.model.blueprint")
except ModuleNotFoundError as err:  # pragma: no cover - depends on the checkout
    if err.name != "catalyst_sim.model.blueprint":
        raise

T = TypeVar("T", bound=CatalystObject)
Path_ = tuple[str | int, ...]
YAML_SUFFIXES = (".yaml", ".yml")


# --------------------------------------------------------------------------------------------------
# YAML with positions


def _positions(node: yaml.Node, path: Path_, out: dict[Path_, int],
               problems: list[tuple[Path_, int, str]]) -> None:
    """Record the 1-based line of every field path and any duplicate mapping keys."""
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            line = key_node.start_mark.line + 1
            if key is None:
                continue
            child = (*path, key)
            if key in seen:
                problems.append((child, line, f"duplicate key {key!r} (first defined on line {seen[key]}); "
                                              "YAML would silently keep only the last value"))
            seen.setdefault(key, line)
            out[child] = line
            _positions(value_node, child, out, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _positions(item, (*path, index), out, problems)


@dataclasses.dataclass
class _Document:
    index: int  # 1-based within its source
    line: int
    data: Any
    lines: dict[Path_, int]
    duplicate_keys: list[tuple[Path_, int, str]]


def _documents(text: str, source: str, problems: list[Problem]) -> Iterator[_Document]:
    """Compose documents one by one so that those before a syntax error are still checked."""
    loader = yaml.SafeLoader(text)
    index = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            index += 1
            if node is None:  # pragma: no cover - check_node guarantees a node
                continue
            lines: dict[Path_, int] = {}
            dups: list[tuple[Path_, int, str]] = []
            _positions(node, (), lines, dups)
            try:
                data = yaml.SafeLoader("").construct_document(node)
            except yaml.MarkedYAMLError as err:
                problems.append(_yaml_problem(err, source, f"document {index}"))
                continue
            yield _Document(index, node.start_mark.line + 1, data, lines, dups)
    except yaml.MarkedYAMLError as err:
        problems.append(_yaml_problem(err, source, f"document {index + 1}"))
    finally:
        loader.dispose()


def _yaml_problem(err: yaml.MarkedYAMLError, source: str, obj: str) -> Problem:
    mark = err.problem_mark or err.context_mark
    where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
    what = " ".join(part for part in (err.context, err.problem) if part)
    return Problem(message=f"invalid YAML: {what}", object=obj, source=where)


# --------------------------------------------------------------------------------------------------
# Documents to objects


def _object_label(data: Any, index: int) -> str:
    if isinstance(data, dict):
        kind, meta = data.get("kind"), data.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        if isinstance(kind, str) and isinstance(name, str):
            namespace = meta.get("namespace") if kind == "Application" else None
            spec = data.get("spec")
            env = spec.get("environment") if kind == "Application" and isinstance(spec, dict) else None
            scope = namespace or env
            return f"{kind}/{scope}/{name}" if isinstance(scope, str) else f"{kind}/{name}"
    return f"document {index}"


def _line_for(lines: dict[Path_, int], loc: Path_, default: int) -> int:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return default


def _at(source: str, line: int | None) -> str:
    return f"{source}:{line}" if source and line else source


def _known_kinds() -> str:
    return ", ".join(sorted(KINDS))


def _header_problems(data: dict[str, Any]) -> tuple[type[CatalystObject] | None, list[tuple[Path_, str]]]:
    errors: list[tuple[Path_, str]] = []
    kind = data.get("kind")
    cls: type[CatalystObject] | None = None
    if kind is None:
        errors.append((("kind",), f"missing kind; expected one of {_known_kinds()}"))
    elif not isinstance(kind, str):
        errors.append((("kind",), f"kind must be a string, got {type(kind).__name__}"))
    elif kind not in KINDS:
        errors.append((("kind",), f"unknown kind {kind!r}; expected one of {_known_kinds()}"))
    else:
        cls = KINDS[kind]
    api_version = data.get("apiVersion")
    accepted = getattr(cls, "ACCEPTED_API_VERSIONS", None)
    if api_version is None:
        errors.append((("apiVersion",), f"missing apiVersion; expected {API_VERSION!r}"))
    elif not isinstance(api_version, str) or not api_version.startswith(f"{API_GROUP}/"):
        errors.append((("apiVersion",), f"apiVersion {api_version!r} is not in the {API_GROUP} group; "
                                        f"expected {API_VERSION!r} (R-CRD-01)"))
    elif accepted is not None and api_version not in accepted:
        errors.append((("apiVersion",), f"apiVersion {api_version!r} is not supported for {kind}; expected "
                                        f"{' or '.join(repr(v) for v in accepted)} (R-CRD-01)"))
    return cls, errors


def _validate(doc: _Document, source: str) -> tuple[CatalystObject | None, list[Problem]]:
    data = doc.data
    label = _object_label(data, doc.index)
    problems = [Problem(message=msg, field=field_path(path), object=label, source=_at(source, line))
                for path, line, msg in doc.duplicate_keys]
    if not isinstance(data, dict):
        got = "nothing" if data is None else f"a {type(data).__name__}"
        problems.append(Problem(message=f"a document must be a mapping with apiVersion, kind, metadata and "
                                        f"spec; got {got}", object=label, source=_at(source, doc.line)))
        return None, problems
    cls, header = _header_problems(data)
    for path, msg in header:
        problems.append(Problem(message=msg, field=field_path(path), object=label,
                                source=_at(source, _line_for(doc.lines, path, doc.line))))
    if cls is None:
        return None, problems
    try:
        obj = cls.model_validate(data)
    except ValidationError as err:
        header_fields = {field_path(path) for path, _ in header}
        for item, problem in zip(err.errors(), problems_from_validation(err, object=label), strict=True):
            if problem.field in header_fields:
                continue  # already reported, in the loader's words
            line = _line_for(doc.lines, tuple(item["loc"]), doc.line)
            problems.append(dataclasses.replace(problem, source=_at(source, line)))
        return None, problems
    if problems:
        return None, problems
    if isinstance(obj, resources.EnvironmentPolicy) and _in_policies_dir(source):
        problems += [dataclasses.replace(p, source=_at(source, doc.lines.get(("metadata", "name"), doc.line)))
                     for p in resources.problems_for_policy_file(obj, source, source=source)]
        if problems:
            return None, problems
    return obj, []


def _in_policies_dir(source: str) -> bool:
    parts = Path(source).parts
    return len(parts) >= 2 and parts[-2] == "policies" and source.endswith(YAML_SUFFIXES)


def _identity(obj: CatalystObject) -> tuple[str, str, str]:
    return obj.kind, obj.metadata.namespace or "", obj.metadata.name


def _load(texts: Iterable[tuple[str, str]]) -> list[CatalystObject]:
    problems: list[Problem] = []
    objects: list[CatalystObject] = []
    first_seen: dict[tuple[str, str, str], str] = {}
    for text, source in texts:
        for doc in _documents(text, source, problems):
            if doc.data is None:
                continue  # an empty document (e.g. a trailing '---') carries nothing
            obj, found = _validate(doc, source)
            problems += found
            if obj is None:
                continue
            where = _at(source, doc.line)
            key = _identity(obj)
            if key in first_seen:
                problems.append(Problem(message=f"{obj.ref()} is defined twice; first at {first_seen[key]}",
                                        field="metadata.name", object=obj.ref(), source=where))
                continue
            first_seen[key] = where
            objects.append(obj)
    if problems:
        raise CatalystError(problems)
    return objects


# --------------------------------------------------------------------------------------------------
# Public API


def load_text(text: str, source: str = "<string>") -> list[CatalystObject]:
    """Every object in a (multi-document) YAML string; ``source`` labels errors like a file name."""
    return _load([(text, source)])


load_objects = load_text  # alias used by the config store


def _read(path: Path) -> tuple[str, str]:
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except (OSError, UnicodeDecodeError) as err:
        raise CatalystError.single(f"cannot read file: {err}", source=str(path)) from None


def load_file(path: str | Path) -> list[CatalystObject]:
    """Every object in one YAML file."""
    return _load([_read(Path(path))])


def yaml_files(*paths: str | Path) -> list[Path]:
    """The YAML files named or contained (recursively, sorted) in ``paths``."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in YAML_SUFFIXES)
        else:
            files.append(path)
    return files


def load_paths(*paths: str | Path) -> list[CatalystObject]:
    """Every object in the given files and directories; problems of all files are raised together."""
    texts: list[tuple[str, str]] = []
    problems: list[Problem] = []
    for path in yaml_files(*paths):
        try:
            texts.append(_read(path))
        except CatalystError as err:
            problems += err.problems
    try:
        objects = _load(texts)
    except CatalystError as err:
        problems += err.problems
    if problems:
        raise CatalystError(problems)
    return objects


def load_one(text: str, source: str = "<string>", expect: type[T] | None = None) -> T:
    """Exactly one object, optionally of one kind (``load_one(text, expect=Environment)``)."""
    objects = load_text(text, source)
    if len(objects) != 1:
        raise CatalystError.single(f"expected exactly one object, found {len(objects)}", source=source)
    obj = objects[0]
    if expect is not None and not isinstance(obj, expect):
        raise CatalystError.single(f"expected a {expect.__name__}, found {obj.ref()}", field="kind",
                                   object=obj.ref(), source=source)
    return obj  # type: ignore[return-value]


def parse_object(data: Any, source: str = "", expect: type[T] | None = None) -> T:
    """Validate an already-parsed document (e.g. a JSON API body) with the loader's checks."""
    doc = _Document(1, 0, data, {}, [])
    obj, problems = _validate(doc, source)
    if problems:
        raise CatalystError(problems)
    assert obj is not None
    if expect is not None and not isinstance(obj, expect):
        raise CatalystError.single(f"expected a {expect.__name__}, found {obj.ref()}", field="kind",
                                   object=obj.ref(), source=source)
    return obj  # type: ignore[return-value]


class _Dumper(yaml.SafeDumper):
    """Kubernetes-style YAML: block style, lists indented under their key, literal multi-line strings."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _defaults_to_drop(model: BaseModel) -> dict[Any, Any]:
    """A pydantic ``exclude`` spec for fields that were never set and still hold their default."""
    drop: dict[Any, Any] = {}
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if (name not in model.model_fields_set and not info.is_required()
                and value == info.get_default(call_default_factory=True)):
            drop[name] = True
        elif nested := _nested_defaults_to_drop(value):
            drop[name] = nested
    return drop


def _nested_defaults_to_drop(value: Any) -> dict[Any, Any]:
    if isinstance(value, BaseModel):
        return _defaults_to_drop(value)
    if isinstance(value, list | tuple):
        items: Iterable[tuple[Any, Any]] = enumerate(value)
    elif isinstance(value, dict):
        items = value.items()
    else:
        return {}
    return {key: nested for key, item in items if (nested := _nested_defaults_to_drop(item))}


def to_document(obj: CatalystObject) -> dict[str, Any]:
    """The plain data of a CR as it is written to Git.

    Field order follows the model (apiVersion, kind, metadata, spec, status). ``None`` values, empty
    labels/annotations and defaults nobody set are left out, so a CR written by the control plane
    stays minimal, while a value given explicitly (or changed in place) is always written.
    """
    body = obj.model_dump(mode="json", by_alias=True, exclude_none=True, exclude=_defaults_to_drop(obj))
    meta = obj.metadata.model_dump(mode="json", by_alias=True, exclude_none=True)
    meta = {k: v for k, v in meta.items() if v not in ({}, [])}
    doc: dict[str, Any] = {"apiVersion": obj.apiVersion, "kind": obj.kind, "metadata": meta}
    doc.update({k: v for k, v in body.items() if k not in doc})
    return doc


def dump_yaml(objects: CatalystObject | Iterable[CatalystObject]) -> str:
    """Stable YAML text of one object, or of several as a multi-document stream."""
    items = [objects] if isinstance(objects, CatalystObject) else list(objects)
    return yaml.dump_all([to_document(o) for o in items], Dumper=_Dumper, sort_keys=False,
                         default_flow_style=False, allow_unicode=True, width=100,
                         explicit_start=len(items) > 1)
