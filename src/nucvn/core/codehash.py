"""A digest of Python source files that ignores what cannot change their behaviour: comments,
docstrings (and any other statement that is a bare string), blank lines and trailing spaces.

The simulation records such a digest of its code in every manifest, so that files made by other
code are simulated again (:func:`nucvn.sim.simulate.code_fingerprint`). Hashing the raw bytes
would count a corrected docstring as new physics, and since the manifest is part of the data's
hash, every stage after it would run again (a full training for a typo). The text kept is the
source itself, with the ignored parts cut out at the positions the tokenizer reports, so the
digest does not depend on the Python version's tokenizer or AST (which change between releases).
"""

from __future__ import annotations

import hashlib
import io
import tokenize
from collections.abc import Iterable
from pathlib import Path

__all__ = ["code_text", "source_digest"]

_LINE_START = {tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING, tokenize.NL}


def _scan(source: str) -> tuple[list[tuple[tuple[int, int], tuple[int, int]]], set[int]]:
    """(start, end) positions of comments and of strings that form a statement on their own; and
    the rows inside other tokens that span lines (string literals), which are kept as they are."""
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    spans: list[tuple[tuple[int, int], tuple[int, int]]] = []
    inside: set[int] = set()
    prev = tokenize.NEWLINE
    for k, tok in enumerate(tokens):
        bare_string = tok.type == tokenize.STRING and prev in _LINE_START and next(
            (t.type for t in tokens[k + 1 :] if t.type not in (tokenize.COMMENT, tokenize.NL)),
            None) in (tokenize.NEWLINE, tokenize.ENDMARKER)
        if tok.type == tokenize.COMMENT or bare_string:
            spans.append((tok.start, tok.end))
        elif tok.end[0] > tok.start[0] and tok.type not in (tokenize.NEWLINE, tokenize.NL):
            inside.update(range(tok.start[0] + 1, tok.end[0] + 1))
        if tok.type not in (tokenize.COMMENT, tokenize.NL):
            prev = tok.type
    return spans, inside


def code_text(source: str) -> str:
    """``source`` without comments, bare-string statements, and blank lines and trailing spaces
    outside string literals."""
    spans, inside = _scan(source)
    lines = source.splitlines()
    keep = [True] * len(lines)
    for (r0, c0), (r1, c1) in reversed(spans):
        lines[r0 - 1] = lines[r0 - 1][:c0] + lines[r1 - 1][c1:]
        for row in range(r0 + 1, r1 + 1):
            keep[row - 1] = False
    for row, line in enumerate(lines, start=1):
        if row not in inside:
            lines[row - 1] = line.rstrip()
    return "\n".join(line for row, (line, k) in enumerate(zip(lines, keep, strict=True), start=1)
                     if k and (row in inside or line.strip()))


def source_digest(paths: Iterable[Path], prefix: bytes = b"") -> str:
    """sha256 of ``prefix`` and, for each file in order, its name and :func:`code_text`."""
    h = hashlib.sha256(prefix)
    for path in paths:
        h.update(path.name.encode() + b"\0")
        h.update(code_text(path.read_text(encoding="utf-8")).encode() + b"\0")
    return h.hexdigest()
