"""Shared pieces of every Catalyst object model (R-CRD-01).

Every kind lives under ``catalyst.openova.io/v1alpha1``. Models forbid unknown fields so a typo in a
fixture or an API body is an error that names the field, never a silently ignored value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

API_GROUP = "catalyst.openova.io"
API_VERSION = f"{API_GROUP}/v1alpha1"


class Strict(BaseModel):
    """Base for every nested spec block: unknown fields are errors, field names as in the docs."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_assignment=True)


class ObjectMeta(Strict):
    name: str
    namespace: str | None = None
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an object: where (file, object, field path) and what."""

    message: str
    field: str = ""
    object: str = ""
    source: str = ""

    def __str__(self) -> str:
        where = [part for part in (self.source, self.object) if part]
        location = ": ".join(where)
        path = f" at {self.field}" if self.field else ""
        prefix = f"{location}{path}: " if location or path else ""
        return f"{prefix}{self.message}"

    def as_dict(self) -> dict[str, str]:
        return {"source": self.source, "object": self.object, "field": self.field, "message": self.message}


@dataclass
class CatalystError(Exception):
    """A user-facing error listing every problem found (never only the first)."""

    problems: list[Problem] = field(default_factory=list)
    code: str = "Invalid"

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        return "; ".join(str(p) for p in self.problems)

    @classmethod
    def single(cls, message: str, *, field: str = "", object: str = "", source: str = "",
               code: str = "Invalid") -> CatalystError:
        return cls([Problem(message=message, field=field, object=object, source=source)], code=code)


class NotFoundError(CatalystError):
    def __init__(self, message: str, *, object: str = "", field: str = "") -> None:
        super().__init__([Problem(message=message, object=object, field=field)], code="NotFound")


class ConflictError(CatalystError):
    def __init__(self, message: str, *, object: str = "", field: str = "") -> None:
        super().__init__([Problem(message=message, object=object, field=field)], code="Conflict")


def field_path(loc: tuple[Any, ...]) -> str:
    """Render a pydantic error location as a dotted path with list indexes: ``spec.depends[1].version``.

    Map keys that contain ``.``, ``/`` or spaces (label keys such as ``openova.io/tier``) are written in
    brackets, ``metadata.labels[openova.io/tier]``, so the path stays unambiguous.
    """
    out = ""
    for part in loc:
        if isinstance(part, int) or (isinstance(part, str) and any(c in part for c in "./ []")):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def problems_from_validation(err: ValidationError, *, object: str = "", source: str = "",
                             prefix: str = "") -> list[Problem]:
    problems = []
    for item in err.errors():
        path = field_path(tuple(item["loc"]))
        if prefix:
            path = f"{prefix}.{path}" if path else prefix
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        elif item["type"] in ("union_tag_invalid", "union_tag_not_found"):
            # A discriminated union: the problem is the discriminator field itself (spec.rules[2].kind).
            ctx = item.get("ctx", {})
            discriminator = str(ctx.get("discriminator", "")).strip("'\"")
            if discriminator.isidentifier():
                path = f"{path}.{discriminator}" if path else discriminator
            if item["type"] == "union_tag_invalid":
                message = (f"unknown {discriminator or 'tag'} {ctx.get('tag')!r}; expected one of "
                           f"{ctx.get('expected_tags')}")
            else:
                message = f"missing {discriminator or 'tag'}"
        problems.append(Problem(message=message, field=path, object=object, source=source))
    return problems


class CatalystObject(Strict):
    """A top-level Catalyst CR: ``apiVersion``, ``kind``, ``metadata``, ``spec`` (R-CRD-01)."""

    apiVersion: str = API_VERSION
    kind: str
    metadata: ObjectMeta

    @property
    def name(self) -> str:
        return self.metadata.name

    def ref(self) -> str:
        """How errors and reports name this object: ``Kind/name``."""
        return f"{self.kind}/{self.metadata.name}"


KINDS: dict[str, type[CatalystObject]] = {}


def register_kind(cls: type[CatalystObject]) -> type[CatalystObject]:
    """Class decorator: make a kind loadable by :mod:`catalyst_sim.model.loader`."""
    KINDS[cls.__name__] = cls
    return cls
