"""The safe ``when``/``values`` expression language of decision D-06 (R-DEP-03, R-DEP-04).

Blueprints write ``when: "{{ .config.postgres.mode == 'embedded' }}"`` and
``values: {databases: ["{{ .application.name }}"]}``. That is not valid Go template syntax (C-12),
and it must never reach ``eval``: a Blueprint comes from an Org's ``shared-blueprints`` repo, i.e. from
users. So this module is a tokenizer plus a recursive-descent parser for a deliberately tiny grammar::

    template   := text* ('{{' expr '}}' text*)*
    expr       := and_expr ('or' and_expr)*
    and_expr   := not_expr ('and' not_expr)*
    not_expr   := 'not' not_expr | comparison
    comparison := operand (('==' | '!=') operand)?
    operand    := path | literal | '(' expr ')'
    path       := ('.' IDENT)+            -- the first IDENT must be a known root
    literal    := 'single' | "double" | integer | decimal | true | false | null

Go-template spellings ``eq``/``ne``/``&&``/``||``/``!`` are not accepted, and neither are pipes,
function calls, indexing or attribute access beyond dictionary keys: every one of those is an error
that names the expression. Paths only ever look up dictionary keys (never Python attributes), keys
starting with ``_`` are rejected outright, and the allowed roots are exactly the keys of the context
the caller passes (``config`` and ``application`` for ``when``/``values``; a manifest renderer may
add ``values`` and ``dependencies``).

Missing values: in a predicate a missing path is ``null`` (falsy, unequal to any string), because
``when`` commonly tests optional config. In :func:`render_template` a missing path is an error, so a
typo in ``values`` never silently renders an empty string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from catalyst_sim.model.base import CatalystError, Problem

WHEN_ROOTS = ("config", "application")


class ExpressionError(CatalystError):
    """An expression that is not in the D-06 language, or that cannot be evaluated."""

    def __init__(self, message: str, *, expression: str = "", field: str = "", object: str = "") -> None:
        text = f"expression {expression!r}: {message}" if expression else message
        super().__init__([Problem(message=text, field=field, object=object)], code="InvalidExpression")
        self.expression = expression


_MISSING = object()


@dataclass(frozen=True)
class _Token:
    kind: str  # path | str | num | kw | op | lparen | rparen
    value: Any
    pos: int


_KEYWORDS = {"and", "or", "not", "true", "false", "null"}
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_TOKEN_RE = re.compile(
    rf"""
    (?P<ws>\s+)
  | (?P<path>(?:\.{_IDENT})+)
  | (?P<num>-?\d+(?:\.\d+)?)
  | (?P<str>'[^'\\]*'|"[^"\\]*")
  | (?P<op>==|!=)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<word>{_IDENT})
    """,
    re.VERBOSE,
)

_HINTS = {
    "|": "pipes are not supported",
    "&": "use 'and' instead of '&&'",
    "!": "use 'not' or '!=' (a lone '!' is not supported)",
    "[": "indexing is not supported; use a path like .config.a.b",
    "$": "template variables are not supported",
    "=": "use '==' for comparison (assignment is not supported)",
    ",": "function arguments are not supported",
    "<": "only == and != comparisons are supported",
    ">": "only == and != comparisons are supported",
}
_GO_FUNCS = {
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "printf",
    "print",
    "len",
    "index",
    "default",
    "include",
    "quote",
    "toYaml",
    "tpl",
    "required",
    "lookup",
}


def _tokenize(source: str, expression: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(source):
        m = _TOKEN_RE.match(source, pos)
        if not m:
            ch = source[pos]
            hint = _HINTS.get(ch, "unexpected character")
            if ch in "'\"":
                hint = "unterminated string literal (escapes are not supported)"
            raise ExpressionError(f"{hint} at {source[pos : pos + 12]!r}", expression=expression)
        kind = m.lastgroup
        text = m.group()
        if kind == "ws":
            pass
        elif kind == "path":
            segments = text[1:].split(".")
            bad = [s for s in segments if s.startswith("_")]
            if bad:
                raise ExpressionError(
                    f"path segment {bad[0]!r} is not allowed (names starting with '_' are reserved)",
                    expression=expression,
                )
            tokens.append(_Token("path", tuple(segments), pos))
        elif kind == "num":
            tokens.append(_Token("num", float(text) if "." in text else int(text), pos))
        elif kind == "str":
            tokens.append(_Token("str", text[1:-1], pos))
        elif kind == "op":
            tokens.append(_Token("op", text, pos))
        elif kind in {"lparen", "rparen"}:
            tokens.append(_Token(kind, text, pos))
        else:  # word
            if text in _KEYWORDS:
                tokens.append(_Token("kw", text, pos))
            elif text in _GO_FUNCS:
                raise ExpressionError(
                    f"function {text!r} is not supported (D-06 allows ==, !=, and, or, not)",
                    expression=expression,
                )
            else:
                following = source[m.end() :].lstrip()[:1]
                what = "function calls are not supported" if following == "(" else "unknown identifier"
                raise ExpressionError(
                    f"{what}: {text!r} (paths start with '.', e.g. .config.x; strings are quoted)",
                    expression=expression,
                )
        pos = m.end()
    return tokens


# AST: ("path", segments) | ("lit", value) | ("not", node) | ("and"|"or", left, right)
#      | ("==" | "!=", left, right)
Node = tuple[Any, ...]


class _Parser:
    def __init__(self, tokens: list[_Token], expression: str, roots: tuple[str, ...]) -> None:
        self.tokens = tokens
        self.i = 0
        self.expression = expression
        self.roots = roots

    def fail(self, message: str) -> ExpressionError:
        return ExpressionError(message, expression=self.expression)

    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> _Token:
        tok = self.peek()
        if tok is None:
            raise self.fail("unexpected end of expression")
        self.i += 1
        return tok

    def parse(self) -> Node:
        if not self.tokens:
            raise self.fail("empty expression")
        node = self.expr()
        rest = self.peek()
        if rest is not None:
            follows = " (function calls are not supported)" if rest.kind == "lparen" else ""
            raise self.fail(f"unexpected {rest.value!r}{follows}")
        return node

    def _is_kw(self, word: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "kw" and tok.value == word

    def expr(self) -> Node:
        node = self.and_expr()
        while self._is_kw("or"):
            self.take()
            node = ("or", node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.not_expr()
        while self._is_kw("and"):
            self.take()
            node = ("and", node, self.not_expr())
        return node

    def not_expr(self) -> Node:
        if self._is_kw("not"):
            self.take()
            return ("not", self.not_expr())
        return self.comparison()

    def comparison(self) -> Node:
        left = self.operand()
        tok = self.peek()
        if tok is not None and tok.kind == "op":
            self.take()
            right = self.operand()
            nxt = self.peek()
            if nxt is not None and nxt.kind == "op":
                raise self.fail("chained comparisons are not supported; use 'and'")
            return (tok.value, left, right)
        return left

    def operand(self) -> Node:
        tok = self.take()
        if tok.kind == "path":
            if tok.value[0] not in self.roots:
                allowed = ", ".join(f".{r}" for r in self.roots)
                raise self.fail(f"unknown root '.{tok.value[0]}' (allowed: {allowed})")
            nxt = self.peek()
            if nxt is not None and nxt.kind == "lparen":
                raise self.fail("function/method calls are not supported")
            return ("path", tok.value)
        if tok.kind in {"str", "num"}:
            return ("lit", tok.value)
        if tok.kind == "kw" and tok.value in {"true", "false", "null"}:
            return ("lit", {"true": True, "false": False, "null": None}[tok.value])
        if tok.kind == "lparen":
            node = self.expr()
            close = self.take() if self.peek() is not None else None
            if close is None or close.kind != "rparen":
                raise self.fail("missing ')'")
            return node
        raise self.fail(f"unexpected {tok.value!r}")


def parse_expression(expression: str, *, roots: tuple[str, ...] = WHEN_ROOTS, display: str = "") -> Node:
    """Parse the inside of one ``{{ }}``; raises :class:`ExpressionError`."""
    shown = display or expression
    return _Parser(_tokenize(expression, shown), shown, roots).parse()


def _lookup(context: Mapping[str, Any], segments: tuple[str, ...]) -> Any:
    node: Any = context
    for seg in segments:
        if not isinstance(node, Mapping) or seg not in node:
            return _MISSING
        node = node[seg]
    return node


def _truthy(value: Any) -> bool:
    if value is _MISSING or value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str | list | tuple | dict):
        return len(value) > 0
    return True


def _equal(a: Any, b: Any) -> bool:
    a = None if a is _MISSING else a
    b = None if b is _MISSING else b
    if isinstance(a, bool) != isinstance(b, bool):  # keep True != 1 (YAML intent, not Python's)
        return False
    return bool(a == b)


def _evaluate(node: Node, context: Mapping[str, Any], *, strict: bool, expression: str) -> Any:
    op = node[0]
    if op == "lit":
        return node[1]
    if op == "path":
        value = _lookup(context, node[1])
        if value is _MISSING and strict:
            path = "." + ".".join(node[1])
            raise ExpressionError(f"{path} is not set", expression=expression)
        return value
    if op == "not":
        return not _truthy(_evaluate(node[1], context, strict=False, expression=expression))
    if op == "and":
        left = _evaluate(node[1], context, strict=False, expression=expression)
        return _truthy(left) and _truthy(_evaluate(node[2], context, strict=False, expression=expression))
    if op == "or":
        left = _evaluate(node[1], context, strict=False, expression=expression)
        return _truthy(left) or _truthy(_evaluate(node[2], context, strict=False, expression=expression))
    left = _evaluate(node[1], context, strict=False, expression=expression)
    right = _evaluate(node[2], context, strict=False, expression=expression)
    return _equal(left, right) if op == "==" else not _equal(left, right)


_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


def _segments(text: str, display: str) -> list[tuple[bool, str]]:
    """Split a string into literal text and placeholder bodies; reject unbalanced braces."""
    out: list[tuple[bool, str]] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(text):
        literal = text[pos : m.start()]
        if "}}" in literal:
            raise ExpressionError("unbalanced '}}' (no matching '{{')", expression=display)
        if literal:
            out.append((False, literal))
        body = m.group(1)
        if "{{" in body:
            raise ExpressionError("nested or unbalanced '{{'", expression=display)
        # Go's whitespace-trimming markers "{{- " and " -}}" are tolerated (and ignored).
        body = re.sub(r"^-\s", "", re.sub(r"\s-$", "", body)).strip()
        out.append((True, body))
        pos = m.end()
    tail = text[pos:]
    if "{{" in tail:
        raise ExpressionError("unbalanced '{{' (no matching '}}')", expression=display)
    if "}}" in tail:
        raise ExpressionError("unbalanced '}}' (no matching '{{')", expression=display)
    if tail:
        out.append((False, tail))
    return out


def has_placeholder(value: str) -> bool:
    return "{{" in value or "}}" in value


def check_template(value: Any, *, roots: tuple[str, ...] = WHEN_ROOTS) -> None:
    """Syntax-check every placeholder inside ``value`` (strings in nested dicts/lists)."""
    if isinstance(value, str):
        for is_expr, body in _segments(value, value):
            if is_expr:
                parse_expression(body, roots=roots, display=value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check_template(key, roots=roots)
            check_template(item, roots=roots)
    elif isinstance(value, list | tuple):
        for item in value:
            check_template(item, roots=roots)


def _interpolate(value: Any, expression: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        raise ExpressionError("value is null and cannot be interpolated into a string", expression=expression)
    if isinstance(value, Mapping | list | tuple):
        raise ExpressionError(
            "an object or list cannot be interpolated into a longer string; "
            "make the placeholder the whole value",
            expression=expression,
        )
    return str(value)


def _render_string(text: str, context: Mapping[str, Any], roots: tuple[str, ...]) -> Any:
    parts = _segments(text, text)
    if len(parts) == 1 and parts[0][0]:
        # Exactly one placeholder: keep the referenced value's type (int replicas stay ints).
        node = parse_expression(parts[0][1], roots=roots, display=text)
        return _evaluate(node, context, strict=True, expression=text)
    out = []
    for is_expr, body in parts:
        if not is_expr:
            out.append(body)
            continue
        node = parse_expression(body, roots=roots, display=text)
        out.append(_interpolate(_evaluate(node, context, strict=True, expression=text), text))
    return "".join(out)


def render_template(value: Any, context: Mapping[str, Any], *, roots: tuple[str, ...] | None = None) -> Any:
    """Substitute every ``{{ expr }}`` in strings found anywhere in ``value`` (dicts, lists, keys).

    Returns a new structure; ``value`` is not modified. A string that is exactly one placeholder
    becomes the referenced value itself (its type kept); placeholders inside longer strings are
    interpolated as text. Allowed roots default to the context's keys.
    """
    allowed = tuple(roots) if roots is not None else tuple(context.keys())
    if isinstance(value, str):
        return _render_string(value, context, allowed) if has_placeholder(value) else value
    if isinstance(value, Mapping):
        rendered: dict[Any, Any] = {}
        for key, item in value.items():
            new_key = render_template(key, context, roots=allowed) if isinstance(key, str) else key
            if not isinstance(new_key, str | int | float | bool) and new_key is not None:
                raise ExpressionError("a mapping key must render to a scalar", expression=str(key))
            rendered[new_key] = render_template(item, context, roots=allowed)
        return rendered
    if isinstance(value, list | tuple):
        return [render_template(item, context, roots=allowed) for item in value]
    return value


def evaluate_when(
    when: str | bool | None, context: Mapping[str, Any], *, roots: tuple[str, ...] = WHEN_ROOTS
) -> bool:
    """Evaluate a ``depends[].when`` predicate (R-DEP-03). ``None`` (absent) means "always".

    The string must be exactly one ``{{ ... }}`` (surrounding whitespace allowed); literal text
    around it would make the result a string, which is almost certainly an authoring mistake.
    """
    if when is None:
        return True
    if isinstance(when, bool):
        return when
    if not isinstance(when, str):
        raise ExpressionError(f"a when-predicate must be a string or boolean, not {type(when).__name__}")
    parts = _segments(when, when)
    exprs = [body for is_expr, body in parts if is_expr]
    text = [body for is_expr, body in parts if not is_expr and body.strip()]
    if len(exprs) != 1 or text:
        raise ExpressionError("a when-predicate must be exactly one '{{ ... }}'", expression=when)
    node = parse_expression(exprs[0], roots=roots, display=when)
    return _truthy(_evaluate(node, context, strict=False, expression=when))


def check_when(when: str | bool | None, *, roots: tuple[str, ...] = WHEN_ROOTS) -> None:
    """Syntax-check a ``when`` without evaluating it (used when loading a Blueprint)."""
    if when is None or isinstance(when, bool):
        return
    evaluate_when(when, {}, roots=roots)
