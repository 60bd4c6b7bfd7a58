"""Lint: a message must not print its own template.

A string literal with a ``{name…}`` placeholder that is not an f-string (e.g. the plain
half of ``f"…" "give --{field}"``) prints the braces verbatim.  Every string inside a
``raise`` or an error/notice call is checked, piece by piece (implicit concatenation
included); a literal that is the receiver of ``.format(...)`` is a template and allowed.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import imcsim

ROOT = Path(imcsim.__file__).parent
PLACEHOLDER = re.compile(r"(?<!\{)\{[A-Za-z_][A-Za-z0-9_.]*(\[[^\]{}]*\]|\([^(){}]*\))*"
                         r"(![rsa])?(:[^{}]*)?\}(?!\})")
MESSAGE_CALLS = re.compile(r"(Error|Exception|Warning|warn|echo|notice|fail|exit)$", re.I)


def _call_name(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _message_strings(tree: ast.AST) -> list[ast.expr]:
    """String nodes inside a raise or a message call, minus ``"…".format`` receivers."""
    templates = {id(n.value) for n in ast.walk(tree)
                 if isinstance(n, ast.Attribute) and n.attr == "format"}
    roots = [n for n in ast.walk(tree) if isinstance(n, ast.Raise)
             or (isinstance(n, ast.Call) and MESSAGE_CALLS.search(_call_name(n)))]
    inner = {id(c) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr)
             for c in ast.walk(n) if c is not n}
    found: dict[int, ast.expr] = {}
    for root in roots:
        for n in ast.walk(root):
            strings = isinstance(n, ast.JoinedStr) or (
                isinstance(n, ast.Constant) and isinstance(n.value, str))
            if strings and id(n) not in templates and id(n) not in inner:
                found[id(n)] = n
    return list(found.values())


def plain_placeholders(source: str) -> list[str]:
    """``line: literal`` for each non-f string piece of a message with a placeholder."""
    tree = ast.parse(source)
    bad = []
    for node in _message_strings(tree):
        segment = ast.get_source_segment(source, node) or ""
        try:
            tokens = list(tokenize.generate_tokens(io.StringIO(segment).readline))
        except (tokenize.TokenError, SyntaxError):
            continue
        for tok in tokens:
            if tok.type != tokenize.STRING:
                continue
            prefix = re.match(r"[A-Za-z]*", tok.string).group(0).lower()
            if "f" not in prefix and PLACEHOLDER.search(tok.string):
                bad.append(f"{node.lineno + tok.start[0] - 1}: {tok.string}")
    return bad


def test_the_lint_catches_a_plain_half_and_spares_templates() -> None:
    source = (
        "def f(field, x):\n"
        "    raise ValueError(f'{x} is bad; ' \"give --{field.replace('_', '-')}\")\n"
        "def g(x):\n"
        "    raise ValueError('value {x!r} too big'.format(x=x))\n"
        "def h(x):\n"
        "    raise ValueError(f'{{x}} is literal, {x} is not')\n"
        "def k(x):\n"
        "    print('{not_a_message}')\n"
    )
    bad = plain_placeholders(source)
    assert len(bad) == 1 and bad[0].startswith("2: ") and "field.replace" in bad[0]


def test_no_message_in_imcsim_prints_its_template() -> None:
    bad = [f"{path.relative_to(ROOT.parent)}:{line}"
           for path in sorted(ROOT.rglob("*.py"))
           for line in plain_placeholders(path.read_text())]
    assert not bad, "plain string with a {placeholder} in a message (missing f?):\n" + "\n".join(bad)
