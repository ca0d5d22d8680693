"""Domain errors of the embedded forge, each carrying the status real Gitea answers with.

The state models and the git layer raise these; the HTTP layer turns them into Gitea's error JSON
(``{"message", "url"}``, plus ``errors`` on 404). The status lives on the class because it is part of
the behaviour we emulate (Gitea answers an existing file on create with 422, not 409), not an HTTP
detail that could be chosen freely later.
"""

from __future__ import annotations


class ForgeError(Exception):
    """Base class: ``status`` is the HTTP status Gitea uses for this kind of failure."""

    status = 500

    def __init__(self, message: str, *, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors


class BadRequest(ForgeError):
    status = 400


class Unauthorized(ForgeError):
    status = 401


class Forbidden(ForgeError):
    status = 403


class NotFound(ForgeError):
    """404. Gitea has two shapes: ``ctx.NotFound()`` (message defaults to the locale's
    ``error.not_found`` and the body has ``errors``) and ``ctx.Error(404, ...)`` (``plain``: only
    ``message`` and ``url``), used e.g. by the contents handlers for a missing file or branch."""

    status = 404

    def __init__(
        self,
        message: str = "The target couldn't be found.",
        *,
        errors: list[str] | None = None,
        plain: bool = False,
    ) -> None:
        super().__init__(message, errors=errors)
        self.plain = plain


class Conflict(ForgeError):
    status = 409


class Unprocessable(ForgeError):
    status = 422


class Internal(ForgeError):
    status = 500


class MethodNotAllowed(ForgeError):
    """405: Gitea's answer to a merge that is not allowed (protection, permission, already merged)."""

    status = 405


class PreconditionFailed(ForgeError):
    """412: Gitea's answer to changing the state of a merged pull request."""

    status = 412
