"""Behaviour: real ``git`` over smart HTTP against the embedded forge, and the webhooks it fires.

R-GIT-03: a direct git push goes straight to the App repo and the Gitea webhook still fires — so
clone/commit/push must work with the credential form the harness uses
(``http://user:token@host/org/repo.git``), the push must produce Gitea's push payload, signed with the
hook secret, naming exactly the commits pushed; an org hook must see every repo of the org.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from catalyst_sim.backends.embedded.forge import EmbeddedForge
from catalyst_sim.backends.embedded.forge.bare import ZERO_SHA
from catalyst_sim.clients.gitea import FileChange, GiteaClient
from catalyst_sim.clock import VirtualClock

from .conftest import Git, Receiver, unique

SECRET = "hook-secret-42"


def clone(git: Git, url: str, name: str = "clone", *extra: str) -> Path:
    target = git.home / name
    git.run("clone", "--quiet", *extra, url, str(target))
    return target


def commit_file(git: Git, work: Path, path: str, content: str | bytes, message: str) -> str:
    file = work / path
    file.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        file.write_bytes(content)
    else:
        file.write_text(content)
    git.run("add", path, cwd=work)
    git.run("commit", "--quiet", "-m", message, cwd=work)
    return git.out("rev-parse", "HEAD", cwd=work)


def verify_signature(body: bytes, headers: dict[str, str], secret: str = SECRET) -> None:
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-gitea-signature"], expected)
    assert headers["x-hub-signature-256"] == f"sha256={expected}"
    assert headers["x-hub-signature"] == "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def test_clone_commit_push_fires_a_signed_push_webhook(
    forge: EmbeddedForge,
    gitea: GiteaClient,
    receiver: Receiver,
    git: Git,
    new_repo: Callable[..., tuple[str, str]],
) -> None:
    org, repo = new_repo(auto_init=True)
    hook_path = f"/{unique('push')}"
    hook = gitea.create_repo_hook(org, repo, receiver.url(hook_path), secret=SECRET)
    started = time.perf_counter()
    work = clone(git, forge.clone_url(f"{org}/{repo}"))
    clone_ms = (time.perf_counter() - started) * 1000
    before = git.out("rev-parse", "HEAD", cwd=work)
    first = commit_file(git, work, "overlays/dev/values.yaml", "replicas: 1\n", "dev values")
    second = commit_file(git, work, "kustomization.yaml", "kind: Kustomization\n", "pin version")
    started = time.perf_counter()
    git.run("push", "--quiet", "origin", "main", cwd=work)
    push_ms = (time.perf_counter() - started) * 1000

    received = receiver.wait_for(lambda r: r.path == hook_path and r.headers["x-gitea-event"] == "push")
    verify_signature(received.body, received.headers)
    headers = received.headers
    assert headers["x-github-event"] == "push" and headers["x-gogs-event"] == "push"
    assert headers["x-gitea-event-type"] == "push" and headers["user-agent"] == "GiteaServer"
    assert len(headers["x-gitea-delivery"]) == 36 and headers["content-type"] == "application/json"
    payload = json.loads(received.body)
    assert payload["ref"] == "refs/heads/main"
    assert (payload["before"], payload["after"]) == (before, second)
    assert [c["id"] for c in payload["commits"]] == [second, first]  # Gitea: newest first
    assert payload["total_commits"] == 2
    assert payload["head_commit"]["id"] == second
    assert payload["commits"][1]["added"] == ["overlays/dev/values.yaml"]
    assert payload["commits"][0]["message"] == "pin version\n"
    assert payload["commits"][0]["author"] == {
        "name": "Dev Eloper",
        "email": "dev@example.invalid",
        "username": "",
    }
    assert payload["compare_url"].endswith(f"/{org}/{repo}/compare/{before}...{second}")
    assert payload["repository"]["full_name"] == f"{org}/{repo}"
    assert payload["pusher"]["login"] == payload["sender"]["login"] == forge.admin
    delivery = forge.wait_for_delivery(lambda d: d.hook_id == hook["id"] and d.event == "push")
    assert delivery is not None and delivery.success and delivery.status_code == 200
    assert gitea.get_branch(org, repo, "main")["commit"]["id"] == second
    assert clone_ms < 5000 and push_ms < 5000  # measured and printed by the timing test


def test_push_of_more_than_one_mebibyte_goes_chunked_and_lands(
    forge: EmbeddedForge, gitea: GiteaClient, git: Git, new_repo: Callable[..., tuple[str, str]]
) -> None:
    org, repo = new_repo(auto_init=True)
    work = clone(git, forge.clone_url(f"{org}/{repo}"))
    blob = os.urandom(3 * 1024 * 1024)  # incompressible: the pack is > http.postBuffer (1 MiB)
    head = commit_file(git, work, "big.bin", blob, "a big file")
    git.run("push", "--quiet", "origin", "main", cwd=work)
    assert gitea.get_branch(org, repo, "main")["commit"]["id"] == head
    pushes = [
        e.fields
        for e in forge.log.entries("git")
        if e.message == "receive-pack request" and e.fields["repo"] == f"{org}/{repo}"
    ]
    assert any(p["chunked"] and p["bytes"] > 1024 * 1024 for p in pushes), pushes
    again = clone(git, forge.clone_url(f"{org}/{repo}"), "again")
    assert (again / "big.bin").read_bytes() == blob


def test_push_without_or_with_wrong_credentials_is_refused(
    forge: EmbeddedForge, git: Git, new_repo: Callable[..., tuple[str, str]]
) -> None:
    org, repo = new_repo(auto_init=True)
    anonymous_url = f"{forge.url}/{org}/{repo}.git"
    work = clone(git, anonymous_url)  # a public repo clones anonymously, like Gitea
    commit_file(git, work, "x.txt", "x\n", "x")
    refused = git.run("push", "origin", "main", cwd=work, check=False)
    assert refused.returncode != 0
    assert "Authentication failed" in refused.stderr or "could not read Username" in refused.stderr
    wrong = forge.clone_url(f"{org}/{repo}", token="f" * 40)
    refused = git.run("push", wrong, "main", cwd=work, check=False)
    assert refused.returncode != 0 and "Authentication failed" in refused.stderr
    untouched = forge.service.bare(forge.state.get_repo(org, repo)).branch("main")  # type: ignore[arg-type]
    assert untouched is not None and untouched.commit.message == "Initial commit\n"


def test_read_only_member_may_clone_but_not_push_and_private_repos_need_credentials(
    forge: EmbeddedForge, gitea: GiteaClient, git: Git
) -> None:
    org = unique("org")
    gitea.create_org(org)
    repo = unique("private")
    gitea.create_org_repo(org, repo, private=True, auto_init=True)
    anonymous = git.run("clone", f"{forge.url}/{org}/{repo}.git", str(git.home / "anon"), check=False)
    assert anonymous.returncode != 0
    reader = unique("reader")
    _, token = forge.create_user(reader, scopes=("write:repository",))
    forge.add_org_member(org, reader, "read")
    work = clone(git, forge.clone_url(f"{org}/{repo}", user=reader, token=token))
    commit_file(git, work, "x.txt", "x\n", "x")
    denied = git.run("push", "origin", "main", cwd=work, check=False)
    assert denied.returncode != 0 and "403" in denied.stderr
    read_scope = unique("scoped")
    _, scoped = forge.create_user(read_scope, scopes=("read:repository",))
    forge.add_org_member(org, read_scope, "write")
    clone(git, forge.clone_url(f"{org}/{repo}", user=read_scope, token=scoped), "scoped")
    denied = git.run(
        "push", forge.clone_url(f"{org}/{repo}", user=read_scope, token=scoped), "main", cwd=work, check=False
    )
    assert denied.returncode != 0 and "403" in denied.stderr  # token lacks write:repository


def test_api_multi_file_commit_then_clone_shows_the_files(
    forge: EmbeddedForge,
    gitea: GiteaClient,
    git: Git,
    clock: VirtualClock,
    new_repo: Callable[..., tuple[str, str]],
) -> None:
    org, repo = new_repo()  # empty: the first API commit creates the branch
    clock.advance(3600)
    response = gitea.change_files(
        org,
        repo,
        [
            FileChange("create", "kustomization.yaml", "kind: Kustomization\n"),
            FileChange("create", "overlays/prod/values.yaml", "replicas: 3\n"),
            FileChange("create", "CODEOWNERS", "* @acme/approvers\n"),
        ],
        message="scaffold app",
        branch="main",
        author={"name": "Provisioning", "email": "prov@catalyst.invalid"},
    )
    sha = response["commit"]["sha"]
    assert [f["path"] for f in response["files"] if f] == [
        "kustomization.yaml",
        "overlays/prod/values.yaml",
        "CODEOWNERS",
    ]
    assert response["commit"]["author"]["date"] == clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")  # virtual time
    work = clone(git, forge.clone_url(f"{org}/{repo}"))
    assert (work / "overlays/prod/values.yaml").read_text() == "replicas: 3\n"
    assert git.out("rev-parse", "HEAD", cwd=work) == sha
    assert git.out("rev-list", "--count", "HEAD", cwd=work) == "1"  # ONE commit for three files
    assert git.out("log", "-1", "--format=%an <%ae> %aI", cwd=work) == (
        f"Provisioning <prov@catalyst.invalid> {clock.now().isoformat()}"
    )
    assert gitea.get_repo(org, repo)["empty"] is False


def test_branch_created_from_another_has_its_head(
    forge: EmbeddedForge, gitea: GiteaClient, git: Git, new_repo: Callable[..., tuple[str, str]]
) -> None:
    org, repo = new_repo(auto_init=True)
    gitea.create_file(org, repo, "values.yaml", "a: 1\n", branch="main")
    develop = gitea.create_branch(org, repo, "develop")
    staging = gitea.create_branch(org, repo, "staging", from_branch="develop")
    main_head = gitea.get_branch(org, repo, "main")["commit"]["id"]
    assert develop["commit"]["id"] == staging["commit"]["id"] == main_head
    gitea.create_file(org, repo, "only-dev.yaml", "x\n", branch="develop")
    from_ref = gitea.create_branch(org, repo, "hotfix", from_ref=main_head)
    assert from_ref["commit"]["id"] == main_head
    work = clone(git, forge.clone_url(f"{org}/{repo}"), "branches", "--branch", "develop")
    assert (work / "only-dev.yaml").exists() and (work / "values.yaml").exists()
    assert {b["name"] for b in gitea.list_branches(org, repo)} == {"main", "develop", "staging", "hotfix"}


def test_org_hook_fires_for_every_repo_in_the_org_on_push_and_api_commit(
    forge: EmbeddedForge, gitea: GiteaClient, receiver: Receiver, git: Git
) -> None:
    org = unique("org")
    gitea.create_org(org)
    path = f"/{unique('org-hook')}"
    gitea.create_org_hook(org, receiver.url(path), secret=SECRET, events=["push", "create", "delete"])
    first, second = unique("app"), unique("app")
    gitea.create_org_repo(org, first, auto_init=True)
    gitea.create_org_repo(org, second, auto_init=True)
    api_commit = gitea.create_file(org, first, "a.txt", "a\n")["commit"]["sha"]
    work = clone(git, forge.clone_url(f"{org}/{second}"))
    pushed = commit_file(git, work, "b.txt", "b\n", "b")
    git.run("push", "--quiet", "origin", "main", cwd=work)
    git.run("push", "--quiet", "origin", "main:feature/x", cwd=work)
    git.run("push", "--quiet", "origin", ":feature/x", cwd=work)

    def payload_of(event: str, repo: str, **match: str) -> dict[str, object]:
        found = receiver.wait_for(
            lambda r: (
                r.path == path
                and r.headers["x-gitea-event"] == event
                and json.loads(r.body)["repository"]["name"] == repo
                and all(json.loads(r.body).get(k) == v for k, v in match.items())
            )
        )
        verify_signature(found.body, found.headers)
        return json.loads(found.body)  # type: ignore[no-any-return]

    assert payload_of("push", first, after=api_commit)["head_commit"]["id"] == api_commit  # type: ignore[index]
    assert payload_of("push", second, after=pushed)["ref"] == "refs/heads/main"
    created = payload_of("create", second, ref="feature/x")
    assert created["ref_type"] == "branch" and created["sha"] == pushed
    new_branch_push = payload_of("push", second, ref="refs/heads/feature/x")
    assert new_branch_push["before"] == ZERO_SHA and new_branch_push["compare_url"] == ""
    assert payload_of("delete", second, ref="feature/x")["pusher_type"] == "user"


def test_branch_filter_and_inactive_hooks_are_respected(
    forge: EmbeddedForge, gitea: GiteaClient, receiver: Receiver, new_repo: Callable[..., tuple[str, str]]
) -> None:
    org, repo = new_repo(auto_init=True)
    only_main, inactive, everything = (f"/{unique('filter')}" for _ in range(3))
    gitea.create_repo_hook(org, repo, receiver.url(only_main), branch_filter="{main,release/*}")
    gitea.create_repo_hook(org, repo, receiver.url(inactive), active=False)
    gitea.create_repo_hook(org, repo, receiver.url(everything))
    gitea.create_branch(org, repo, "develop")
    gitea.create_file(org, repo, "d.txt", "d\n", branch="develop")
    gitea.create_file(org, repo, "m.txt", "m\n", branch="main")
    assert forge.wait_for_webhooks()
    assert {json.loads(r.body)["ref"] for r in receiver.received(only_main)} == {"refs/heads/main"}
    assert receiver.received(inactive) == []
    assert {json.loads(r.body)["ref"] for r in receiver.received(everything)} == {
        "refs/heads/main",
        "refs/heads/develop",
    }


def test_failed_delivery_is_recorded_not_raised(
    forge: EmbeddedForge, gitea: GiteaClient, new_repo: Callable[..., tuple[str, str]]
) -> None:
    org, repo = new_repo(auto_init=True)
    hook = gitea.create_repo_hook(org, repo, "http://127.0.0.1:9/nothing-listens-here")
    gitea.create_file(org, repo, "x.txt", "x\n")  # succeeds although the receiver is down
    delivery = forge.wait_for_delivery(lambda d: d.hook_id == hook["id"])
    assert delivery is not None and not delivery.success and delivery.error
    assert any(e.kind == "error" and e.fields.get("hook_id") == hook["id"] for e in forge.log.entries())


def test_protocol_v0_shallow_clone_and_fetch(
    forge: EmbeddedForge, gitea: GiteaClient, git: Git, new_repo: Callable[..., tuple[str, str]]
) -> None:
    org, repo = new_repo(auto_init=True)
    for index in range(3):
        gitea.create_file(org, repo, f"f{index}.txt", str(index))
    url = forge.clone_url(f"{org}/{repo}")
    v0 = clone(git, url, "v0", "-c", "protocol.version=0")
    shallow = clone(git, url, "shallow", "--depth", "1")
    assert git.out("rev-list", "--count", "HEAD", cwd=v0) == "4"
    assert git.out("rev-list", "--count", "HEAD", cwd=shallow) == "1"
    newest = gitea.create_file(org, repo, "late.txt", "late")["commit"]["sha"]
    git.run("fetch", "--quiet", "origin", cwd=shallow)
    assert git.out("rev-parse", "origin/main", cwd=shallow) == newest
