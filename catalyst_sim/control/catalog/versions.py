"""Blueprint version ranges (R-DEP-02, R-BP-06, D-07).

``depends[].version`` uses npm-style ranges (BLUEPRINT-AUTHORING §5): ``^1.4`` means ``>=1.4.0
<2.0.0`` and ``^1``/``^1.0`` mean ``>=1.0.0 <2.0.0``. Upgrade paths (``upgrades.from``) use x-ranges
such as ``1.2.x`` and ``0.x``. Both are parsed here into one representation so that resolution
("highest available version in range") and the D-07 intersection of two parents' ranges are exact.

Supported forms (npm semantics):

* any: ``*``, ``x``, ``X``, empty, ``latest``
* exact: ``1.4.0``, ``=1.4.0``, ``v1.4.0``
* x-ranges / partials: ``1.4``, ``1.4.x``, ``1``, ``1.x``, ``1.*``
* caret: ``^1.4.2``, ``^1.4``, ``^1``, ``^0.2.3`` (``<0.3.0``), ``^0.0.3`` (``<0.0.4``)
* tilde: ``~1.4.2``, ``~1.4`` (``<1.5.0``), ``~1`` (``<2.0.0``)
* comparisons: ``>=1.4``, ``>1.4`` (npm: ``>=1.5.0``), ``<2``, ``<=1.5`` (``<1.6.0``), joined by
  spaces or commas (AND)
* unions: ``^1.4 || ^2``

A range is a union of half-open intervals over :class:`semver.Version`. Pre-release versions only
satisfy a range that names them exactly; this keeps ``^1`` from resolving to ``2.0.0-rc.1`` (npm's
rule is similar in effect; ours is simpler and documented).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import semver

from catalyst_sim.model.base import CatalystError

_PARTIAL = re.compile(
    r"^v?(?P<major>0|[1-9]\d*|[xX*])(?:\.(?P<minor>0|[1-9]\d*|[xX*]))?(?:\.(?P<patch>0|[1-9]\d*|[xX*]))?"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+(?P<build>[0-9A-Za-z.-]+))?$"
)
_WILD = {"x", "X", "*"}


def parse_version(text: str | semver.Version) -> semver.Version:
    """Parse a full semver version (a leading ``v`` is tolerated); raise :class:`CatalystError`."""
    if isinstance(text, semver.Version):
        return text
    raw = str(text).strip()
    try:
        return semver.Version.parse(raw[1:] if raw[:1] in {"v", "V"} else raw)
    except (ValueError, TypeError):
        raise CatalystError.single(f"{text!r} is not a semantic version (MAJOR.MINOR.PATCH)") from None


def is_version(text: str) -> bool:
    try:
        parse_version(text)
    except CatalystError:
        return False
    return True


@dataclass(frozen=True)
class Interval:
    """``lo <= v < hi`` (each bound optional; inclusivity explicit so ``>1.4.2`` stays exact)."""

    lo: semver.Version | None = None
    lo_inclusive: bool = True
    hi: semver.Version | None = None
    hi_inclusive: bool = False
    exact_prerelease: bool = False  # the interval is ``=X.Y.Z-pre``: it may match that pre-release

    def contains(self, v: semver.Version) -> bool:
        if v.prerelease and not self.exact_prerelease:
            return False
        if self.lo is not None and (v < self.lo or (v == self.lo and not self.lo_inclusive)):
            return False
        return not (self.hi is not None and (v > self.hi or (v == self.hi and not self.hi_inclusive)))

    @property
    def empty(self) -> bool:
        if self.lo is None or self.hi is None:
            return False
        if self.lo > self.hi:
            return True
        return self.lo == self.hi and not (self.lo_inclusive and self.hi_inclusive)

    def intersect(self, other: Interval) -> Interval:
        lo, lo_inc = self.lo, self.lo_inclusive
        if other.lo is not None and (
            lo is None or other.lo > lo or (other.lo == lo and not other.lo_inclusive)
        ):
            lo, lo_inc = other.lo, other.lo_inclusive
        hi, hi_inc = self.hi, self.hi_inclusive
        if other.hi is not None and (
            hi is None or other.hi < hi or (other.hi == hi and not other.hi_inclusive)
        ):
            hi, hi_inc = other.hi, other.hi_inclusive
        return Interval(lo, lo_inc, hi, hi_inc, self.exact_prerelease or other.exact_prerelease)

    def __str__(self) -> str:
        if self.lo is not None and self.hi is not None and self.lo == self.hi:
            return f"={self.lo}"
        parts = []
        if self.lo is not None:
            parts.append(f"{'>=' if self.lo_inclusive else '>'}{self.lo}")
        if self.hi is not None:
            parts.append(f"{'<=' if self.hi_inclusive else '<'}{self.hi}")
        return " ".join(parts) or "*"


@dataclass(frozen=True)
class VersionRange:
    """A parsed range: the text it came from and the union of intervals it denotes."""

    text: str
    intervals: tuple[Interval, ...]

    @property
    def is_empty(self) -> bool:
        return not self.intervals

    def matches(self, version: str | semver.Version) -> bool:
        v = parse_version(version)
        return any(i.contains(v) for i in self.intervals)

    def intersect(self, other: VersionRange) -> VersionRange:
        """D-07: the versions both ranges allow. Empty when they share none."""
        parts = tuple(
            cut for a in self.intervals for b in other.intervals if not (cut := a.intersect(b)).empty
        )
        return VersionRange(f"{self.text} ∩ {other.text}", parts)

    def describe(self) -> str:
        """Normalized comparator form, e.g. ``>=1.5.0 <2.0.0``; ``(none)`` when empty."""
        if not self.intervals:
            return "(none)"
        return " || ".join(str(i) for i in self.intervals)

    def best(self, available: Iterable[str | semver.Version]) -> semver.Version | None:
        """Highest available version in range, or ``None``."""
        candidates = [v for v in (parse_version(a) for a in available) if self.matches(v)]
        return max(candidates) if candidates else None

    def __str__(self) -> str:
        return self.text


def _num(part: str | None) -> int | None:
    return None if part is None or part in _WILD else int(part)


def _comparator(token: str, original: str) -> Interval:
    """One comparator (no spaces) as an interval."""
    op_match = re.match(r"^(\^|~>?|>=|<=|>|<|=)?(.*)$", token)
    assert op_match is not None
    op, body = op_match.group(1) or "", op_match.group(2)
    m = _PARTIAL.match(body)
    if not m:
        raise CatalystError.single(
            f"version range {original!r}: {token!r} is not a version or version pattern"
        )
    major, minor, patch = _num(m["major"]), _num(m["minor"]), _num(m["patch"])
    # A wildcard in a position makes every later position a wildcard ("1.x.3" is "1.x").
    if major is None:
        minor = patch = None
    elif minor is None:
        patch = None
    pre = m["pre"]
    if pre and (minor is None or patch is None):
        raise CatalystError.single(
            f"version range {original!r}: a pre-release needs a full version in {token!r}"
        )
    full = major is not None and minor is not None and patch is not None
    base = semver.Version(major or 0, minor or 0, patch or 0, pre)

    if major is None:  # "*", ">=*", "^*": anything
        return Interval()
    if op == "^":
        if major > 0 or minor is None:
            hi = semver.Version(major + 1, 0, 0)
        elif minor > 0 or patch is None:
            hi = semver.Version(0, minor + 1, 0)
        else:
            hi = semver.Version(0, 0, (patch or 0) + 1)
        return Interval(base, True, hi, False)
    if op in {"~", "~>"}:
        hi = semver.Version(major + 1, 0, 0) if minor is None else semver.Version(major, minor + 1, 0)
        return Interval(base, True, hi, False)
    # The interval a partial denotes: "1.4" is [1.4.0, 1.5.0), "1" is [1.0.0, 2.0.0).
    if full:
        lo, hi_excl = base, None
    elif minor is None:
        lo, hi_excl = base, semver.Version(major + 1, 0, 0)
    else:
        lo, hi_excl = base, semver.Version(major, minor + 1, 0)
    if op in {"", "="}:
        if full:
            return Interval(lo, True, lo, True, exact_prerelease=bool(pre))
        return Interval(lo, True, hi_excl, False)
    if op == ">=":
        return Interval(lo, True)
    if op == ">":
        return Interval(lo, False) if full else Interval(hi_excl, True)
    if op == "<":
        return Interval(None, True, lo, False)
    # "<="
    return Interval(None, True, lo, True) if full else Interval(None, True, hi_excl, False)


def parse_range(text: str | None) -> VersionRange:
    """Parse a range (see module doc). ``None``/empty means any version (R-DEP-02 bare depends)."""
    original = "" if text is None else str(text)
    stripped = original.strip()
    if stripped in {"", "*", "x", "X", "latest"}:
        return VersionRange(stripped or "*", (Interval(),))
    intervals: list[Interval] = []
    for alternative in stripped.split("||"):
        alt = alternative.strip()
        if not alt:
            raise CatalystError.single(f"version range {original!r}: empty alternative around '||'")
        # ">= 1.4" is a common spelling; glue an operator to its operand before splitting on spaces.
        alt = re.sub(r"(\^|~>?|>=|<=|>|<|=)\s+", r"\1", alt)
        tokens = [t for t in re.split(r"[\s,]+", alt) if t]
        if len(tokens) == 3 and tokens[1] == "-":
            raise CatalystError.single(
                f"version range {original!r}: hyphen ranges are not supported; "
                f"write '>={tokens[0]} <={tokens[2]}'"
            )
        interval = Interval()
        for token in tokens:
            interval = interval.intersect(_comparator(token, original))
        if not interval.empty:
            intervals.append(interval)
    return VersionRange(stripped, tuple(intervals))


def as_range(value: str | VersionRange | None) -> VersionRange:
    return value if isinstance(value, VersionRange) else parse_range(value)


def intersect(a: str | VersionRange, b: str | VersionRange) -> VersionRange:
    """D-07: intersect two parents' ranges for one shared dependency."""
    return as_range(a).intersect(as_range(b))


def sort_versions(versions: Iterable[str]) -> list[str]:
    """Ascending semver order (not string order: 1.10.0 sorts after 1.9.0)."""
    return sorted(versions, key=parse_version)


def resolve(version_range: str | VersionRange | None, available: Iterable[str], *, subject: str = "") -> str:
    """The highest available version satisfying the range (R-DEP-02).

    Raises :class:`CatalystError` naming the range (and ``subject``, e.g. the Blueprint) and every
    available version, so the author can see why nothing matched.
    """
    rng = as_range(version_range)
    versions = list(available)
    best = rng.best(versions)
    if best is not None:
        return next(v for v in versions if parse_version(v) == best)
    what = f"{subject}: " if subject else ""
    listing = ", ".join(sort_versions(versions)) or "none"
    if rng.is_empty:
        detail = f"version range {rng.text!r} is empty (no version can satisfy it)"
    else:
        detail = f"no version satisfies {rng.text!r} ({rng.describe()})"
    raise CatalystError.single(f"{what}{detail}; available versions: {listing}", code="Unsatisfiable")


def upgrade_allowed(current: str, target: str, from_patterns: Iterable[str], blocks: Iterable[str]) -> bool:
    """R-BP-06 (inferred): an upgrade to ``target`` is allowed from ``current`` iff ``current``
    matches some ``upgrades.from`` pattern of the target version and no ``upgrades.blocks`` pattern.
    Re-applying the same version is always allowed; a downgrade never is.
    """
    cur, tgt = parse_version(current), parse_version(target)
    if cur == tgt:
        return True
    if tgt < cur:
        return False
    if any(parse_range(p).matches(cur) for p in blocks):
        return False
    return any(parse_range(p).matches(cur) for p in from_patterns)
