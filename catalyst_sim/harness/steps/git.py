"""The Git surface: people change Applications by pushing commits with the real git client
(R-SURF-03, R-GIT-03)."""

from __future__ import annotations

from typing import Any

import yaml
from pytest_bdd import parsers, then, when

from catalyst_sim.harness.context import ScenarioContext


def set_path(document: dict[str, Any], dotted: str, value: Any) -> None:
    node = document
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


@when(parsers.parse('{person} pushes to "{branch}" of "{repo}" a commit setting "{path}" to {value} in "{file}"'))
def push_change(catalyst: ScenarioContext, person: str, branch: str, repo: str, path: str, value: str,
                file: str) -> None:
    heads = catalyst.state.setdefault("heads", {})
    owner, name = repo.split("/", 1)
    heads[repo] = {b["name"]: b["commit"]["id"] for b in catalyst.gitea.list_branches(owner, name)}
    clone = catalyst.clone(repo, branch)
    target = clone / file
    document = yaml.safe_load(target.read_text()) or {}
    set_path(document, path, yaml.safe_load(value))
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    catalyst.git("-c", f"user.name={person}", "-c", f"user.email={person.lower()}@example.com", "commit",
                 "--quiet", "-am", f"Set {path} to {value}", cwd=clone)
    catalyst.git("push", "--quiet", "origin", f"HEAD:{branch}", cwd=clone)


@when(parsers.parse('{person} pushes to "{branch}" of "{repo}" a "{file}" that is not valid YAML'))
def push_malformed(catalyst: ScenarioContext, person: str, branch: str, repo: str, file: str) -> None:
    clone = catalyst.clone(repo, branch)
    (clone / file).write_text("config: [unclosed\n  replicas: {\n")
    catalyst.git("-c", f"user.name={person}", "-c", f"user.email={person.lower()}@example.com", "commit",
                 "--quiet", "-am", f"Break {file}", cwd=clone)
    catalyst.git("push", "--quiet", "origin", f"HEAD:{branch}", cwd=clone)


@then(parsers.parse('the branches "{listing}" of "{repo}" did not move'))
def branches_did_not_move(catalyst: ScenarioContext, listing: str, repo: str) -> None:
    owner, name = repo.split("/", 1)
    before = catalyst.state["heads"][repo]
    now = {b["name"]: b["commit"]["id"] for b in catalyst.gitea.list_branches(owner, name)}
    for branch in (item.strip() for item in listing.split(",")):
        assert now[branch] == before[branch], f"{repo}@{branch} moved from {before[branch]} to {now[branch]}"
