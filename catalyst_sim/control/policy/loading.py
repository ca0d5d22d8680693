"""Read the Sovereign's EnvironmentPolicies into a :class:`PolicySet`, keeping the broken ones.

Policies live one per file at ``system/catalyst-config/policies/{org}-{env_type}-policy.yaml``
(R-NAME-15). A gate must fail closed: a policy file that cannot be read, or that names a team, an
Environment or a quorum that cannot exist, is never dropped or skipped. It is kept as a
:class:`PolicyStatus` with its problems (file, object, field, message), so the API can show it and
every promotion into the Environments it governs is refused ("blocked: policy invalid") until the
Sovereign admin fixes the file.

Matching (C-22). ARCH §8 matches a policy by ``appliesTo.environments``; ARCH §7.2 says "by
Org+env_type". Because an Environment is named ``{org}-{env_type}`` (R-NAME-07) both name the same
Environment whenever the file, ``metadata.name`` and ``appliesTo`` agree, and the model already
requires the Environment in the name to be listed in ``appliesTo`` (R-NAME-15). When they disagree:

* ``appliesTo`` is primary: a valid policy governs every Environment it lists. A policy may list
  more than its own Environment (``acme-prod-policy`` with ``[acme-prod, acme-uat]``).
* Several valid policies may govern one Environment (its own file plus another file's ``appliesTo``);
  then **all** their rules apply, because R-PROMO-02 says every rule must pass and a second file must
  never weaken the first.
* A file whose name differs from ``metadata.name``, or whose ``metadata.name`` Environment is missing
  from ``appliesTo``, is broken. It blocks every Environment any of the three names (file name,
  ``metadata.name``, each ``appliesTo`` entry), since we cannot tell which one the author meant.
* A broken file from which no Environment can be derived at all (say ``policies/x.yaml`` holding
  invalid YAML) blocks every Environment: failing closed for the whole Sovereign is safer than
  guessing, and only the Sovereign admin can write to ``policies/``.
* A ``.yml`` file is flagged: R-NAME-15 fixes the ``.yaml`` name, and a file a projector would not
  find must not silently go unenforced. Other files (README.md) and sub-directories are ignored.

Context checks beyond the model (they need the Sovereign's state, so they live here): the soak
``sourceEnvironment`` must exist, every approver team must exist in the policy's Organization, and
``minApprovals`` must not exceed the approver pool (the distinct members of the listed teams); a cron
that never fires (``0 0 30 2 *``) opens no window and is flagged too. When the caller passes no
Environments or teams (``None``), those checks are skipped: that is for linting fixtures offline,
never for enforcement.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from croniter import CroniterBadDateError, croniter

from catalyst_sim.clients.gitea import GiteaClient, GiteaError
from catalyst_sim.control.config_store import CONFIG_BRANCH, CONFIG_REPO, SYSTEM_ORG
from catalyst_sim.model import naming
from catalyst_sim.model.base import CatalystError, Problem, field_path
from catalyst_sim.model.loader import load_text
from catalyst_sim.model.resources import (
    ChangeWindowRule,
    EnvironmentPolicy,
    PrRequiredRule,
    SoakRule,
    problems_for_policy_file,
)

POLICY_KIND = "EnvironmentPolicy"
POLICY_SUFFIXES = (".yaml", ".yml")
ALL_ENVIRONMENTS = "*"  # the key under which an unattributable broken policy blocks everything

TeamDirectory = Mapping[str, Mapping[str, Collection[str]]]  # org -> team -> member logins


# --------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class PolicyStatus:
    """One policy file as the API shows it: the parsed policy when valid, else every problem found.

    ``environments`` are the destinations this file governs (for a broken file: every Environment it
    could have meant; empty when none can be derived, which blocks all Environments).
    """

    file: str
    name: str
    environments: tuple[str, ...]
    problems: list[Problem] = field(default_factory=list)
    policy: EnvironmentPolicy | None = None

    @property
    def valid(self) -> bool:
        return self.policy is not None and not self.problems

    @property
    def object(self) -> str:
        return f"{POLICY_KIND}/{self.name}"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "name": self.name, "object": self.object, "valid": self.valid,
                "environments": list(self.environments), "problems": [p.as_dict() for p in self.problems]}


@dataclass(frozen=True)
class PolicyBinding:
    """What governs promotions into one destination Environment (R-EP-02)."""

    environment: str
    policies: tuple[EnvironmentPolicy, ...] = ()
    broken: tuple[PolicyStatus, ...] = ()

    @property
    def blocked(self) -> bool:
        """A broken policy refuses every promotion into the Environment; it is never waved through."""
        return bool(self.broken)

    @property
    def state(self) -> str:
        if self.broken:
            return "blocked: policy invalid"
        return "governed" if self.policies else "no policy"

    @property
    def problems(self) -> list[Problem]:
        return [p for status in self.broken for p in status.problems]


@dataclass(frozen=True)
class PolicySet:
    """Every policy file of a Sovereign, valid or not, indexed by destination Environment."""

    statuses: tuple[PolicyStatus, ...] = ()

    @property
    def valid(self) -> dict[str, list[EnvironmentPolicy]]:
        """Valid policies by destination Environment (an Environment may have several, see module notes)."""
        out: dict[str, list[EnvironmentPolicy]] = {}
        for status in self.statuses:
            if status.policy is not None and status.valid:
                for env in status.environments:
                    out.setdefault(env, []).append(status.policy)
        return out

    @property
    def broken(self) -> list[PolicyStatus]:
        return [s for s in self.statuses if not s.valid]

    def blocked_environments(self) -> dict[str, list[PolicyStatus]]:
        """Environment -> broken policies blocking it; :data:`ALL_ENVIRONMENTS` for unattributable ones."""
        out: dict[str, list[PolicyStatus]] = {}
        for status in self.broken:
            for env in status.environments or (ALL_ENVIRONMENTS,):
                out.setdefault(env, []).append(status)
        return out

    def for_environment(self, environment: str) -> PolicyBinding:
        """The valid policies and the broken ones that govern ``environment`` (matched per C-22)."""
        policies = tuple(s.policy for s in self.statuses
                         if s.valid and s.policy is not None and environment in s.environments)
        broken = tuple(s for s in self.broken if not s.environments or environment in s.environments)
        return PolicyBinding(environment, policies, broken)

    def status(self, name: str) -> PolicyStatus | None:
        """A policy by ``metadata.name`` (or, for an unreadable file, the name its file implies).

        A misfiled copy may carry the same name; the file named after the policy (R-NAME-15) wins.
        """
        named = [s for s in self.statuses if s.name == name]
        return next((s for s in named if PurePosixPath(s.file).stem == name), named[0] if named else None)

    def as_dict(self) -> dict[str, Any]:
        return {"policies": [s.as_dict() for s in self.statuses]}


# --------------------------------------------------------------------------------------------------
# Loading


def load_policy_set(files: Mapping[str, str] | Iterable[tuple[str, str]], *,
                    environments: Collection[str] | None = None,
                    teams: TeamDirectory | None = None) -> PolicySet:
    """Check every policy file (``path -> text``) against the model and the Sovereign's state.

    ``environments`` are the Environment names that exist; ``teams`` maps Organization -> team ->
    member logins. Pass both for enforcement; ``None`` skips the checks that need them.
    """
    items = files.items() if isinstance(files, Mapping) else files
    statuses = [check_policy_file(path, text, environments=environments, teams=teams) for path, text in items]
    return PolicySet(tuple(sorted(statuses, key=lambda s: s.file)))


def load_policy_set_from_gitea(gitea: GiteaClient, *, environments: Collection[str] | None,
                               teams: TeamDirectory | None, ref: str = CONFIG_BRANCH,
                               directory: str = naming.POLICY_DIR) -> PolicySet:
    """Read ``system/catalyst-config/policies/`` through the Gitea API (R-NAME-15).

    A missing ``policies/`` directory means no policies at all. Other Gitea errors propagate: an
    unreadable repo must not look like "no policies".
    """
    try:
        entries = gitea.list_dir(SYSTEM_ORG, CONFIG_REPO, directory, ref=ref)
    except GiteaError as err:
        if err.status == 404:
            return PolicySet()
        raise
    files: dict[str, str] = {}
    for entry in entries:
        path = entry.get("path") or f"{directory}/{entry.get('name')}"
        if entry.get("type") == "file" and path.endswith(POLICY_SUFFIXES):
            files[f"{SYSTEM_ORG}/{CONFIG_REPO}/{path}"] = gitea.read_file(SYSTEM_ORG, CONFIG_REPO, path, ref=ref)
    return load_policy_set(files, environments=environments, teams=teams)


def load_policy_set_from_dir(directory: str | Path, *, environments: Collection[str] | None = None,
                             teams: TeamDirectory | None = None) -> PolicySet:
    """Policy files of a local directory (fixtures, test data); same checks as from Gitea."""
    root = Path(directory)
    files = {str(p): p.read_text(encoding="utf-8") for p in sorted(root.iterdir())
             if p.is_file() and p.suffix in POLICY_SUFFIXES}
    return load_policy_set(files, environments=environments, teams=teams)


def check_policy_file(path: str, text: str, *, environments: Collection[str] | None = None,
                      teams: TeamDirectory | None = None) -> PolicyStatus:
    """One file -> its :class:`PolicyStatus`; never raises for anything the file contains."""
    filename = PurePosixPath(path.replace("\\", "/")).name
    stem = next((filename.removesuffix(s) for s in POLICY_SUFFIXES if filename.endswith(s)), filename)
    raw = _raw_documents(text)
    raw_name = _raw_name(raw)
    name = raw_name or stem
    label = f"{POLICY_KIND}/{name}"
    problems: list[Problem] = []
    policy: EnvironmentPolicy | None = None

    if path.endswith(".yml"):
        problems.append(Problem(message=f"policy files are named '{{org}}-{{env_type}}-policy.yaml'; rename "
                                        f"{filename!r} to '{stem}.yaml' (R-NAME-15)",
                                object=label, source=path))
    try:
        objects = load_text(text, source=path)
    except CatalystError as err:
        problems += [_name_object(p, label) for p in err.problems]
        if len(raw) > 1:
            problems.append(_one_per_file(len(raw), label, path))
        if raw_name is not None and raw_name != stem and not any(p.field == "metadata.name" for p in problems):
            problems.append(Problem(message=f"EnvironmentPolicy {raw_name!r} is stored in {path!r}; the file "
                                            f"must be named '{raw_name}.yaml' (R-NAME-15)",
                                    field="metadata.name", object=label, source=path))
    else:
        policies = [o for o in objects if isinstance(o, EnvironmentPolicy)]
        others = [o.ref() for o in objects if not isinstance(o, EnvironmentPolicy)]
        if others:
            problems.append(Problem(message=f"policies/ holds only EnvironmentPolicy objects; found "
                                            f"{', '.join(others)}", field="kind", object=label, source=path))
        if not objects:
            problems.append(Problem(message="the policy file is empty; delete it or add the EnvironmentPolicy",
                                    object=label, source=path))
        elif len(objects) > 1:
            problems.append(_one_per_file(len(objects), label, path))
        elif len(policies) == 1:
            policy = policies[0]
            problems += problems_for_policy_file(policy, path, source=path)
            problems += _context_problems(policy, text, path, environments, teams)

    envs = _governed_environments(policy if not problems else None, raw, stem)
    return PolicyStatus(file=path, name=name, environments=envs, problems=problems,
                        policy=policy if not problems else None)


# --------------------------------------------------------------------------------------------------
# Checks that need the Sovereign's state


def _context_problems(policy: EnvironmentPolicy, text: str, path: str, environments: Collection[str] | None,
                      teams: TeamDirectory | None) -> list[Problem]:
    org = policy.environment.organization
    org_teams = None if teams is None else teams.get(org, {})
    found: list[tuple[tuple[str | int, ...], str]] = []
    for i, rule in enumerate(policy.spec.rules):
        loc: tuple[str | int, ...] = ("spec", "rules", i)
        if isinstance(rule, SoakRule) and environments is not None and rule.sourceEnvironment not in environments:
            found.append(((*loc, "sourceEnvironment"),
                          f"soak source Environment {rule.sourceEnvironment!r} does not exist, so no commit can "
                          "ever soak there; create it or fix the name (R-PROMO-05)"))
        elif isinstance(rule, PrRequiredRule) and org_teams is not None:
            pool: set[str] = set()
            for j, team in enumerate(rule.approvers):
                if team not in org_teams:
                    known = ", ".join(sorted(org_teams)) or "none"
                    found.append(((*loc, "approvers", j),
                                  f"approver team {team!r} does not exist in Organization {org!r} "
                                  f"(teams: {known}) (R-PROMO-03)"))
                else:
                    pool |= {m.casefold() for m in org_teams[team]}
            if rule.minApprovals > len(pool):
                found.append(((*loc, "minApprovals"),
                              f"minApprovals {rule.minApprovals} exceeds the approver pool: "
                              f"{', '.join(rule.approvers)} have {len(pool)} distinct member(s), so no PR could "
                              "ever merge (R-PROMO-03)"))
        elif isinstance(rule, ChangeWindowRule):
            try:
                croniter(rule.cron, datetime(2000, 1, 1, tzinfo=UTC)).get_next(datetime)
            except CroniterBadDateError:
                found.append(((*loc, "cron"), f"cron {rule.cron!r} never fires, so the change window never "
                                              "opens (R-PROMO-06)"))
    return [Problem(message=msg, field=field_path(loc), object=policy.ref(), source=_at(path, _line_of(text, loc)))
            for loc, msg in found]


# --------------------------------------------------------------------------------------------------
# Raw reading, for attribution of broken files


def _raw_documents(text: str) -> list[Any]:
    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError:
        return []


def _raw_name(docs: list[Any]) -> str | None:
    for doc in docs:
        meta = doc.get("metadata") if isinstance(doc, dict) else None
        name = meta.get("name") if isinstance(meta, dict) else None
        if isinstance(name, str) and name:
            return name
    return None


def _governed_environments(policy: EnvironmentPolicy | None, docs: list[Any], stem: str) -> tuple[str, ...]:
    """The Environments a file governs: ``appliesTo`` for a valid policy; every plausible one when broken
    (each valid ``appliesTo`` entry, the Environment of ``metadata.name`` and that of the file name)."""
    if policy is not None:
        candidates = list(policy.spec.appliesTo.environments)
    else:
        candidates = []
        for doc in docs:
            if not isinstance(doc, dict):
                continue
            spec = doc.get("spec")
            applies = spec.get("appliesTo") if isinstance(spec, dict) else None
            listed = applies.get("environments") if isinstance(applies, dict) else None
            if isinstance(listed, list):
                candidates += [e for e in listed if naming.is_valid_environment_name(e)]
            meta = doc.get("metadata")
            name = meta.get("name") if isinstance(meta, dict) else None
            if isinstance(name, str) and not naming.problems_for_policy_name(name):
                candidates.append(naming.parse_policy_name(name).name)
        if not naming.problems_for_policy_name(stem):
            candidates.append(naming.parse_policy_name(stem).name)
    return tuple(dict.fromkeys(candidates))


def _one_per_file(count: int, label: str, path: str) -> Problem:
    return Problem(message=f"a policy file holds exactly one EnvironmentPolicy; found {count} documents "
                           "(one file per destination, R-NAME-15)", object=label, source=path)


def _name_object(problem: Problem, label: str) -> Problem:
    """Loader problems on unparseable documents say ``document 1``; name the policy instead."""
    if not problem.object or problem.object.startswith("document "):
        return dataclasses.replace(problem, object=label)
    return problem


def _line_of(text: str, loc: tuple[str | int, ...]) -> int | None:
    """The 1-based line of a field path in the first document, or of its nearest existing parent."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            child = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line


def _at(source: str, line: int | None) -> str:
    return f"{source}:{line}" if line else source
