"""The Blueprint registry behind catalog-svc and blueprint-controller (R-CAT-01, R-CAT-02, R-BP-03).

blueprint-controller validates Blueprints before registering them (R-CAT-02); here that means every
file under a directory is parsed strictly (or through the R-BP-08 normaliser when ``lenient``), and
each Blueprint is checked beyond its shape: its configSchema is a usable JSON Schema (R-CS-01/02),
every ``depends[].version`` and ``upgrades`` pattern parses, every ``when`` and templated value is in
the D-06 language, and the manifest templates' placeholders parse. All problems of all files are
collected and raised together, each naming its file, object and field.

Several versions of one Blueprint may be registered (one file per version, or a multi-document
file). Lookups take a version range and return the highest satisfying version (R-DEP-02).

Visibility (R-BP-03): ``listed`` Blueprints are on the card grid for everyone; ``unlisted`` ones are
not listed but are installable by exact name; ``private`` ones exist only for their owning Org —
for anyone else they are indistinguishable from an unknown name, so their existence does not leak.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from catalyst_sim.control.catalog import expressions, versions
from catalyst_sim.control.provisioning.configschema import check_schema
from catalyst_sim.model.base import CatalystError, NotFoundError, Problem
from catalyst_sim.model.blueprint import Blueprint, normalize_blueprint, parse_blueprint

MANIFEST_ROOTS = ("values", "application", "dependencies")


def _inside_chart(file: Path, root: Path) -> bool:
    """Whether ``file`` belongs to a Helm chart (a directory with a Chart.yaml) below ``root``:
    a Helm-kind Blueprint keeps its chart beside it (``bp-x/blueprint.yaml``, ``bp-x/chart/``)."""
    return any((parent / "Chart.yaml").is_file() for parent in file.parents if parent != root
               and parent.is_relative_to(root))


@dataclass(frozen=True)
class RegisteredBlueprint:
    """One registered version: the Blueprint, where it came from, and the owning Org if private."""

    blueprint: Blueprint
    source: str = ""
    organization: str | None = None
    warnings: tuple[Problem, ...] = ()

    @property
    def name(self) -> str:
        return self.blueprint.name

    @property
    def version(self) -> str:
        return self.blueprint.version


def check_blueprint(bp: Blueprint, *, source: str = "") -> list[Problem]:
    """Semantic checks beyond the pydantic shape (see module doc). Empty list when all is well."""
    obj = bp.ref()
    problems = list(check_schema(bp.spec.configSchema, object=obj, source=source))

    def add(message: str, field_: str) -> None:
        problems.append(Problem(message=message, field=field_, object=obj, source=source))

    def guarded(field_: str, fn: Any, *args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except CatalystError as err:
            for p in err.problems:
                add(p.message, field_)

    for i, dep in enumerate(bp.spec.depends):
        at = f"spec.depends[{i}]"
        guarded(f"{at}.version", versions.parse_range, dep.version)
        guarded(f"{at}.when", expressions.check_when, dep.when)
        guarded(f"{at}.values", expressions.check_template, dep.values)
        if dep.blueprint == bp.name:
            add(f"{bp.name} depends on itself", f"{at}.blueprint")
        if dep.version.strip() and not _is_any(dep.version):
            try:
                if versions.parse_range(dep.version).is_empty:
                    add(f"version range {dep.version!r} can never be satisfied", f"{at}.version")
            except CatalystError:
                pass
    if bp.spec.upgrades:
        for key, patterns in (("from", bp.spec.upgrades.from_), ("blocks", bp.spec.upgrades.blocks)):
            for j, pattern in enumerate(patterns):
                guarded(f"spec.upgrades.{key}[{j}]", versions.parse_range, pattern)
    if bp.spec.manifests:
        for j, resource in enumerate(bp.spec.manifests.resources):
            guarded(
                f"spec.manifests.resources[{j}]", expressions.check_template, resource, roots=MANIFEST_ROOTS
            )
    for j, secret in enumerate(bp.spec.secrets):
        guarded(f"spec.secrets[{j}].path", expressions.check_template, secret.path, roots=MANIFEST_ROOTS)
    guarded("spec.outputs", expressions.check_template, bp.spec.outputs, roots=MANIFEST_ROOTS)
    if bp.visibility != "private" and bp.owner_organization:
        add("owner.organization only applies to private Blueprints", "spec.owner.organization")
    return problems


def _is_any(text: str) -> bool:
    return text.strip() in {"*", "x", "X", "latest"}


class BlueprintRegistry:
    """Every registered Blueprint version, indexed by name then version."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, RegisteredBlueprint]] = {}
        self.warnings: list[Problem] = []

    # ------------------------------------------------------------ loading

    @classmethod
    def from_directory(
        cls, path: str | Path, *, organization: str | None = None, lenient: bool = False
    ) -> BlueprintRegistry:
        registry = cls()
        registry.load_directory(path, organization=organization, lenient=lenient)
        return registry

    @classmethod
    def load(
        cls, path: str | Path, *, organization: str | None = None, lenient: bool = False
    ) -> BlueprintRegistry:
        """Alias of :meth:`from_directory`."""
        return cls.from_directory(path, organization=organization, lenient=lenient)

    def load_directory(
        self, path: str | Path, *, organization: str | None = None, lenient: bool = False
    ) -> list[RegisteredBlueprint]:
        """Load every ``*.yaml``/``*.yml`` under ``path`` (recursively, sorted). All or nothing:
        on any problem nothing is registered and one :class:`CatalystError` lists them all.

        ``organization`` marks the directory as that Org's ``shared-blueprints``: private Blueprints
        in it are owned by that Org. ``lenient`` accepts real-file shapes (R-BP-08) and turns
        semantic problems into warnings (``self.warnings``) instead of errors.
        """
        root = Path(path)
        if not root.is_dir():
            raise CatalystError.single(f"Blueprint directory {str(root)!r} does not exist", source=str(root))
        files = sorted(p for p in root.rglob("*")
                       if p.is_file() and p.suffix in {".yaml", ".yml"} and not _inside_chart(p, root))
        docs: list[tuple[str, Any]] = []
        problems: list[Problem] = []
        for file in files:
            try:
                loaded = list(yaml.safe_load_all(file.read_text(encoding="utf-8")))
            except yaml.YAMLError as err:
                mark = getattr(err, "problem_mark", None)
                where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
                problem = getattr(err, "problem", None) or str(err)
                problems.append(Problem(message=f"invalid YAML{where}: {problem}", source=str(file)))
                continue
            docs.extend((str(file), doc) for doc in loaded if doc is not None)
        entries, more = self._parse_docs(docs, organization=organization, lenient=lenient)
        problems.extend(more)
        if problems:
            raise CatalystError(problems, code="InvalidBlueprint")
        for entry in entries:
            self._insert(entry)
        return entries

    def load_documents(
        self, docs: Iterable[Any], *, source: str = "", organization: str | None = None, lenient: bool = False
    ) -> list[RegisteredBlueprint]:
        """Register already-parsed YAML documents (e.g. from a git commit), all or nothing."""
        entries, problems = self._parse_docs(
            [(source, d) for d in docs if d is not None], organization=organization, lenient=lenient
        )
        if problems:
            raise CatalystError(problems, code="InvalidBlueprint")
        for entry in entries:
            self._insert(entry)
        return entries

    def _parse_docs(
        self, docs: list[tuple[str, Any]], *, organization: str | None, lenient: bool
    ) -> tuple[list[RegisteredBlueprint], list[Problem]]:
        problems: list[Problem] = []
        entries: list[RegisteredBlueprint] = []
        pending: dict[tuple[str, str], str] = {}
        for source, doc in docs:
            kind = doc.get("kind") if isinstance(doc, dict) else None
            if kind != "Blueprint":
                name = doc.get("metadata", {}).get("name", "") if isinstance(doc, dict) else ""
                problems.append(
                    Problem(
                        message=f"expected kind Blueprint, got {kind!r}",
                        field="kind",
                        object=f"{kind or '?'}/{name}" if name else "",
                        source=source,
                    )
                )
                continue
            try:
                if lenient:
                    bp, warnings = normalize_blueprint(doc, source=source)
                else:
                    bp, warnings = parse_blueprint(doc, source=source), []
            except CatalystError as err:
                problems.extend(err.problems)
                continue
            semantic = check_blueprint(bp, source=source)
            if lenient:
                warnings = [*warnings, *semantic]
            else:
                problems.extend(semantic)
            owner = bp.owner_organization or (organization if bp.visibility == "private" else None)
            if bp.visibility == "private" and not owner:
                problems.append(
                    Problem(
                        message="a private Blueprint needs an owning Organization (load it from an "
                        "Org's shared-blueprints, or set spec.owner.organization)",
                        field="spec.owner.organization",
                        object=bp.ref(),
                        source=source,
                    )
                )
                continue
            key = (bp.name, bp.version)
            existing = self._entries.get(bp.name, {}).get(bp.version)
            where = pending.get(key) or (existing.source or "the registry" if existing else None)
            if where is not None:
                problems.append(
                    Problem(
                        message=f"{bp.name} {bp.version} is defined twice (also in {where})",
                        field="spec.version",
                        object=bp.ref(),
                        source=source,
                    )
                )
                continue
            pending[key] = source
            self.warnings.extend(warnings)
            entries.append(RegisteredBlueprint(bp, source, owner, tuple(warnings)))
        return entries, problems

    def add(
        self, blueprint: Blueprint, *, source: str = "", organization: str | None = None
    ) -> RegisteredBlueprint:
        """Register one already-parsed Blueprint (checked like a loaded file)."""
        problems = check_blueprint(blueprint, source=source)
        owner = blueprint.owner_organization or (organization if blueprint.visibility == "private" else None)
        if blueprint.visibility == "private" and not owner:
            problems.append(
                Problem(
                    message="a private Blueprint needs an owning Organization",
                    field="spec.owner.organization",
                    object=blueprint.ref(),
                    source=source,
                )
            )
        if blueprint.version in self._entries.get(blueprint.name, {}):
            problems.append(
                Problem(
                    message=f"{blueprint.name} {blueprint.version} is already registered",
                    field="spec.version",
                    object=blueprint.ref(),
                    source=source,
                )
            )
        if problems:
            raise CatalystError(problems, code="InvalidBlueprint")
        entry = RegisteredBlueprint(blueprint, source, owner)
        self._insert(entry)
        return entry

    def _insert(self, entry: RegisteredBlueprint) -> None:
        self._entries.setdefault(entry.name, {})[entry.version] = entry

    # ------------------------------------------------------------ visibility

    @staticmethod
    def _visible(entry: RegisteredBlueprint, organization: str | None) -> bool:
        """R-BP-03: private only for its owner Org; ``organization=None`` means the Sovereign itself
        (the catalog-svc internals), which sees everything."""
        if entry.blueprint.visibility != "private":
            return True
        return organization is None or entry.organization == organization

    def _versions_for(self, name: str, organization: str | None) -> dict[str, RegisteredBlueprint]:
        return {v: e for v, e in self._entries.get(name, {}).items() if self._visible(e, organization)}

    # ------------------------------------------------------------ queries

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return sum(len(v) for v in self._entries.values())

    def __iter__(self) -> Iterator[RegisteredBlueprint]:
        for name in sorted(self._entries):
            for version in versions.sort_versions(self._entries[name]):
                yield self._entries[name][version]

    def names(self, *, organization: str | None = None) -> list[str]:
        """Every Blueprint name the Org may install (listed + unlisted + its own private)."""
        return sorted(n for n in self._entries if self._versions_for(n, organization))

    def versions(self, name: str, *, organization: str | None = None) -> list[str]:
        """Ascending semver list; raises :class:`NotFoundError` for an unknown (or invisible) name."""
        found = self._versions_for(name, organization)
        if not found:
            raise self._unknown(name, organization)
        return versions.sort_versions(found)

    def get(self, name: str, version: str | None = None, *, organization: str | None = None) -> Blueprint:
        """One version: an exact ``X.Y.Z`` (:class:`NotFoundError` if absent), otherwise a range
        resolved like :meth:`resolve`; ``None`` means the latest."""
        found = self._versions_for(name, organization)
        if not found:
            raise self._unknown(name, organization)
        if version is None or not versions.is_version(version):
            return self.resolve(name, version or "*", organization=organization)
        want = versions.parse_version(version)
        for text, entry in found.items():
            if versions.parse_version(text) == want:
                return entry.blueprint
        raise NotFoundError(
            f"{name} has no version {version} (available: {', '.join(versions.sort_versions(found))})",
            object=f"Blueprint/{name}",
        )

    def source_of(self, name: str, version: str) -> str:
        """The file an exact registered version was loaded from ("" when it came from documents)."""
        entry = self._entries.get(name, {}).get(version)
        return entry.source if entry is not None else ""

    def entry(self, name: str, version: str) -> RegisteredBlueprint:
        return self._entries[name][self.get(name, version).version]

    def resolve(
        self,
        name: str,
        version_range: str | versions.VersionRange | None = "*",
        *,
        organization: str | None = None,
    ) -> Blueprint:
        """The highest visible version of ``name`` satisfying the range (R-DEP-02).

        Raises :class:`NotFoundError` for an unknown name and :class:`CatalystError` (code
        ``Unsatisfiable``) naming the range and the available versions when none matches.
        """
        found = self._versions_for(name, organization)
        if not found:
            raise self._unknown(name, organization)
        chosen = versions.resolve(version_range, found, subject=name)
        return found[chosen].blueprint

    def latest(self, name: str, *, organization: str | None = None) -> Blueprint:
        return self.resolve(name, "*", organization=organization)

    def catalog(self, *, organization: str | None = None) -> list[Blueprint]:
        """The card grid (R-CAT-01): latest version of every Blueprint that is ``listed``, plus the
        Org's own ``private`` ones; ``unlisted`` never appears here (R-BP-03)."""
        cards = []
        for name in sorted(self._entries):
            found = self._versions_for(name, organization)
            if not found:
                continue
            latest = found[versions.sort_versions(found)[-1]]
            vis = latest.blueprint.visibility
            if vis == "listed" or (vis == "private" and organization is not None):
                cards.append(latest.blueprint)
        return cards

    def search(self, text: str, *, organization: str | None = None) -> list[Blueprint]:
        """Exact-name lookup plus listed matches: how an ``unlisted`` Blueprint is still reachable
        "by name, search or URL" (R-BP-03) while never being shown on the grid."""
        needle = text.strip().lower()
        out = [
            bp
            for bp in self.catalog(organization=organization)
            if needle in bp.name or needle in bp.spec.card.title.lower()
        ]
        if needle in self._entries and self._versions_for(needle, organization):
            exact = self.latest(needle, organization=organization)
            if all(bp.name != exact.name for bp in out):
                out.insert(0, exact)
        return out

    def list(self, *, organization: str | None = None) -> list[Blueprint]:
        """Alias of :meth:`catalog` (what ``GET /blueprints`` serves)."""
        return self.catalog(organization=organization)

    def _unknown(self, name: str, organization: str | None) -> NotFoundError:
        known = self.names(organization=organization)
        short = {
            k.removeprefix("bp-"): k for k in known
        }  # the shared "bp-" prefix makes everything look close
        close = [
            short[c]
            for c in difflib.get_close_matches(name.removeprefix("bp-"), list(short), n=3, cutoff=0.75)
        ]
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return NotFoundError(f"unknown Blueprint {name!r}{hint}", object=f"Blueprint/{name}")
