"""The forge reads refs from the files backend itself; it must see exactly what ``git for-each-ref`` sees.

Branch heads are read on every Gitea API call and every webhook, so the forge parses ``packed-refs``
and loose ref files instead of starting git (``advertisement.refs_in``). Git packs refs on its own
(``pack-refs``, ``gc``) and a deleted packed ref leaves a rewritten ``packed-refs``; these tests put a
real repository through each of those states and compare with git's own listing every time.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from catalyst_sim.backends.embedded.forge.bare import ZERO_SHA, BareRepo, Signature, TreeWrite, git_env
from catalyst_sim.backends.embedded.forge.bare import datetime as bare_datetime

WHEN = bare_datetime.fromisoformat("2026-11-26T10:00:00+00:00")
ME = Signature("Ahmed", "ahmed@example.com", WHEN)


def git(repo: BareRepo, *args: str) -> str:
    done = subprocess.run(["git", *args], env=git_env({"GIT_DIR": str(repo.path)}), capture_output=True, check=True)
    return done.stdout.decode()


def for_each_ref(repo: BareRepo, pattern: str = "refs/") -> dict[str, str]:
    out = git(repo, "for-each-ref", "--format=%(objectname) %(refname)", pattern)
    return {ref: sha for sha, _, ref in (line.partition(" ") for line in out.splitlines())}


def commit(repo: BareRepo, parent: str | None, text: str) -> str:
    return repo.make_commit(parent, [TreeWrite("file.txt", text.encode())], [], text, ME, ME).sha


@pytest.fixture
def repo(tmp_path: Path) -> BareRepo:
    template = BareRepo.write_template(tmp_path / "template")
    return BareRepo.init(tmp_path / "acme" / "shop.git", "main", template=template)


def test_a_new_repository_from_the_template_is_configured_and_hooked(repo: BareRepo) -> None:
    assert git(repo, "config", "--get", "http.receivepack").strip() == "true"
    assert git(repo, "config", "--get", "core.logAllRefUpdates").strip() == "true"
    assert git(repo, "config", "--get", "core.bare").strip() == "true"
    hook = repo.path / "hooks" / "pre-receive"
    assert hook.stat().st_mode & 0o111 and "protected branch" in hook.read_text()
    assert repo.refs() == {} and repo.is_empty()


def test_loose_packed_and_mixed_refs_read_as_git_reads_them(repo: BareRepo) -> None:
    first = commit(repo, None, "one")
    second = commit(repo, first, "two")
    for branch in ("main", "develop", "staging", "feature/x"):
        repo.update_ref(f"refs/heads/{branch}", first, ZERO_SHA)
    repo.set_ref("refs/pull/1/head", second)
    assert repo.refs() == for_each_ref(repo)  # all loose

    git(repo, "pack-refs", "--all")
    assert not (repo.path / "refs" / "heads" / "main").exists()
    assert repo.refs() == for_each_ref(repo) and repo.branch_sha("main") == first  # all packed

    repo.update_ref("refs/heads/main", second, first)  # a loose ref now shadows its packed entry
    repo.delete_ref("refs/heads/staging", first)  # a packed ref deleted: packed-refs rewritten
    assert repo.branch_sha("main") == second and repo.branch_sha("staging") is None
    assert repo.refs() == for_each_ref(repo)
    for pattern in ("refs/heads/", "refs/heads/feature", "refs/heads/main", "refs/heads/mai", "refs/pull/"):
        assert repo.refs(pattern) == for_each_ref(repo, pattern), pattern
    assert repo.refs("refs/heads/*") == for_each_ref(repo, "refs/heads/*")  # globs are git's own business


def test_a_symbolic_ref_shows_its_targets_object(repo: BareRepo) -> None:
    head = commit(repo, None, "one")
    repo.update_ref("refs/heads/main", head, ZERO_SHA)
    git(repo, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/heads/main")
    assert repo.refs() == for_each_ref(repo)
    assert repo.refs()["refs/remotes/origin/HEAD"] == head


def test_branch_heads_with_their_commits_match_gits_listing(repo: BareRepo) -> None:
    first = commit(repo, None, "one")
    second = commit(repo, first, "two\n\nwith a body")
    repo.update_ref("refs/heads/main", second, ZERO_SHA)
    repo.update_ref("refs/heads/develop", first, ZERO_SHA)
    git(repo, "pack-refs", "--all")
    heads = {head.name: head.commit for head in repo.branches()}
    assert sorted(heads) == ["develop", "main"]
    assert heads["main"].sha == second and heads["main"].parents == [first]
    contents = git(repo, "for-each-ref", "--format=%(contents)", "refs/heads/main")
    assert heads["main"].message == contents.removesuffix("\n")  # for-each-ref ends each record with a newline
    assert heads["develop"].author == ME
