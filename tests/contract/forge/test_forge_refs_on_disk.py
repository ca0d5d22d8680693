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


def test_the_last_commit_of_every_path_at_every_commit_is_gits_own(tmp_path: Path) -> None:
    """``BareRepo.last_commit`` walks and caches; ``git log -1 C -- P`` is the reference, for files and
    directories, through renames, deletions, a history longer than the walk, a merge that changes a
    path on both sides and one that resolves a conflict by hand."""
    import random

    work = tmp_path / "work"
    env = git_env({"GIT_AUTHOR_NAME": "Layla", "GIT_AUTHOR_EMAIL": "layla@example.com",
                   "GIT_COMMITTER_NAME": "Layla", "GIT_COMMITTER_EMAIL": "layla@example.com"})

    def sh(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=work, env=env, capture_output=True, check=True).stdout.decode()

    def write(path: str, text: str) -> None:
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_text(text)

    work.mkdir()
    sh("init", "--quiet", "--initial-branch=main")
    write("README.md", "hello\n")
    write("orgs/acme.yaml", "a\n")
    sh("add", "-A")
    sh("commit", "--quiet", "-m", "root")
    for i in range(12):  # longer than the walk: old paths are answered by git from the walk's end
        write(f"orgs/org-{i}.yaml", f"{i}\n")
        sh("add", "-A")
        sh("commit", "--quiet", "-m", f"org {i}")
    sh("mv", "orgs/org-3.yaml", "orgs/renamed.yaml")
    sh("rm", "--quiet", "orgs/org-4.yaml")
    sh("commit", "--quiet", "-m", "rename and delete")
    sh("checkout", "--quiet", "-b", "feature")
    write("orgs/acme.yaml", "feature side\n")
    write("apps/shop/values.yaml", "x: 1\n")
    sh("add", "-A")
    sh("commit", "--quiet", "-m", "feature")
    sh("checkout", "--quiet", "main")
    write("README.md", "main side\n")
    sh("add", "-A")
    sh("commit", "--quiet", "-m", "main moves on")
    sh("merge", "--quiet", "--no-ff", "-m", "merge feature", "feature")
    sh("checkout", "--quiet", "-b", "conflict", "HEAD~1")
    write("README.md", "conflict side\n")
    sh("commit", "--quiet", "-am", "conflict side")
    sh("checkout", "--quiet", "main")
    subprocess.run(["git", "merge", "--quiet", "conflict"], cwd=work, env=env, capture_output=True)
    write("README.md", "resolved by hand\n")
    sh("add", "-A")
    sh("commit", "--quiet", "-m", "resolve")
    bare = tmp_path / "shop.git"
    sh("clone", "--quiet", "--bare", str(work), str(bare))
    repo = BareRepo(bare)

    commits = git(repo, "rev-list", "--all").split()
    paths = set()
    for sha in commits:
        for path in git(repo, "ls-tree", "-r", "-t", "--name-only", sha).split("\n"):
            if path:
                paths.add(path)
    pairs = [(sha, path) for sha in commits for path in sorted(paths)]
    random.Random(7).shuffle(pairs)  # every order of cache fills must give git's answers
    for sha, path in pairs:
        expected = git(repo, "log", "-1", "--format=%H", sha, "--", path).strip() or None
        found = repo.last_commit(sha, path)
        assert (found.sha if found else None) == expected, (sha, path)
