"""Exact arithmetic expressions for countdown answers: ``(10 - 4) * 5 - 6`` -> its value and literals.

A small recursive-descent parser over `Fraction`s, bounded in length and nesting, so a model's
answer is checked without ever being `eval`-ed.
"""

from __future__ import annotations

import re
from fractions import Fraction

#: Longest answer text the expression parser looks at; anything longer is wrong, not parsed.
MAX_ANSWER_CHARS = 300
#: Deepest parenthesis nesting accepted (bounds the recursive-descent parser).
MAX_DEPTH = 20

_TOKEN = re.compile(r"\s*(\d+|[-+*/()=])")
_UNICODE_OPS = str.maketrans({"×": "*", "÷": "/", "−": "-"})


class MalformedError(ValueError):
    """An answer expression that does not parse (the message says where)."""


def tokens(text: str) -> list[str]:
    """Numbers, operators, parentheses and ``=``; anything else is malformed."""
    text = text.translate(_UNICODE_OPS).rstrip()
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise MalformedError(f"unexpected text at {text[pos : pos + 10]!r}")
        tokens.append(match.group(1))
        pos = match.end()
    return tokens


class _Parser:
    """Recursive descent: expr := term (('+'|'-') term)*; term := factor (('*'|'/') factor)*;
    factor := INT | '(' expr ')'.  Records the integer literals it reads."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens, self.pos, self.depth = tokens, 0, 0
        self.literals: list[int] = []

    def parse(self) -> Fraction:
        value = self.expr()
        if self.pos != len(self.tokens):
            raise MalformedError(f"unexpected {self.tokens[self.pos]!r}")
        return value

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise MalformedError("the expression ends early")
        self.pos += 1
        return token

    def expr(self) -> Fraction:
        value = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            value = value + self.term() if op == "+" else value - self.term()
        return value

    def term(self) -> Fraction:
        value = self.factor()
        while self.peek() in ("*", "/"):
            op = self.take()
            divisor = self.factor()
            if op == "/" and not divisor:
                raise MalformedError("division by zero")
            value = value * divisor if op == "*" else value / divisor
        return value

    def factor(self) -> Fraction:
        token = self.take()
        if token.isdigit():
            self.literals.append(int(token))
            return Fraction(int(token))
        if token != "(":
            raise MalformedError(f"unexpected {token!r}")
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise MalformedError("parentheses nested too deep")
        value = self.expr()
        if self.take() != ")":
            raise MalformedError("missing ')'")
        self.depth -= 1
        return value


def evaluate(text: str) -> tuple[Fraction, tuple[int, ...]]:
    """Value and (sorted) integer literals of an expression; ValueError when malformed."""
    if len(text) > MAX_ANSWER_CHARS:
        raise MalformedError("the expression is too long")
    parser = _Parser(tokens(text))
    value = parser.parse()
    return value, tuple(sorted(parser.literals))
