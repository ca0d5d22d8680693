"""The D-06 expression language: predicates, templates, and everything it must refuse."""

from __future__ import annotations

from typing import Any

import pytest

from catalyst_sim.control.catalog.expressions import (
    ExpressionError,
    check_template,
    check_when,
    evaluate_when,
    render_template,
)

CTX: dict[str, Any] = {
    "config": {
        "postgres": {"mode": "embedded"},
        "replicas": 3,
        "cache": {"enabled": False},
        "title": "Muscat Pharmacy",
        "tags": ["a", "b"],
        "empty": "",
    },
    "application": {"name": "marketing-site"},
}


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("{{ .config.postgres.mode == 'embedded' }}", True),
        ('{{ .config.postgres.mode == "embedded" }}', True),
        ("{{.config.postgres.mode=='embedded'}}", True),
        ("{{ .config.postgres.mode != 'embedded' }}", False),
        ("{{ .config.postgres.mode == 'external' }}", False),
        ("{{ .config.cache.enabled }}", False),
        ("{{ not .config.cache.enabled }}", True),
        ("{{ .config.missing.deeply }}", False),  # missing is null: falsy
        ("{{ .config.missing == 'x' }}", False),
        ("{{ .config.missing == null }}", True),
        ("{{ .config.replicas == 3 }}", True),
        ("{{ .config.replicas == '3' }}", False),  # no type juggling
        ("{{ .config.cache.enabled == false }}", True),
        ("{{ .config.replicas == true }}", False),  # 1/True are not equal either
        ("{{ .config.tags }}", True),
        ("{{ .config.empty }}", False),
        ("{{ .config.postgres.mode == 'embedded' and .config.replicas == 3 }}", True),
        ("{{ .config.postgres.mode == 'external' or .config.replicas == 3 }}", True),
        ("{{ .config.postgres.mode == 'external' or .config.cache.enabled }}", False),
        (
            "{{ (.config.postgres.mode == 'external' or .config.replicas == 3)"
            " and not .config.cache.enabled }}",
            True,
        ),
        (
            "{{ .config.cache.enabled or .config.replicas == 3 and .config.title == 'x' }}",
            False,
        ),  # and binds tighter
        ("{{ .application.name == 'marketing-site' }}", True),
        ("  {{ .config.replicas }}  ", True),
        (True, True),
        (False, False),
        (None, True),
    ],
)
def test_when_predicates(when: Any, expected: bool) -> None:
    assert evaluate_when(when, CTX) is expected


@pytest.mark.parametrize(
    ("expression", "needle"),
    [
        ("{{ __import__('os').system('id') }}", "function calls are not supported"),
        ("{{ open('/etc/passwd') }}", "function calls are not supported"),
        ("{{ .config.__class__ }}", "'__class__' is not allowed"),
        ("{{ .config._private }}", "'_private' is not allowed"),
        ("{{ .config.postgres.mode.upper() }}", "calls are not supported"),
        ("{{ .config.x | quote }}", "pipes are not supported"),
        ("{{ eq .config.postgres.mode 'embedded' }}", "function 'eq' is not supported"),
        ('{{ printf "%s" .config.x }}', "function 'printf' is not supported"),
        ("{{ .config.tags[0] }}", "indexing is not supported"),
        ("{{ $x := 1 }}", "template variables are not supported"),
        ("{{ .config.a = 'b' }}", "use '=='"),
        ("{{ .config.a && .config.b }}", "use 'and'"),
        ("{{ !.config.a }}", "use 'not'"),
        ("{{ .config.replicas > 2 }}", "only == and !="),
        ("{{ .values.replicas }}", "unknown root '.values'"),
        ("{{ .Values.replicas }}", "unknown root '.Values'"),
        ("{{ lambda: 1 }}", "unknown identifier: 'lambda'"),
        ("{{ .config.a == }}", "unexpected end"),
        ("{{ (.config.a }}", "missing ')'"),
        ("{{ .config.a .config.b }}", "unexpected"),
        ("{{ .config.a == 'b' == 'c' }}", "chained comparisons"),
        ("{{ 'unterminated }}", "unterminated string"),
        ("{{ }}", "empty expression"),
        ("{{ .config.a", "unbalanced '{{'"),
        (".config.a }}", "unbalanced '}}'"),
        ("{{ {{ .config.a }} }}", "nested or unbalanced"),
        ("embedded", "exactly one '{{ ... }}'"),
        ("mode is {{ .config.a }}", "exactly one '{{ ... }}'"),
        ("{{ .config.a }}{{ .config.b }}", "exactly one '{{ ... }}'"),
    ],
)
def test_rejected_predicates_name_the_expression(expression: str, needle: str) -> None:
    with pytest.raises(ExpressionError) as err:
        evaluate_when(expression, CTX)
    assert needle in str(err.value)
    assert repr(expression) in str(err.value) or "exactly one" in needle
    assert err.value.code == "InvalidExpression"


def test_check_when_is_syntax_only() -> None:
    check_when("{{ .config.anything.at.all == 'x' }}")
    with pytest.raises(ExpressionError):
        check_when("{{ .config.x | default 'y' }}")


def test_render_keeps_the_type_of_a_lone_placeholder() -> None:
    assert render_template("{{ .config.replicas }}", CTX) == 3
    assert render_template("{{ .config.cache.enabled }}", CTX) is False
    assert render_template("{{ .config.tags }}", CTX) == ["a", "b"]
    assert render_template("{{ .config.postgres }}", CTX) == {"mode": "embedded"}
    assert render_template("{{ .config.postgres.mode == 'embedded' }}", CTX) is True


def test_go_trim_markers_are_tolerated_and_negative_numbers_kept() -> None:
    assert render_template("{{- .config.replicas -}}", CTX) == 3
    assert render_template("{{ -1 }}", CTX) == -1


def test_render_interpolates_inside_strings() -> None:
    assert render_template("db-{{ .application.name }}-{{.config.replicas}}", CTX) == "db-marketing-site-3"
    assert render_template("enabled={{ .config.cache.enabled }}", CTX) == "enabled=false"
    assert render_template("no placeholders", CTX) == "no placeholders"


def test_render_recurses_through_dicts_lists_and_keys_without_mutating() -> None:
    values = {
        "databases": ["{{ .application.name }}"],
        "size": "medium",
        "nested": [{"n": "{{ .config.replicas }}", "{{ .application.name }}-key": 1}],
        "count": 2,
        "flag": None,
    }
    rendered = render_template(values, CTX)
    assert rendered == {
        "databases": ["marketing-site"],
        "size": "medium",
        "nested": [{"n": 3, "marketing-site-key": 1}],
        "count": 2,
        "flag": None,
    }
    assert values["databases"] == ["{{ .application.name }}"]


def test_render_roots_default_to_the_context_keys() -> None:
    ctx = {"values": {"config": {"replicas": 4}}, "application": {"name": "x"}}
    assert render_template({"replicas": "{{ .values.config.replicas }}"}, ctx) == {"replicas": 4}
    with pytest.raises(ExpressionError, match=r"unknown root '\.config'"):
        render_template("{{ .config.replicas }}", ctx)


@pytest.mark.parametrize(
    ("template", "needle"),
    [
        ("{{ .config.nope }}", ".config.nope is not set"),
        ("x-{{ .config.postgres }}", "cannot be interpolated"),
        ("x-{{ .config.absent }}", "is not set"),
        ("{{ .config.a | b }}", "pipes"),
        ("{{ .config.a ", "unbalanced"),
    ],
)
def test_render_errors_name_the_template(template: str, needle: str) -> None:
    ctx = {**CTX, "config": {**CTX["config"], "none": None}}
    with pytest.raises(ExpressionError) as err:
        render_template({"outer": [template]}, ctx)
    assert needle in str(err.value)
    assert repr(template) in str(err.value)


def test_null_inside_a_string_is_an_error() -> None:
    with pytest.raises(ExpressionError, match="null"):
        render_template("x-{{ .config.none }}", {"config": {"none": None}})


def test_check_template_walks_structures() -> None:
    check_template({"a": ["{{ .config.x }}", {"b": "{{ .application.name }}"}]})
    with pytest.raises(ExpressionError, match="unknown root"):
        check_template({"a": ["{{ .secrets.x }}"]})
    check_template({"a": "{{ .values.x }}"}, roots=("values",))
