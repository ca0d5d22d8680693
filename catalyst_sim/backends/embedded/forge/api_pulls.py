"""Gitea's API v1 routes for promotion: teams, pull requests, reviews, merges, branch protection.

The handlers follow ``api.py``'s pattern — parse the request, call the service (``ForgeService`` for
teams, ``PullService`` for the rest), render Gitea's JSON — and reuse its plumbing (auth, scopes,
paging headers, error JSON). Statuses are Gitea's, including its oddities: editing a PR answers 201,
a merge 200 with an empty body, ``GET .../merge`` 204 or 404, review creation 200.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from catalyst_sim.backends.embedded.forge.api import Call, GiteaJSON, Handler
from catalyst_sim.backends.embedded.forge.errors import NotFound

if TYPE_CHECKING:
    from catalyst_sim.backends.embedded.forge.api import ForgeAPI

Table = list[tuple[str, dict[str, tuple[Handler, str | None, bool]]]]


class PullsAPI:
    def __init__(self, api: ForgeAPI) -> None:
        self.api = api
        self.service = api.service
        self.pulls = api.service.pulls
        self.shapes = api.service.shapes

    # -- helpers ----------------------------------------------------------------------------------
    @staticmethod
    def _repo(call: Call) -> tuple[str, str]:
        return call.param("owner"), call.param("repo")

    @staticmethod
    def _int(call: Call, name: str) -> int:
        return int(call.request.path_params[name])

    def _page_info(self, call: Call, count: int) -> tuple[int, int, dict[str, str]]:
        """Gitea's paging plus the X-Page/X-PerPage/X-PageCount/X-HasMore headers of PR files/commits."""
        size = self.service.page_size(call.query_int("limit"))
        page = max(call.query_int("page", 1), 1)
        pages = math.ceil(count / size) if size else 0
        headers = self.api.page_headers(call, count, size)
        headers.update(
            {
                "X-Page": str(page),
                "X-PerPage": str(size),
                "X-PageCount": str(pages),
                "X-HasMore": str(page < pages).lower(),
            }
        )
        headers["Access-Control-Expose-Headers"] += ", X-Page, X-PerPage, X-PageCount, X-HasMore"
        return page, size, headers

    # -- teams ------------------------------------------------------------------------------------
    def list_teams(self, call: Call) -> Response:
        _, teams = self.service.list_teams(call.signed, call.param("org"))
        items, headers = self.api.paged(call, teams, link=False)
        return GiteaJSON([self.shapes.team(t) for t in items], headers=headers)

    def create_team(self, call: Call) -> Response:
        org, team = self.service.create_team(call.signed, call.param("org"), call.json())
        return GiteaJSON(self.shapes.team(team, org), status_code=201)

    def get_team(self, call: Call) -> Response:
        org, team = self.service.team_for(call.signed, self._int(call, "id"))
        return GiteaJSON(self.shapes.team(team, org))

    def edit_team(self, call: Call) -> Response:
        org, team = self.service.edit_team(call.signed, self._int(call, "id"), call.json())
        return GiteaJSON(self.shapes.team(team, org))

    def delete_team(self, call: Call) -> Response:
        self.service.delete_team(call.signed, self._int(call, "id"))
        return Response(status_code=204)

    def team_members(self, call: Call) -> Response:
        members = self.service.team_members(call.signed, self._int(call, "id"))
        items, headers = self.api.paged(call, members, link=False)
        return GiteaJSON([self.shapes.user(u, call.doer) for u in items], headers=headers)

    def team_member(self, call: Call) -> Response:
        user = self.service.team_member(call.signed, self._int(call, "id"), call.param("username"))
        return GiteaJSON(self.shapes.user(user, call.doer))

    def add_team_member(self, call: Call) -> Response:
        self.service.add_team_member(call.signed, self._int(call, "id"), call.param("username"))
        return Response(status_code=204)

    def remove_team_member(self, call: Call) -> Response:
        self.service.remove_team_member(call.signed, self._int(call, "id"), call.param("username"))
        return Response(status_code=204)

    # -- pull requests ----------------------------------------------------------------------------
    def list_pulls(self, call: Call) -> Response:
        views = self.pulls.list_pulls(
            call.doer,
            *self._repo(call),
            state=call.query("state"),
            poster=call.query("poster"),
            sort=call.query("sort"),
        )
        items, headers = self.api.paged(call, views)
        return GiteaJSON([self.shapes.pull_request(v, call.doer) for v in items], headers=headers)

    def create_pull(self, call: Call) -> Response:
        view = self.pulls.create_pull(call.signed, *self._repo(call), call.json())
        return GiteaJSON(self.shapes.pull_request(view, call.doer), status_code=201)

    def get_pull(self, call: Call) -> Response:
        view = self.pulls.get_pull(call.doer, *self._repo(call), self._int(call, "index"))
        return GiteaJSON(self.shapes.pull_request(view, call.doer))

    def edit_pull(self, call: Call) -> Response:
        view = self.pulls.edit_pull(call.signed, *self._repo(call), self._int(call, "index"), call.json())
        return GiteaJSON(self.shapes.pull_request(view, call.doer), status_code=201)  # sic: Gitea answers 201

    def pull_files(self, call: Call) -> Response:
        repo, head, files = self.pulls.files(call.doer, *self._repo(call), self._int(call, "index"))
        page, size, headers = self._page_info(call, len(files))
        shown = files[(page - 1) * size : page * size]
        return GiteaJSON([self.shapes.changed_file(repo, f, head) for f in shown], headers=headers)

    def pull_commits(self, call: Call) -> Response:
        repo, commits = self.pulls.commits(call.doer, *self._repo(call), self._int(call, "index"))
        page, size, headers = self._page_info(call, len(commits))
        shown = commits[(page - 1) * size : page * size]
        files = call.query_bool("files")
        verification = call.query_bool("verification")
        return GiteaJSON(
            [
                self.shapes.commit(repo, c, doer=call.doer, stat=True, files=files, verification=verification)
                for c in shown
            ],
            headers=headers,
        )

    def is_merged(self, call: Call) -> Response:
        if not self.pulls.is_merged(call.doer, *self._repo(call), self._int(call, "index")):
            raise NotFound()
        return Response(status_code=204)

    def merge(self, call: Call) -> Response:
        self.pulls.merge(call.signed, *self._repo(call), self._int(call, "index"), call.json())
        return Response(status_code=200)

    # -- reviews ----------------------------------------------------------------------------------
    def list_reviews(self, call: Call) -> Response:
        repo, pull, reviews = self.pulls.list_reviews(call.doer, *self._repo(call), self._int(call, "index"))
        items, headers = self.api.paged(call, reviews, link=False)
        return GiteaJSON([self.shapes.review(repo, pull, r, call.doer) for r in items], headers=headers)

    def create_review(self, call: Call) -> Response:
        repo, pull, review = self.pulls.create_review(
            call.signed, *self._repo(call), self._int(call, "index"), call.json()
        )
        return GiteaJSON(self.shapes.review(repo, pull, review, call.doer))

    def get_review(self, call: Call) -> Response:
        repo, pull, review = self.pulls.get_review(
            call.doer, *self._repo(call), self._int(call, "index"), self._int(call, "id")
        )
        return GiteaJSON(self.shapes.review(repo, pull, review, call.doer))

    def delete_review(self, call: Call) -> Response:
        self.pulls.delete_review(call.signed, *self._repo(call), self._int(call, "index"), self._int(call, "id"))
        return Response(status_code=204)

    def _dismissal(self, call: Call, dismiss: bool) -> Response:
        body: dict[str, Any] = call.json() if dismiss else {}
        repo, pull, review = self.pulls.dismiss_review(
            call.signed,
            *self._repo(call),
            self._int(call, "index"),
            self._int(call, "id"),
            dismiss=dismiss,
            message=str(body.get("message") or ""),
            priors=bool(body.get("priors")),
        )
        return GiteaJSON(self.shapes.review(repo, pull, review, call.doer))

    def dismiss_review(self, call: Call) -> Response:
        return self._dismissal(call, True)

    def undismiss_review(self, call: Call) -> Response:
        return self._dismissal(call, False)

    # -- branch protection ------------------------------------------------------------------------
    def list_protections(self, call: Call) -> Response:
        rules = self.pulls.list_protections(call.signed, *self._repo(call))
        return GiteaJSON([self.shapes.branch_protection(r) for r in rules])

    def create_protection(self, call: Call) -> Response:
        rule = self.pulls.create_protection(call.signed, *self._repo(call), call.json())
        return GiteaJSON(self.shapes.branch_protection(rule), status_code=201)

    def get_protection(self, call: Call) -> Response:
        rule = self.pulls.get_protection(call.signed, *self._repo(call), call.param("name"))
        return GiteaJSON(self.shapes.branch_protection(rule))

    def edit_protection(self, call: Call) -> Response:
        rule = self.pulls.edit_protection(call.signed, *self._repo(call), call.param("name"), call.json())
        return GiteaJSON(self.shapes.branch_protection(rule))

    def delete_protection(self, call: Call) -> Response:
        self.pulls.delete_protection(call.signed, *self._repo(call), call.param("name"))
        return Response(status_code=204)

    # -- route table ------------------------------------------------------------------------------
    def table(self, repo: str) -> Table:
        """(path, {method: (handler, scope category, reqToken)}) for ``ForgeAPI.routes``."""
        pull = f"{repo}/pulls/{{index:int}}"
        review = f"{pull}/reviews/{{id:int}}"
        return [
            (
                "/api/v1/orgs/{org}/teams",
                {
                    "GET": (self.list_teams, "organization", True),
                    "POST": (self.create_team, "organization", True),
                },
            ),
            (
                "/api/v1/teams/{id:int}",
                {
                    "GET": (self.get_team, "organization", True),
                    "PATCH": (self.edit_team, "organization", True),
                    "DELETE": (self.delete_team, "organization", True),
                },
            ),
            ("/api/v1/teams/{id:int}/members", {"GET": (self.team_members, "organization", True)}),
            (
                "/api/v1/teams/{id:int}/members/{username}",
                {
                    "GET": (self.team_member, "organization", True),
                    "PUT": (self.add_team_member, "organization", True),
                    "DELETE": (self.remove_team_member, "organization", True),
                },
            ),
            (
                f"{repo}/pulls",
                {
                    "GET": (self.list_pulls, "repository", False),
                    "POST": (self.create_pull, "repository", True),
                },
            ),
            (
                pull,
                {
                    "GET": (self.get_pull, "repository", False),
                    "PATCH": (self.edit_pull, "repository", True),
                },
            ),
            (f"{pull}/files", {"GET": (self.pull_files, "repository", False)}),
            (f"{pull}/commits", {"GET": (self.pull_commits, "repository", False)}),
            (
                f"{pull}/merge",
                {
                    "GET": (self.is_merged, "repository", False),
                    "POST": (self.merge, "repository", True),
                },
            ),
            (
                f"{pull}/reviews",
                {
                    "GET": (self.list_reviews, "repository", False),
                    "POST": (self.create_review, "repository", True),
                },
            ),
            (
                review,
                {
                    "GET": (self.get_review, "repository", False),
                    "DELETE": (self.delete_review, "repository", True),
                },
            ),
            (f"{review}/dismissals", {"POST": (self.dismiss_review, "repository", True)}),
            (f"{review}/undismissals", {"POST": (self.undismiss_review, "repository", True)}),
            (
                f"{repo}/branch_protections",
                {
                    "GET": (self.list_protections, "repository", True),
                    "POST": (self.create_protection, "repository", True),
                },
            ),
            (
                f"{repo}/branch_protections/{{name:path}}",
                {
                    "GET": (self.get_protection, "repository", True),
                    "PATCH": (self.edit_protection, "repository", True),
                    "DELETE": (self.delete_protection, "repository", True),
                },
            ),
        ]
