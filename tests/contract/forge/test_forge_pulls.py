"""Behaviour: promotion pull requests in the embedded Gitea (R-PROMO-01..03, DESIGN.md §3).

A promotion is a PR inside the App repo from ``staging`` to ``main`` (R-PROMO-01), merged only when
``main``'s branch protection is satisfied (R-PROMO-02): enough approvals from the approvals team,
never the author's own (R-PROMO-03), no standing change request; a push to the head makes earlier
approvals stale and — when the rule says so — dismisses them. The merge is a real merge commit seen by
``git log --merges`` on a clone; every timestamp follows the forge's virtual clock; the webhooks are
Gitea's ``pull_request`` / ``pull_request_review_*`` deliveries, signed with the hook secret.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from catalyst_sim.backends.embedded.forge import EmbeddedForge
from catalyst_sim.backends.embedded.forge.convert import rfc3339
from catalyst_sim.clients.gitea import GiteaClient, GiteaError
from catalyst_sim.clock import VirtualClock

from .conftest import Git, Receiver, unique
from .promotion import SECRET, People, bare_refs, clone, commit_file, setup_promotion, signed_by


@pytest.fixture
def people(forge: EmbeddedForge) -> Iterator[People]:
    crowd = People(forge)
    try:
        yield crowd
    finally:
        crowd.close()


def refused(call: object, status: int) -> GiteaError:
    """Run ``call`` expecting a GiteaError with ``status``; return it for message checks."""
    with pytest.raises(GiteaError) as caught:
        call()  # type: ignore[operator]
    assert caught.value.status == status, caught.value
    return caught.value


def test_promotion_pr_lists_files_and_commits_on_the_virtual_clock(
    forge: EmbeddedForge, gitea: GiteaClient, clock: VirtualClock, people: People
) -> None:
    p = setup_promotion(forge, gitea, people, {})
    clock.advance(timedelta(hours=3))
    opened_at = rfc3339(clock.now())
    pr = p.author.client.create_pull(p.org, p.repo, "staging", "main", "Promote staging to prod", "R-PROMO-01")
    assert pr["number"] == 1 and pr["state"] == "open" and pr["merged"] is False
    assert pr["created_at"] == pr["updated_at"] == opened_at
    assert pr["user"]["login"] == p.author.login and pr["title"] == "Promote staging to prod"
    assert (pr["head"]["ref"], pr["head"]["label"], pr["head"]["sha"]) == ("staging", "staging", p.staging_sha)
    assert (pr["base"]["ref"], pr["base"]["sha"]) == ("main", p.main_sha)
    assert pr["head"]["repo"]["full_name"] == pr["base"]["repo"]["full_name"] == p.full_name
    assert pr["mergeable"] is True and pr["merge_base"] == p.main_sha and pr["merged_at"] is None
    assert (pr["changed_files"], pr["additions"], pr["deletions"]) == (1, 1, 0)
    assert pr["html_url"].endswith(f"/{p.full_name}/pulls/1") and pr["diff_url"].endswith("/pulls/1.diff")

    files = gitea.pull_files(p.org, p.repo, 1)
    assert [(f["filename"], f["status"], f["additions"]) for f in files] == [
        ("overlays/prod/values.yaml", "added", 1)
    ]
    assert files[0]["contents_url"].endswith(f"/contents/overlays/prod/values.yaml?ref={p.staging_sha}")
    commits = gitea.pull_commits(p.org, p.repo, 1)
    assert [c["sha"] for c in commits] == [p.staging_sha]
    assert [pr["number"] for pr in gitea.list_pulls(p.org, p.repo)] == [1]
    assert gitea.get_repo(p.org, p.repo)["open_pr_counter"] == 1
    assert gitea.list_pulls(p.org, p.repo, state="closed") == []
    assert not gitea.is_pull_merged(p.org, p.repo, 1)
    # R-GIT/Gitea: the PR head is kept as refs/pull/1/head in the base repo
    assert bare_refs(forge, p.full_name)["refs/pull/1/head"] == p.staging_sha

    refused(lambda: gitea.create_pull(p.org, p.repo, "staging", "main", "again"), 409)
    refused(lambda: gitea.create_pull(p.org, p.repo, "main", "main", "nothing"), 422)
    refused(lambda: gitea.create_pull(p.org, p.repo, "staging", "no-such-branch", "x"), 404)
    refused(lambda: gitea.get_pull(p.org, p.repo, 99), 404)


def test_approvals_count_only_from_the_team_never_the_author_then_a_real_merge_commit(
    forge: EmbeddedForge, gitea: GiteaClient, clock: VirtualClock, people: People, git: Git
) -> None:
    p = setup_promotion(forge, gitea, people, {})
    p.author.client.create_pull(p.org, p.repo, "staging", "main", "Promote")
    own = refused(lambda: p.author.client.approve_pull(p.org, p.repo, 1), 422)
    assert own.message == "approve your own pull is not allowed"
    outsider = p.writer.client.approve_pull(p.org, p.repo, 1, "LGTM")
    assert outsider["official"] is False and outsider["state"] == "APPROVED"
    first = p.reviewers[0].client.approve_pull(p.org, p.repo, 1)
    assert first["official"] is True and first["commit_id"] == p.staging_sha and first["stale"] is False

    blocked = refused(lambda: p.author.client.merge_pull(p.org, p.repo, 1), 405)
    assert blocked.message == "not allowed to merge [reason: Does not have enough approvals]"
    assert bare_refs(forge, p.full_name)["refs/heads/main"] == p.main_sha

    p.reviewers[1].client.approve_pull(p.org, p.repo, 1)
    clock.advance(timedelta(hours=72))  # the soak period passes in virtual time
    merged_at = rfc3339(clock.now())
    p.author.client.merge_pull(p.org, p.repo, 1)

    pr = gitea.get_pull(p.org, p.repo, 1)
    assert pr["merged"] is True and pr["state"] == "closed" and pr["merged_at"] == merged_at
    assert pr["closed_at"] == merged_at and (pr["merged_by"] or {}).get("login") == p.author.login
    assert gitea.is_pull_merged(p.org, p.repo, 1)
    main = gitea.get_branch(p.org, p.repo, "main")["commit"]
    assert main["id"] == pr["merge_commit_sha"]
    assert main["message"] == "Merge pull request 'Promote' (#1) from staging into main\n"
    assert main["timestamp"] == merged_at

    work = clone(git, forge.clone_url(p.full_name), "merged")
    merges = git.out("log", "--merges", "--format=%H %P|%cI|%s", cwd=work).splitlines()
    assert merges == [
        f"{pr['merge_commit_sha']} {p.main_sha} {p.staging_sha}|{merged_at.replace('Z', '+00:00')}|"
        "Merge pull request 'Promote' (#1) from staging into main"
    ]
    assert (work / "overlays/prod/values.yaml").read_text() == "replicas: 2\n"
    again = refused(lambda: gitea.merge_pull(p.org, p.repo, 1), 405)
    assert again.message == "PR already merged"
    refused(lambda: gitea.close_pull(p.org, p.repo, 1), 412)


def test_a_change_request_blocks_until_an_admin_dismisses_it(
    forge: EmbeddedForge, gitea: GiteaClient, people: People
) -> None:
    p = setup_promotion(forge, gitea, people, {})
    p.author.client.create_pull(p.org, p.repo, "staging", "main", "Promote")
    refused(lambda: p.reviewers[2].client.request_changes(p.org, p.repo, 1, "   "), 422)  # a body is required
    rejection = p.reviewers[2].client.request_changes(p.org, p.repo, 1, "replicas must stay at 1")
    assert rejection["state"] == "REQUEST_CHANGES" and rejection["official"] is True
    for reviewer in p.reviewers[:2]:
        reviewer.client.approve_pull(p.org, p.repo, 1)
    blocked = refused(lambda: p.author.client.merge_pull(p.org, p.repo, 1), 405)
    assert blocked.message == "not allowed to merge [reason: There are requested changes]"

    denied = refused(lambda: p.reviewers[0].client.dismiss_review(p.org, p.repo, 1, rejection["id"], "no"), 403)
    assert denied.message == "Must be repo admin"
    dismissed = gitea.dismiss_review(p.org, p.repo, 1, rejection["id"], "overruled by the platform lead")
    assert dismissed["dismissed"] is True and dismissed["id"] == rejection["id"]
    again = gitea.undismiss_review(p.org, p.repo, 1, rejection["id"])
    assert again["dismissed"] is False
    refused(lambda: p.author.client.merge_pull(p.org, p.repo, 1), 405)
    gitea.dismiss_review(p.org, p.repo, 1, rejection["id"])
    p.author.client.merge_pull(p.org, p.repo, 1)
    assert gitea.get_pull(p.org, p.repo, 1)["merged"] is True
    states = {(r["user"]["login"], r["state"], r["dismissed"]) for r in gitea.list_reviews(p.org, p.repo, 1)}
    assert (p.reviewers[2].login, "REQUEST_CHANGES", True) in states
    refused(lambda: gitea.dismiss_review(p.org, p.repo, 1, rejection["id"]), 403)  # merged: Gitea refuses


def test_a_reviewer_who_approves_after_requesting_changes_no_longer_blocks(
    forge: EmbeddedForge, gitea: GiteaClient, people: People
) -> None:
    p = setup_promotion(forge, gitea, people, {"required_approvals": 1})
    p.author.client.create_pull(p.org, p.repo, "staging", "main", "Promote")
    reviewer = p.reviewers[0].client
    rejection = reviewer.request_changes(p.org, p.repo, 1, "not yet")
    refused(lambda: p.author.client.merge_pull(p.org, p.repo, 1), 405)
    reviewer.approve_pull(p.org, p.repo, 1)  # Gitea: only the reviewer's latest review is official
    assert reviewer.get_review(p.org, p.repo, 1, rejection["id"])["official"] is False
    p.author.client.merge_pull(p.org, p.repo, 1)


def test_a_new_push_makes_approvals_stale_and_dismisses_them_when_configured(
    forge: EmbeddedForge, gitea: GiteaClient, people: People, git: Git, receiver: Receiver
) -> None:
    p = setup_promotion(forge, gitea, people, {"dismiss_stale_approvals": True})
    path = f"/{unique('sync')}"
    gitea.create_repo_hook(p.org, p.repo, receiver.url(path), secret=SECRET, events=["pull_request_sync"])
    p.author.client.create_pull(p.org, p.repo, "staging", "main", "Promote")
    for reviewer in p.reviewers[:2]:
        reviewer.client.approve_pull(p.org, p.repo, 1)

    work = clone(git, forge.clone_url(p.full_name, token=p.author.token, user=p.author.login), "s", "-b", "staging")
    new_head = commit_file(git, work, "overlays/prod/values.yaml", "replicas: 3\n", "More replicas")
    git.run("push", "--quiet", "origin", "staging", cwd=work)

    pr = gitea.get_pull(p.org, p.repo, 1)
    assert pr["head"]["sha"] == new_head and bare_refs(forge, p.full_name)["refs/pull/1/head"] == new_head
    reviews = gitea.list_reviews(p.org, p.repo, 1)
    assert [(r["stale"], r["dismissed"]) for r in reviews] == [(True, True), (True, True)]
    blocked = refused(lambda: p.author.client.merge_pull(p.org, p.repo, 1), 405)
    assert "Does not have enough approvals" in blocked.message

    sync = receiver.wait_for(lambda r: r.path == path)
    payload = json.loads(sync.body)
    assert sync.headers["x-gitea-event"] == "pull_request" and sync.headers["x-gitea-event-type"] == "pull_request_sync"
    assert payload["action"] == "synchronized" and payload["pull_request"]["head"]["sha"] == new_head
    assert signed_by(sync.body, sync.headers)

    fresh = [r.client.approve_pull(p.org, p.repo, 1) for r in p.reviewers[:2]]
    assert all(r["commit_id"] == new_head and not r["stale"] for r in fresh)
    p.author.client.merge_pull(p.org, p.repo, 1, head_commit_id=new_head)
    assert gitea.get_pull(p.org, p.repo, 1)["merged"] is True


def test_without_dismissal_a_stale_approval_still_counts_unless_ignored(
    forge: EmbeddedForge, gitea: GiteaClient, people: People
) -> None:
    p = setup_promotion(forge, gitea, people, {"dismiss_stale_approvals": False, "required_approvals": 1})
    p.author.client.create_pull(p.org, p.repo, "staging", "main", "Promote")
    p.reviewers[0].client.approve_pull(p.org, p.repo, 1)
    p.author.client.put_files(p.org, p.repo, {"overlays/prod/values.yaml": "replicas: 4\n"}, branch="staging")
    [review] = gitea.list_reviews(p.org, p.repo, 1)
    assert review["stale"] is True and review["dismissed"] is False
    gitea.edit_branch_protection(p.org, p.repo, "main", ignore_stale_approvals=True)
    blocked = refused(lambda: p.author.client.merge_pull(p.org, p.repo, 1), 405)
    assert "Does not have enough approvals" in blocked.message
    gitea.edit_branch_protection(p.org, p.repo, "main", ignore_stale_approvals=False)
    refused(lambda: p.author.client.merge_pull(p.org, p.repo, 1, head_commit_id=p.staging_sha), 409)
    p.author.client.merge_pull(p.org, p.repo, 1)


def test_a_conflicting_merge_is_409_and_moves_nothing(
    forge: EmbeddedForge, gitea: GiteaClient, people: People
) -> None:
    p = setup_promotion(forge, gitea, people, None)
    for branch, replicas in (("hotfix-a", "5"), ("hotfix-b", "7")):
        gitea.create_branch(p.org, p.repo, branch, from_branch="main")
        gitea.put_files(p.org, p.repo, {"README.md": f"replicas: {replicas}\n"}, branch=branch)
    first = gitea.create_pull(p.org, p.repo, "hotfix-a", "main", "a")
    second = gitea.create_pull(p.org, p.repo, "hotfix-b", "main", "b")
    assert first["mergeable"] is second["mergeable"] is True
    gitea.merge_pull(p.org, p.repo, first["number"])
    main = gitea.get_branch(p.org, p.repo, "main")["commit"]["id"]
    assert gitea.get_pull(p.org, p.repo, second["number"])["mergeable"] is False
    conflict = refused(lambda: gitea.merge_pull(p.org, p.repo, second["number"]), 409)
    assert "README.md" in conflict.message
    assert gitea.get_branch(p.org, p.repo, "main")["commit"]["id"] == main
    assert gitea.get_pull(p.org, p.repo, second["number"])["merged"] is False


def test_squash_and_fast_forward_only_merges(forge: EmbeddedForge, gitea: GiteaClient, people: People) -> None:
    p = setup_promotion(forge, gitea, people, None)
    squash = p.author.client.create_pull(p.org, p.repo, "staging", "main", "Squash me")
    gitea.merge_pull(p.org, p.repo, squash["number"], style="squash", message="details")
    head = gitea.get_commit(p.org, p.repo, gitea.get_branch(p.org, p.repo, "main")["commit"]["id"])
    assert [c["sha"] for c in head["parents"]] == [p.main_sha]
    assert head["commit"]["message"] == "Squash me (#1)\n\ndetails\n"
    assert head["commit"]["author"]["name"] == p.author.login  # Gitea: the poster authors a squash

    gitea.create_branch(p.org, p.repo, "next", from_branch="main")
    tip = gitea.put_files(p.org, p.repo, {"next.txt": "n\n"}, branch="next")["commit"]["sha"]
    ff = gitea.create_pull(p.org, p.repo, "next", "main", "Fast forward")
    refused(lambda: gitea.merge_pull(p.org, p.repo, ff["number"], style="rebase"), 405)
    gitea.merge_pull(p.org, p.repo, ff["number"], style="fast-forward-only", delete_branch_after_merge=True)
    assert gitea.get_branch(p.org, p.repo, "main")["commit"]["id"] == tip
    assert gitea.get_pull(p.org, p.repo, ff["number"])["merge_commit_sha"] == tip
    assert "next" not in {b["name"] for b in gitea.list_branches(p.org, p.repo)}
    assert gitea.get_pull(p.org, p.repo, ff["number"])["head"]["sha"] == tip  # kept in refs/pull/2/head


def test_close_reopen_edit_and_review_rules(forge: EmbeddedForge, gitea: GiteaClient, people: People) -> None:
    p = setup_promotion(forge, gitea, people, {})
    p.author.client.create_pull(p.org, p.repo, "staging", "main", "Promote")
    outsider = people.new("reader")  # may read (public repo) but is neither poster nor writer
    refused(lambda: outsider.client.edit_pull(p.org, p.repo, 1, title="hijack"), 403)
    assert p.author.client.edit_pull(p.org, p.repo, 1, title="Promote v2")["title"] == "Promote v2"
    comment = p.reviewers[0].client.create_review(p.org, p.repo, 1, "COMMENT", "looks fine")
    assert comment["state"] == "COMMENT" and comment["official"] is False
    refused(lambda: p.reviewers[1].client.delete_review(p.org, p.repo, 1, comment["id"]), 403)
    p.reviewers[0].client.delete_review(p.org, p.repo, 1, comment["id"])
    refused(lambda: gitea.get_review(p.org, p.repo, 1, comment["id"]), 404)
    refused(lambda: p.author.client.request_changes(p.org, p.repo, 1, "self"), 422)
    refused(lambda: gitea.create_review(p.org, p.repo, 1, "PENDING", "x"), 422)  # type: ignore[arg-type]

    closed = p.author.client.close_pull(p.org, p.repo, 1)
    assert closed["state"] == "closed" and closed["merged"] is False and closed["closed_at"]
    refused(lambda: p.reviewers[0].client.approve_pull(p.org, p.repo, 1), 422)
    refused(lambda: p.author.client.merge_pull(p.org, p.repo, 1), 404)  # Gitea: ErrIsClosed -> 404
    assert [pr["number"] for pr in gitea.list_pulls(p.org, p.repo, state="closed")] == [1]
    reopened = p.author.client.reopen_pull(p.org, p.repo, 1)
    assert reopened["state"] == "open" and reopened["closed_at"] is None
    refused(lambda: gitea.merge_pull(p.org, p.repo, 1), 405)  # protection still applies to admins


def test_pull_request_and_review_webhooks_are_gitea_shaped_and_signed(
    forge: EmbeddedForge, gitea: GiteaClient, people: People, receiver: Receiver
) -> None:
    p = setup_promotion(forge, gitea, people, {"required_approvals": 1})
    path = f"/{unique('prhook')}"
    hook = gitea.create_org_hook(p.org, receiver.url(path), secret=SECRET, events=["push", "pull_request"])
    assert {"pull_request", "pull_request_sync", "pull_request_review_approved"} <= set(hook["events"])

    p.author.client.create_pull(p.org, p.repo, "staging", "main", "Promote", "first body")
    p.author.client.edit_pull(p.org, p.repo, 1, title="Promote to prod")
    p.reviewers[0].client.create_review(p.org, p.repo, 1, "COMMENT", "a question")
    p.reviewers[1].client.request_changes(p.org, p.repo, 1, "not yet")
    p.reviewers[1].client.approve_pull(p.org, p.repo, 1, "now yes")
    p.author.client.merge_pull(p.org, p.repo, 1)

    def deliveries(count: int) -> list[tuple[str, str, dict[str, Any]]]:
        receiver.wait_for(lambda r: r.path == path and len(receiver.received(path)) >= count)
        got = receiver.received(path)
        assert all(signed_by(r.body, r.headers) for r in got)
        return [(r.headers["x-gitea-event"], r.headers["x-gitea-event-type"], json.loads(r.body)) for r in got]

    seen = deliveries(7)
    kinds = [(event, kind, payload.get("action")) for event, kind, payload in seen]
    assert kinds == [
        ("pull_request", "pull_request", "opened"),
        ("pull_request", "pull_request", "edited"),
        ("pull_request_comment", "pull_request_review_comment", "reviewed"),
        ("pull_request_rejected", "pull_request_review_rejected", "reviewed"),
        ("pull_request_approved", "pull_request_review_approved", "reviewed"),
        ("push", "push", None),
        ("pull_request", "pull_request", "closed"),
    ]
    opened, edited, _, rejected, approved, push, closed = (payload for _, _, payload in seen)
    assert opened["number"] == 1 and opened["sender"]["login"] == p.author.login
    assert opened["pull_request"]["head"]["sha"] == p.staging_sha and opened["review"] is None
    assert opened["repository"]["full_name"] == p.full_name and opened["requested_reviewer"] is None
    assert edited["changes"] == {"title": {"from": "Promote"}}
    assert rejected["review"] == {"type": "pull_request_review_rejected", "content": "not yet"}
    assert approved["review"] == {"type": "pull_request_review_approved", "content": "now yes"}
    assert approved["sender"]["login"] == p.reviewers[1].login
    assert push["ref"] == "refs/heads/main" and push["after"] == closed["pull_request"]["merge_commit_sha"]
    assert push["pusher"]["login"] == p.author.login
    assert closed["pull_request"]["merged"] is True and closed["pull_request"]["state"] == "closed"
    recorded = forge.deliveries(event="pull_request_approved")
    assert recorded and recorded[-1].event_type == "pull_request_review_approved"
