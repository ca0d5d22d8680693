"""Shared set-up for the promotion tests: people with tokens, an App repo with staging ahead of main,
an approvals team and (optionally) a protected ``main`` — the shape R-PROMO-01..03 describe.

Everything is created through the Gitea API with our client (users are seeded on the forge, as the
other forge tests do), so the tests exercise the same calls the control plane makes.
"""

from __future__ import annotations

import hashlib
import hmac
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalyst_sim.backends.embedded.forge import EmbeddedForge
from catalyst_sim.clients.gitea import GiteaClient

from .conftest import Git, unique

SECRET = "promotion-hook-secret"
DEFAULT_PROTECTION: dict[str, Any] = {
    "required_approvals": 2,
    "block_on_rejected_reviews": True,
    "dismiss_stale_approvals": True,
}


@dataclass
class Actor:
    login: str
    token: str
    client: GiteaClient


@dataclass
class People:
    """Users with tokens and a client each; ``close()`` closes every client."""

    forge: EmbeddedForge
    made: list[Actor] = field(default_factory=list)

    def new(self, prefix: str) -> Actor:
        login = unique(prefix)
        _, token = self.forge.create_user(login)
        actor = Actor(login, token, GiteaClient(self.forge.url, token))
        self.made.append(actor)
        return actor

    def close(self) -> None:
        for actor in self.made:
            actor.client.close()


@dataclass
class Promotion:
    org: str
    repo: str
    team: str
    team_id: int
    author: Actor
    reviewers: list[Actor]
    writer: Actor  # write access through another team: not an official reviewer
    staging_sha: str
    main_sha: str

    @property
    def full_name(self) -> str:
        return f"{self.org}/{self.repo}"


def setup_promotion(
    forge: EmbeddedForge,
    gitea: GiteaClient,
    people: People,
    protection: dict[str, Any] | None = None,
    *,
    reviewers: int = 3,
) -> Promotion:
    """An org with an App repo whose ``staging`` is one commit ahead of ``main``, a write team
    (author + reviewers) named as the approvals whitelist of ``main``'s protection, a writer outside
    it; ``protection=None`` leaves ``main`` unprotected, ``{}`` gives :data:`DEFAULT_PROTECTION`."""
    org, repo = unique("org"), unique("app")
    gitea.create_org(org)
    gitea.create_org_repo(org, repo, auto_init=True)
    gitea.create_branch(org, repo, "staging")
    gitea.put_files(org, repo, {"overlays/prod/values.yaml": "replicas: 2\n"}, branch="staging", message="Bump")
    team_name = unique("team-platform")
    team = gitea.create_team(org, team_name, permission="write")
    author = people.new("author")
    crew = [people.new("reviewer") for _ in range(reviewers)]
    for member in (author, *crew):
        gitea.add_team_member(team["id"], member.login)
    devs = gitea.create_team(org, unique("devs"), permission="write")
    writer = people.new("dev")
    gitea.add_team_member(devs["id"], writer.login)
    if protection is not None:
        options = {**DEFAULT_PROTECTION, **protection}
        gitea.create_branch_protection(org, repo, "main", approvals_whitelist_teams=[team_name], **options)
    return Promotion(
        org=org,
        repo=repo,
        team=team_name,
        team_id=team["id"],
        author=author,
        reviewers=crew,
        writer=writer,
        staging_sha=gitea.get_branch(org, repo, "staging")["commit"]["id"],
        main_sha=gitea.get_branch(org, repo, "main")["commit"]["id"],
    )


def clone(git: Git, url: str, name: str, *extra: str) -> Path:
    target = git.home / name
    git.run("clone", "--quiet", *extra, url, str(target))
    return target


def commit_file(git: Git, work: Path, path: str, content: str, message: str) -> str:
    file = work / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(content)
    git.run("add", path, cwd=work)
    git.run("commit", "--quiet", "-m", message, cwd=work)
    return git.out("rev-parse", "HEAD", cwd=work)


def bare_refs(forge: EmbeddedForge, full_name: str) -> dict[str, str]:
    """Every ref of the bare repo, read with git itself (not through the forge's API)."""
    owner, name = full_name.split("/")
    repo = forge.state.get_repo(owner, name)
    assert repo is not None
    out = subprocess.run(
        ["git", "--git-dir", str(repo.path), "for-each-ref", "--format=%(refname) %(objectname)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split(" ", 1) for line in out.splitlines())


def signed_by(body: bytes, headers: dict[str, str], secret: str = SECRET) -> bool:
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["x-gitea-signature"], expected) and headers[
        "x-hub-signature-256"
    ] == f"sha256={expected}"
