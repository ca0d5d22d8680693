"""Steps shared by every feature: request outcomes and error reporting."""

from __future__ import annotations

from pytest_bdd import parsers, then

from catalyst_sim.harness.context import ScenarioContext


def _explain(context: ScenarioContext) -> str:
    response = context.last_response
    if response is None:
        return "no request was made"
    return f"{response.request.method} {response.request.url.path} -> {response.status_code}: {response.text[:800]}"


@then(parsers.parse("the request succeeds with status {status:d}"))
def request_succeeds(catalyst: ScenarioContext, status: int) -> None:
    assert catalyst.last_response is not None and catalyst.last_response.status_code == status, _explain(catalyst)


@then(parsers.parse("the request is rejected with status {status:d}"))
def request_rejected(catalyst: ScenarioContext, status: int) -> None:
    assert catalyst.last_response is not None and catalyst.last_response.status_code == status, _explain(catalyst)
    error = catalyst.last_response.json().get("error", {})
    assert error.get("message"), f"a rejection must explain itself: {_explain(catalyst)}"


@then(parsers.parse('the error message mentions "{text}"'))
def error_mentions(catalyst: ScenarioContext, text: str) -> None:
    assert catalyst.last_response is not None
    message = catalyst.last_response.json()["error"]["message"]
    assert text in message, f"{text!r} not in error message {message!r}"


@then(parsers.parse('the error names the field "{field}"'))
def error_names_field(catalyst: ScenarioContext, field: str) -> None:
    assert catalyst.last_response is not None
    problems = catalyst.last_response.json()["error"].get("problems", [])
    fields = [p.get("field") for p in problems]
    assert field in fields, f"{field!r} not among the fields of the error: {fields}"
