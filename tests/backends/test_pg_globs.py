"""One glob-to-LIKE translation for PostgreSQL: exact for the server-side prune, a superset for reads."""

from __future__ import annotations

import fnmatch
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ckpt.backends.postgres.globs import glob_like, glob_like_superset

ALPHABET = "ab_%\\*?[]!-"
texts = st.text(alphabet="ab_%\\[]!-", max_size=6)
globs = st.text(alphabet=ALPHABET, max_size=6)


def like(pattern: str, text: str) -> bool:
    """PostgreSQL's ``text LIKE pattern`` (escape ``\\``), by a regular expression."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append({"%": ".*", "_": "."}.get(char, re.escape(char)))
        i += 1
    return re.fullmatch("".join(out), text, re.DOTALL) is not None


def test_examples() -> None:
    assert glob_like("a_b%c*?\\") == "a\\_b\\%c%_\\\\"
    assert glob_like("a[") == "a[" and glob_like("[]") == "[]"  # unclosed: a literal "[", as fnmatch reads it
    assert glob_like_superset("t[0-9]*") == "t_%" and glob_like_superset("[!]]x") == "_x"
    with pytest.raises(ValueError, match="character class"):
        glob_like("t[0-9]")


@given(glob=globs, texts=st.lists(texts, max_size=20))
def test_exact_and_superset_patterns_against_fnmatch(glob: str, texts: list[str]) -> None:
    superset = glob_like_superset(glob)
    for text in texts:
        if fnmatch.fnmatchcase(text, glob):
            assert like(superset, text), (glob, text)
    try:
        exact = glob_like(glob)
    except ValueError:  # a class: a "[" closed later on
        assert "]" in glob[glob.index("[") + 1 :]
        return
    assert exact == superset
    for text in [*texts, glob]:
        assert like(exact, text) == fnmatch.fnmatchcase(text, glob), (glob, text)
