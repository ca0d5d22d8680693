"""Behaviour: branch protection and teams in the embedded Gitea (R-PROMO-07, R-GIT-03, R-EP-01).

A protected ``main`` refuses a direct ``git push`` from anyone not whitelisted — the real git client
prints Gitea's "Not allowed to push to protected branch" and NO ref moves (not even an unprotected
branch pushed alongside) — while a whitelisted pusher (user or team) gets through; deletion and
force pushes are refused even to them. The contents API refuses the same writes with Gitea's 403.
The rule itself round-trips Gitea's BranchProtection fields; teams (with Gitea's Owners team and
its unit rules) decide access, whitelists and official reviewers.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from catalyst_sim.backends.embedded.forge import EmbeddedForge
from catalyst_sim.clients.gitea import GiteaClient, GiteaError

from .conftest import Git, Receiver, unique
from .promotion import People, bare_refs, clone, commit_file, setup_promotion


@pytest.fixture
def people(forge: EmbeddedForge) -> Iterator[People]:
    crowd = People(forge)
    try:
        yield crowd
    finally:
        crowd.close()


def status_of(call: object) -> GiteaError:
    with pytest.raises(GiteaError) as caught:
        call()  # type: ignore[operator]
    return caught.value


def test_protection_rules_round_trip_gitea_fields(forge: EmbeddedForge, gitea: GiteaClient, people: People) -> None:
    p = setup_promotion(forge, gitea, people, None)
    bot = people.new("release-bot")
    gitea.add_team_member(p.team_id, bot.login)
    stranger = people.new("stranger")  # no access to the repo: Gitea drops such users silently
    rule = gitea.create_branch_protection(
        p.org,
        p.repo,
        "main",
        enable_push=True,
        push_whitelist_usernames=[bot.login, stranger.login],
        push_whitelist_teams=[p.team],
        required_approvals=2,
        approvals_whitelist_teams=[p.team],
        block_on_rejected_reviews=True,
        dismiss_stale_approvals=True,
    )
    assert rule["rule_name"] == rule["branch_name"] == "main"
    assert rule["enable_push"] and rule["enable_push_whitelist"] and rule["enable_approvals_whitelist"]
    assert rule["push_whitelist_usernames"] == [bot.login] and rule["push_whitelist_teams"] == [p.team]
    assert rule["approvals_whitelist_teams"] == [p.team] and rule["required_approvals"] == 2
    assert rule["block_on_rejected_reviews"] and rule["dismiss_stale_approvals"]
    assert rule["created_at"] == rule["updated_at"]
    assert gitea.get_branch_protection(p.org, p.repo, "main") == rule
    glob = gitea.create_branch_protection(p.org, p.repo, "release/*")
    assert glob["branch_name"] == "" and glob["rule_name"] == "release/*"
    assert [r["rule_name"] for r in gitea.list_branch_protections(p.org, p.repo)] == ["main", "release/*"]
    assert gitea.get_branch_protection(p.org, p.repo, "release/*")["rule_name"] == "release/*"

    edited = gitea.edit_branch_protection(p.org, p.repo, "main", enable_push=False, required_approvals=1)
    assert edited["enable_push"] is False and edited["enable_push_whitelist"] is False
    assert edited["required_approvals"] == 1 and edited["push_whitelist_usernames"] == [bot.login]
    gitea.delete_branch_protection(p.org, p.repo, "release/*")
    assert status_of(lambda: gitea.get_branch_protection(p.org, p.repo, "release/*")).status == 404

    assert status_of(lambda: gitea.create_branch_protection(p.org, p.repo, "main")).status == 403  # exists
    missing = status_of(lambda: gitea.create_branch_protection(p.org, p.repo, "x", push_whitelist_usernames=["nobody"]))
    assert (missing.status, missing.message) == (422, "user does not exist [uid: 0, name: nobody]")
    no_team = status_of(lambda: gitea.create_branch_protection(p.org, p.repo, "y", push_whitelist_teams=["nope"]))
    assert no_team.status == 422 and "team does not exist" in no_team.message
    assert status_of(lambda: p.writer.client.list_branch_protections(p.org, p.repo)).status == 403  # admins only
    with pytest.raises(TypeError):
        gitea.create_branch_protection(p.org, p.repo, "z", required_aprovals=2)  # a typo never weakens a rule


def test_direct_push_to_protected_main_is_refused_and_nothing_moves(
    forge: EmbeddedForge, gitea: GiteaClient, people: People, git: Git, receiver: Receiver
) -> None:
    p = setup_promotion(forge, gitea, people, {})  # enable_push off: nobody pushes, admins included
    path = f"/{unique('push')}"
    gitea.create_repo_hook(p.org, p.repo, receiver.url(path), events=["push", "create"])
    before = bare_refs(forge, p.full_name)
    work = clone(git, forge.clone_url(p.full_name), "admin-work")
    commit_file(git, work, "overlays/prod/values.yaml", "replicas: 9\n", "skip the PR")
    git.run("branch", "feature", cwd=work)

    push = git.run("push", "origin", "main", "feature", cwd=work, check=False)
    assert push.returncode != 0
    assert "remote: Gitea: Not allowed to push to protected branch main" in push.stderr
    assert "pre-receive hook declined" in push.stderr
    assert bare_refs(forge, p.full_name) == before  # not main, not even the unprotected new branch
    writer_work = clone(git, forge.clone_url(p.full_name, token=p.writer.token, user=p.writer.login), "w")
    commit_file(git, writer_work, "x.txt", "x\n", "writer tries")
    assert "protected branch main" in git.run("push", "origin", "main", cwd=writer_work, check=False).stderr
    assert bare_refs(forge, p.full_name) == before
    assert gitea.get_branch(p.org, p.repo, "main")["commit"]["id"] == p.main_sha

    git.run("push", "--quiet", "origin", "feature", cwd=work)  # unprotected branches still accept pushes
    created = receiver.wait_for(lambda r: r.path == path)
    assert created.headers["x-gitea-event"] == "create" and len(receiver.received(path)) <= 2
    pushes = [r for r in receiver.received(path) if r.headers["x-gitea-event"] == "push"]
    assert all(b'"refs/heads/main"' not in r.body for r in pushes)


def test_whitelisted_pushers_get_through_but_never_force_or_delete(
    forge: EmbeddedForge, gitea: GiteaClient, people: People, git: Git
) -> None:
    p = setup_promotion(forge, gitea, people, None)
    bots = gitea.create_team(p.org, unique("bots"), permission="write")
    bot = people.new("bot")
    gitea.add_team_member(bots["id"], bot.login)
    gitea.create_branch_protection(
        p.org,
        p.repo,
        "main",
        enable_push=True,
        push_whitelist_usernames=[p.author.login],
        push_whitelist_teams=[bots["name"]],
    )
    for actor in (p.author, bot):
        work = clone(git, forge.clone_url(p.full_name, token=actor.token, user=actor.login), unique("w"))
        head = commit_file(git, work, f"{actor.login}.txt", "hi\n", f"direct push by {actor.login}")
        git.run("push", "--quiet", "origin", "main", cwd=work)
        assert gitea.get_branch(p.org, p.repo, "main")["commit"]["id"] == head
    denied = clone(git, forge.clone_url(p.full_name, token=p.writer.token, user=p.writer.login), "denied")
    commit_file(git, denied, "no.txt", "no\n", "not whitelisted")
    refused = git.run("push", "origin", "main", cwd=denied, check=False)
    assert "Not allowed to push to protected branch main" in refused.stderr

    head = gitea.get_branch(p.org, p.repo, "main")["commit"]["id"]
    git.run("reset", "--quiet", "--hard", "HEAD~1", cwd=work)
    commit_file(git, work, "rewrite.txt", "r\n", "rewrite history")
    forced = git.run("push", "--force", "origin", "main", cwd=work, check=False)
    assert "Gitea: branch main is protected from force push" in forced.stderr
    deleted = git.run("push", "origin", ":main", cwd=work, check=False)
    assert "Gitea: branch main is protected from deletion" in deleted.stderr
    assert bare_refs(forge, p.full_name)["refs/heads/main"] == head


def test_contents_api_and_branch_api_respect_protection(
    forge: EmbeddedForge, gitea: GiteaClient, people: People
) -> None:
    p = setup_promotion(forge, gitea, people, None)
    gitea.create_branch_protection(p.org, p.repo, "main", enable_push=True, push_whitelist_usernames=[p.author.login])
    refused = status_of(lambda: p.writer.client.put_files(p.org, p.repo, {"a.txt": "a"}, branch="main"))
    assert (refused.status, refused.message) == (403, f"user cannot commit to repo [user: {p.writer.login.lower()}]")
    assert status_of(lambda: gitea.put_files(p.org, p.repo, {"a.txt": "a"}, branch="main")).status == 403  # admin too
    p.author.client.put_files(p.org, p.repo, {"a.txt": "a"}, branch="main")  # whitelisted
    p.writer.client.put_files(p.org, p.repo, {"b.txt": "b"}, branch="staging")  # unprotected
    p.writer.client.commit_files(p.org, p.repo, "main", {"c.txt": "c"}, new_branch="from-main")  # a new branch

    branch = p.writer.client.get_branch(p.org, p.repo, "main")
    assert branch["protected"] is True and branch["required_approvals"] == 0
    assert branch["user_can_push"] is False and branch.get("effective_branch_protection_name") == ""
    admin_view = gitea.get_branch(p.org, p.repo, "main")
    assert admin_view["user_can_push"] is False and admin_view.get("effective_branch_protection_name") == "main"
    assert p.author.client.get_branch(p.org, p.repo, "main")["user_can_push"] is True
    assert gitea.get_branch(p.org, p.repo, "staging")["protected"] is False

    gitea.create_branch_protection(p.org, p.repo, "staging")
    deleting = status_of(lambda: gitea.delete_branch(p.org, p.repo, "staging"))
    assert (deleting.status, deleting.message) == (403, "branch protected")


def test_teams_membership_units_and_access(forge: EmbeddedForge, gitea: GiteaClient, people: People, git: Git) -> None:
    org, repo = unique("org"), unique("repo")
    gitea.create_org(org)
    gitea.create_org_repo(org, repo, auto_init=True, private=True)
    [owners] = gitea.list_teams(org)
    assert (owners["name"], owners["permission"], owners["can_create_org_repo"]) == ("Owners", "owner", True)
    assert [m["login"] for m in gitea.list_team_members(owners["id"])] == [forge.admin]

    with httpx.Client(base_url=f"{forge.url}/api/v1", headers={"Authorization": f"token {forge.token}"}) as raw:
        no_units = raw.post(f"/orgs/{org}/teams", json={"name": "bare", "permission": "write"})
        assert (no_units.status_code, no_units.json()["message"]) == (500, "units permission should not be empty")
        units_map = raw.post(
            f"/orgs/{org}/teams", json={"name": "pulls-only", "units_map": {"repo.pulls": "write", "repo.code": "read"}}
        )
        assert units_map.status_code == 201 and units_map.json()["permission"] == "read"  # the weakest unit
        assert raw.post(f"/orgs/{org}/teams", json={"name": "Owners", "permission": "admin"}).status_code == 422

    readers = gitea.create_team(org, unique("readers"), permission="read")
    assert readers["permission"] == "read" and (readers["organization"] or {}).get("name") == org
    assert readers["units_map"]["repo.code"] == "read" and readers["includes_all_repositories"] is True
    alice = people.new("alice")
    gitea.add_team_member(readers["id"], alice.login)
    assert gitea.get_team(readers["id"])["name"] == readers["name"]
    assert alice.client.get_repo(org, repo)["permissions"] == {"admin": False, "push": False, "pull": True}
    assert status_of(lambda: alice.client.put_files(org, repo, {"a": "a"})).status == 403
    work = clone(git, forge.clone_url(f"{org}/{repo}", token=alice.token, user=alice.login), "alice")
    commit_file(git, work, "a.txt", "a\n", "reader push")
    assert git.run("push", "origin", "main", cwd=work, check=False).returncode != 0

    edited = gitea.edit_team(readers["id"], readers["name"], permission="write", units=["repo.code"])
    assert edited["permission"] == "write" and edited["units_map"] == {"repo.code": "write"}
    git.run("push", "--quiet", "origin", "main", cwd=work)  # the same member may push now
    assert alice.client.get_team(readers["id"])["id"] == readers["id"]  # a member sees their team
    assert status_of(lambda: alice.client.get_team(owners["id"])).status == 403  # ... not another one
    assert status_of(lambda: alice.client.add_team_member(readers["id"], alice.login)).status == 403  # owners only
    assert status_of(lambda: people.new("outsider").client.get_team(readers["id"])).status == 404
    assert gitea.is_team_member(readers["id"], alice.login)
    gitea.remove_team_member(readers["id"], alice.login)
    assert not gitea.is_team_member(readers["id"], alice.login)
    assert status_of(lambda: alice.client.get_repo(org, repo)).status == 404  # private again
    gitea.delete_team(readers["id"])
    assert status_of(lambda: gitea.get_team(readers["id"])).status == 404
    seeded = forge.add_team(org, "seeded", "write", [alice.login])  # the embedded backend's shortcut
    assert gitea.get_team(seeded)["permission"] == "write" and gitea.is_team_member(seeded, alice.login)
    assert alice.client.get_repo(org, repo)["permissions"]["push"] is True
    assert (gitea.find_team(org, "OWNERS") or {}).get("id") == owners["id"]
