"""The cached ref advertisement (and the forge's cached ref reads) follow every way a ref can move.

Flux polls ``info/refs`` thousands of times in a long soak; the forge answers unchanged repositories
from a cache (``forge/advertisement.py``). These tests prove the cache can never serve a stale
branch head: after an API commit, a ``git push``, a branch deletion and a harness rewind of a ref,
the in-process listing (what the GitOps engine reads) equals what real ``git ls-remote`` sees.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from catalyst_sim.backends.embedded.forge import EmbeddedForge
from catalyst_sim.clients.gitea import GiteaClient
from catalyst_sim.control.gitops.git import Credentials, GitError, parse_advertisement, remote_refs

from .conftest import Git
from .test_forge_git import clone, commit_file


def ls_remote(git: Git, url: str) -> dict[str, str]:
    out = git.out("-c", "protocol.version=0", "ls-remote", url, cwd=git.home)
    return {ref: sha for sha, _, ref in (line.partition("\t") for line in out.splitlines()) if ref != "HEAD"}


def test_listing_follows_api_commits_pushes_deletions_and_rewinds(
    forge: EmbeddedForge, gitea: GiteaClient, git: Git, new_repo: Callable[..., tuple[str, str]]
) -> None:
    org, repo = new_repo(auto_init=True)
    plain = f"{forge.url}/{org}/{repo}.git"
    credentials = Credentials(forge.admin, forge.token)
    url = forge.clone_url(f"{org}/{repo}")
    with httpx.Client() as http:

        def listing() -> dict[str, str]:
            refs = remote_refs(http, plain, credentials)
            assert refs == ls_remote(git, url)
            return refs

        first = listing()
        hits = forge.smart_http.advertisements.hits
        assert listing() == first
        assert forge.smart_http.advertisements.hits == hits + 2  # ours and git's: both from the cache
        hits = forge.smart_http.advertisements.hits

        created = gitea.create_file(org, repo, "a.txt", "a")["commit"]["sha"]
        assert listing()["refs/heads/main"] == created

        work = clone(git, url)
        pushed = commit_file(git, work, "b.txt", "b", "b")
        git.run("push", "--quiet", "origin", "main", "main:feature", cwd=work)
        refs = listing()
        assert refs["refs/heads/main"] == refs["refs/heads/feature"] == pushed

        git.run("push", "--quiet", "origin", ":feature", cwd=work)
        assert "refs/heads/feature" not in listing()

        bare = forge.service.bare(forge.state.get_repo(org, repo))
        assert gitea.get_branch(org, repo, "main")["commit"]["id"] == pushed  # the API reads refs too (cached)
        bare.update_ref("refs/heads/main", created, pushed, message="rewind")  # what a harness reset does
        assert listing()["refs/heads/main"] == created
        assert gitea.get_branch(org, repo, "main")["commit"]["id"] == created
        assert gitea.list_commits(org, repo, sha="main")[0]["sha"] == created
        assert forge.smart_http.advertisements.hits > hits


def test_listing_errors_read_like_git_and_hide_the_credentials(
    forge: EmbeddedForge, new_repo: Callable[..., tuple[str, str]]
) -> None:
    org, repo = new_repo(auto_init=True, private=True)
    with httpx.Client() as http:
        with pytest.raises(GitError) as refused:
            remote_refs(http, f"{forge.url}/{org}/{repo}.git", Credentials("nobody", "wrong-password"))
        assert refused.value.auth and "wrong-password" not in refused.value.message
        with pytest.raises(GitError, match="not found"):
            remote_refs(http, f"{forge.url}/{org}/no-such-repo.git", Credentials(forge.admin, forge.token))


def test_advertisement_parsing_skips_capabilities_and_peeled_tags() -> None:
    sha_a, sha_b = "a" * 40, "b" * 40

    def pkt(line: bytes) -> bytes:
        return f"{len(line) + 4:04x}".encode() + line

    body = (pkt(b"# service=git-upload-pack\n") + b"0000"
            + pkt(sha_a.encode() + b" refs/heads/main\0multi_ack side-band-64k symref=HEAD:refs/heads/main\n")
            + pkt(sha_b.encode() + b" refs/tags/v1\n") + pkt(sha_a.encode() + b" refs/tags/v1^{}\n") + b"0000")
    assert parse_advertisement(body) == {"refs/heads/main": sha_a, "refs/tags/v1": sha_b}
    with pytest.raises(GitError, match="malformed"):
        parse_advertisement(b"zzzz")
    with pytest.raises(GitError, match="malformed"):
        parse_advertisement(pkt(b"x") + b"0fffab")
