"""Behaviour: Gitea's API rules as seen through our ``GiteaClient`` (the one the control plane uses).

Auth (401 without or with a bad token, 403 for a missing scope or a forced password change),
visibility (a private repo is 404 to outsiders), contents rules (stale sha refused, existing file
refused, renames), paging (``Link`` and ``X-Total-Count`` followed by the client), deletion rules,
and the client's ``GiteaError`` carrying status, message, method and URL.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from catalyst_sim.backends.embedded.forge import EmbeddedForge
from catalyst_sim.clients.gitea import FileChange, GiteaClient, GiteaError

from .conftest import unique


def test_version_is_one_a_gitea_client_accepts(gitea: GiteaClient, forge: EmbeddedForge) -> None:
    version = gitea.version()
    assert version == forge.version and version.split("+")[0].split(".")[:2] == ["1", "22"]


def test_missing_repo_is_404_with_gitea_error_fields(gitea: GiteaClient, forge: EmbeddedForge) -> None:
    with pytest.raises(GiteaError) as caught:
        gitea.get_repo("nobody", "nothing")
    error = caught.value
    assert (error.status, error.method) == (404, "GET")
    assert error.url == f"{forge.url}/api/v1/repos/nobody/nothing"
    assert "The target couldn't be found." in error.message
    assert not gitea.repo_exists("nobody", "nothing")


def test_no_token_or_a_bad_token_is_401(
    forge: EmbeddedForge, new_repo: Callable[..., tuple[str, str]]
) -> None:
    org, repo = new_repo(auto_init=True)
    with GiteaClient(forge.url) as anonymous:
        assert anonymous.get_repo(org, repo)["full_name"] == f"{org}/{repo}"  # public reads are anonymous
        for call in (anonymous.current_user, lambda: anonymous.create_org(unique("org"))):
            with pytest.raises(GiteaError) as caught:
                call()
            assert caught.value.status == 401 and caught.value.message == "token is required"
    with GiteaClient(forge.url, "0" * 40) as bogus:
        with pytest.raises(GiteaError) as caught:
            bogus.get_repo(org, repo)  # a presented but unknown token is 401 even on a public read
        assert caught.value.status == 401


def test_private_repo_is_invisible_without_permission(forge: EmbeddedForge, gitea: GiteaClient) -> None:
    org = unique("org")
    gitea.create_org(org)
    secret, public = unique("secret"), unique("public")
    gitea.create_org_repo(org, secret, private=True)
    gitea.create_org_repo(org, public)
    outsider, token = forge.create_user(unique("outsider"))
    with GiteaClient(forge.url, token) as client:
        with pytest.raises(GiteaError) as caught:
            client.get_repo(org, secret)
        assert caught.value.status == 404
        assert [r["name"] for r in client.list_org_repos(org)] == [public]
        forge.add_org_member(org, outsider.login, "read")
        repo = client.get_repo(org, secret)
        assert repo["permissions"] == {"admin": False, "push": False, "pull": True}
        with pytest.raises(GiteaError) as caught:
            client.create_file(org, secret, "x.txt", "x")
        assert caught.value.status == 403


def test_contents_rules_stale_sha_existing_file_and_rename(
    gitea: GiteaClient, new_repo: Callable[..., tuple[str, str]]
) -> None:
    org, repo = new_repo(auto_init=True)
    created = gitea.create_file(org, repo, "conf/app.yaml", "v: 1\n", message="add app")
    assert created["commit"]["message"] == "add app\n"
    first_sha = created["content"]["sha"]  # type: ignore[index]
    with pytest.raises(GiteaError) as caught:
        gitea.create_file(org, repo, "conf/app.yaml", "v: 9\n")
    assert caught.value.status == 422 and "already exists" in caught.value.message
    updated = gitea.update_file(org, repo, "conf/app.yaml", "v: 2\n", first_sha)
    with pytest.raises(GiteaError) as caught:
        gitea.update_file(org, repo, "conf/app.yaml", "v: 3\n", first_sha)  # stale sha
    assert caught.value.status == 422 and "sha does not match" in caught.value.message
    with pytest.raises(GiteaError) as caught:
        gitea.delete_file(org, repo, "conf/app.yaml", first_sha)
    assert caught.value.status == 400
    with pytest.raises(GiteaError) as caught:
        gitea.create_file(org, repo, "conf/app.yaml/inner", "x")
    assert caught.value.status == 422
    renamed = gitea.update_file(
        org,
        repo,
        "conf/renamed.yaml",
        "v: 2\n",
        updated["content"]["sha"],  # type: ignore[index]
        from_path="conf/app.yaml",
    )
    assert renamed["content"]["path"] == "conf/renamed.yaml"  # type: ignore[index]
    assert [e["name"] for e in gitea.list_dir(org, repo, "conf")] == ["renamed.yaml"]
    assert gitea.read_file(org, repo, "conf/renamed.yaml") == "v: 2\n"
    gitea.delete_file(org, repo, "conf/renamed.yaml", renamed["content"]["sha"])  # type: ignore[index]
    assert gitea.file_sha(org, repo, "conf/renamed.yaml") is None


def test_multi_file_commit_defaults_and_put_files_is_idempotent(
    gitea: GiteaClient, new_repo: Callable[..., tuple[str, str]]
) -> None:
    org, repo = new_repo(auto_init=True)
    result = gitea.change_files(
        org,
        repo,
        [
            FileChange("create", "a.yaml", "a"),
            FileChange("create", "b.yaml", "b"),
            FileChange("delete", "README.md", sha=gitea.file_sha(org, repo, "README.md")),
        ],
    )
    assert result["commit"]["message"] == "Add a.yaml, b.yaml\nDelete README.md\n"
    assert result["files"][2] is None
    first = gitea.put_files(org, repo, {"a.yaml": "a2", "c.yaml": "c"}, message="sync", branch="main")
    assert len(first["commit"]["parents"]) == 1
    assert gitea.read_file(org, repo, "a.yaml") == "a2" and gitea.read_file(org, repo, "c.yaml") == "c"
    feature = gitea.change_files(org, repo, [FileChange("create", "f.yaml", "f")], new_branch="feature")
    assert gitea.get_branch(org, repo, "feature")["commit"]["id"] == feature["commit"]["sha"]
    assert gitea.file_sha(org, repo, "f.yaml", ref="main") is None


def test_commit_listing_paging_and_single_commit(
    gitea: GiteaClient, http: httpx.Client, auth: dict[str, str], new_repo: Callable[..., tuple[str, str]]
) -> None:
    org, repo = new_repo(auto_init=True)
    for index in range(4):
        gitea.create_file(org, repo, f"f{index}.txt", f"{index}\n" * (index + 1))
    page = gitea.list_commits(org, repo, limit=2, page=2)
    everything = gitea.list_commits(org, repo)
    assert [c["sha"] for c in page] == [c["sha"] for c in everything[2:4]]
    assert len(everything) == 5 and everything[-1]["commit"]["message"] == "Initial commit\n"
    by_path = gitea.list_commits(org, repo, path="f2.txt")
    assert [c["commit"]["message"] for c in by_path] == ["Add f2.txt\n"]
    single = gitea.get_commit(org, repo, everything[0]["sha"])
    assert single["files"] == [{"filename": "f3.txt", "status": "added"}]
    assert single["stats"] == {"total": 4, "additions": 4, "deletions": 0}
    response = http.get(f"/repos/{org}/{repo}/commits", params={"limit": 2, "page": 2}, headers=auth)
    assert response.headers["X-Total-Count"] == "5" and response.headers["X-PageCount"] == "3"
    links = response.headers["Link"]
    for rel, target in (("next", 3), ("last", 3), ("first", 1), ("prev", 1)):
        assert f'limit=2&page={target}>; rel="{rel}"' in links, links


def test_client_follows_pages_beyond_the_maximum_page_size(
    gitea: GiteaClient, http: httpx.Client, new_repo: Callable[..., tuple[str, str]]
) -> None:
    org, repo = new_repo(auto_init=True)
    for index in range(55):
        gitea.create_branch(org, repo, f"b{index:02d}")
    assert len(gitea.list_branches(org, repo)) == 56
    response = http.get(f"/repos/{org}/{repo}/branches", params={"limit": 100})
    assert len(response.json()) == 50 and response.headers["X-Total-Count"] == "56"  # MAX_RESPONSE_ITEMS


def test_forced_password_change_and_token_scopes(
    forge: EmbeddedForge, http: httpx.Client, auth: dict[str, str]
) -> None:
    login, password = unique("newbie"), "a-long-password"
    created = http.post(
        "/admin/users",
        headers=auth,
        json={"username": login, "email": f"{login}@example.invalid", "password": password},
    )
    assert created.status_code == 201
    basic = httpx.BasicAuth(login, password)
    refused = http.post(f"/users/{login}/tokens", auth=basic, json={"name": "t", "scopes": ["all"]})
    assert refused.status_code == 403 and "change your password" in refused.json()["message"]
    ready = unique("ready")
    with GiteaClient(forge.url, forge.token) as admin:
        admin.create_user(ready, f"{ready}@example.invalid", password)
        token = admin.create_token(ready, password, "ro", scopes=["read:repository", "read:organization"])
    assert token["sha1"] and token["token_last_eight"] == token["sha1"][-8:]
    with GiteaClient(forge.url, token["sha1"]) as readonly:
        assert readonly.list_orgs() is not None
        with pytest.raises(GiteaError) as caught:
            readonly.create_org(unique("org"))
        assert caught.value.status == 403 and "write:organization" in caught.value.message


def test_deletion_rules(forge: EmbeddedForge, gitea: GiteaClient) -> None:
    org, repo = unique("org"), unique("app")
    gitea.create_org(org)
    gitea.create_org_repo(org, repo, auto_init=True)
    gitea.create_branch(org, repo, "develop")
    with pytest.raises(GiteaError) as caught:
        gitea.delete_branch(org, repo, "main")
    assert caught.value.status == 403
    gitea.delete_branch(org, repo, "develop")
    with pytest.raises(GiteaError) as caught:
        gitea.delete_org(org)  # still owns a repo: Gitea's 500
    assert caught.value.status == 500
    path = forge.state.get_repo(org, repo).path  # type: ignore[union-attr]
    assert path.is_dir()
    gitea.delete_repo(org, repo)
    assert not path.exists() and not gitea.repo_exists(org, repo)
    gitea.delete_org(org)
    assert not gitea.org_exists(org)


def test_hooks_list_edit_delete_through_the_client(
    gitea: GiteaClient, new_repo: Callable[..., tuple[str, str]]
) -> None:
    org, repo = new_repo(auto_init=True)
    repo_hook = gitea.create_repo_hook(org, repo, "http://127.0.0.1:9/r", events=["push", "create"])
    org_hook = gitea.create_org_hook(org, "http://127.0.0.1:9/o", content_type="form")
    assert repo_hook["events"] == ["create", "push"] and repo_hook["active"] is True
    assert "secret" not in repo_hook["config"]
    assert [h["id"] for h in gitea.list_repo_hooks(org, repo)] == [repo_hook["id"]]
    assert [h["config"]["content_type"] for h in gitea.list_org_hooks(org)] == ["form"]
    gitea.delete_repo_hook(org, repo, repo_hook["id"])
    gitea.delete_org_hook(org, org_hook["id"])
    assert gitea.list_repo_hooks(org, repo) == [] and gitea.list_org_hooks(org) == []


def test_contents_of_a_directory_and_a_file(
    gitea: GiteaClient, new_repo: Callable[..., tuple[str, str]]
) -> None:
    org, repo = new_repo(auto_init=True)
    gitea.change_files(
        org,
        repo,
        [
            FileChange("create", "overlays/dev/values.yaml", "d"),
            FileChange("create", "overlays/prod/values.yaml", "p"),
        ],
    )
    root = gitea.list_dir(org, repo)
    assert [(e["name"], e["type"]) for e in root] == [("README.md", "file"), ("overlays", "dir")]
    assert all(e["content"] is None for e in root)  # a listing never carries content
    entry = gitea.get_contents(org, repo, "overlays/prod/values.yaml", ref="main")
    assert isinstance(entry, dict) and base64.b64decode(entry["content"] or "") == b"p"
    assert entry["_links"]["self"] == entry["url"]
    with pytest.raises(GiteaError) as caught:
        gitea.read_file(org, repo, "overlays")
    assert caught.value.status == 422
    odd = "docs/read me #1?.md"  # spaces, '#' and '?' survive the URL path both ways
    gitea.create_file(org, repo, odd, "odd")
    assert gitea.read_file(org, repo, odd) == "odd"
    assert [e["path"] for e in gitea.list_dir(org, repo, "docs")] == [odd]


def test_evidence_bundle_has_state_deliveries_and_log_but_no_token(
    forge: EmbeddedForge, gitea: GiteaClient, tmp_path: Path, new_repo: Callable[..., tuple[str, str]]
) -> None:
    org, repo = new_repo(auto_init=True)
    gitea.create_file(org, repo, "x.txt", "x")
    directory = forge.write_evidence(tmp_path / "evidence")
    snapshot = json.loads((directory / "forge.json").read_text())
    repo_info = next(r for r in snapshot["repos"] if r["full_name"] == f"{org}/{repo}")
    assert set(repo_info["branches"]) == {"main"}
    log = (directory / "forge-log.jsonl").read_text()
    assert "api commit" in log and forge.token not in log and forge.token not in json.dumps(snapshot)


def test_client_conveniences_used_by_the_control_plane(forge: EmbeddedForge, gitea: GiteaClient) -> None:
    org, repo = unique("org"), unique("app")
    gitea.create_org(org)
    gitea.create_repo(org, repo, private=True, description="an App repo")
    first = gitea.commit_files(
        org,
        repo,
        "main",
        {"kustomization.yaml": "v1", "overlays/dev/values.yaml": "d"},
        message="Install app",
        author="Jane Ops <jane@acme.invalid>",
    )
    assert first["commit"]["author"] == {
        "name": "Jane Ops",
        "email": "jane@acme.invalid",
        "date": first["commit"]["author"]["date"],
    }
    second = gitea.commit_files(
        org,
        repo,
        "main",
        {"kustomization.yaml": "v2", "overlays/dev/values.yaml": None, "new.yaml": "n"},
        author="provisioning",
    )
    assert (
        second["commit"]["message"]
        == "Add new.yaml\nUpdate kustomization.yaml\nDelete overlays/dev/values.yaml\n"
    )
    assert second["commit"]["author"]["email"] == "provisioning@noreply.catalyst.invalid"
    assert gitea.read_file(org, repo, "kustomization.yaml") == "v2"
    for branch in ("develop", "staging"):
        gitea.create_branch(org, repo, branch, source="main")
    assert {b["name"] for b in gitea.list_branches(org, repo)} == {"main", "develop", "staging"}
    with pytest.raises(GiteaError) as caught:
        gitea.delete_org(org)
    assert caught.value.status == 500
    gitea.delete_org(org, cascade=True)
    assert not gitea.org_exists(org) and forge.state.get_repo(org, repo) is None


def test_every_gitea_credential_form_is_accepted(forge: EmbeddedForge, http: httpx.Client) -> None:
    login, password = unique("cred"), "a-long-password"
    _, token = forge.create_user(login, password)
    forms: list[dict[str, object]] = [
        {"headers": {"Authorization": f"token {token}"}},
        {"headers": {"Authorization": f"Bearer {token}"}},
        {"params": {"token": token}},
        {"params": {"access_token": token}},
        {"auth": httpx.BasicAuth(login, password)},
        {"auth": httpx.BasicAuth("anything", token)},  # git's http://user:token@host form
        {"auth": httpx.BasicAuth(token, "x-oauth-basic")},
    ]
    for form in forms:
        response = http.get("/user", **form)  # type: ignore[arg-type]
        assert response.status_code == 200 and response.json()["login"] == login, (form, response.text)
    assert http.get("/user", auth=httpx.BasicAuth(login, "wrong-password")).status_code == 401


def test_concurrent_api_commits_to_one_branch_all_land_in_order(
    forge: EmbeddedForge, gitea: GiteaClient, new_repo: Callable[..., tuple[str, str]]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    org, repo = new_repo(auto_init=True)

    def write(index: int) -> str:
        with GiteaClient(forge.url, forge.token) as client:
            return client.create_file(org, repo, f"parallel/{index}.txt", str(index))["commit"]["sha"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        shas = list(pool.map(write, range(8)))
    assert len(set(shas)) == 8
    history = [c["sha"] for c in gitea.list_commits(org, repo, limit=50)]
    assert set(shas) <= set(history) and len(history) == 9  # linear: each commit on top of the last
    assert len(gitea.list_dir(org, repo, "parallel")) == 8


def test_download_url_serves_the_raw_bytes(
    forge: EmbeddedForge, gitea: GiteaClient, http: httpx.Client
) -> None:
    org = unique("org")
    gitea.create_org(org)
    repo = unique("private")
    gitea.create_org_repo(org, repo, private=True, auto_init=True)
    gitea.create_branch(org, repo, "release/1.0")
    gitea.create_file(org, repo, "charts/values.yaml", "replicas: 2\n", branch="release/1.0")
    entry = gitea.get_contents(org, repo, "charts/values.yaml", ref="release/1.0")
    assert isinstance(entry, dict) and entry["download_url"]
    assert entry["download_url"].endswith("/raw/branch/release/1.0/charts/values.yaml")
    anonymous = http.get(entry["download_url"])
    assert anonymous.status_code == 404  # private: invisible without credentials
    raw = http.get(entry["download_url"], headers={"Authorization": f"token {forge.token}"})
    assert raw.status_code == 200 and raw.text == "replicas: 2\n"
    assert raw.headers["content-type"].startswith("text/plain")
