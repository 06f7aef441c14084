"""Problem parsing never crashes: any corruption of a valid document is an InputError."""

from __future__ import annotations

import copy

import tomllib
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.errors import InputError
from optimizer.freight.problem import parse_problem
from tests.conftest import PROBLEMS

DOC = tomllib.loads((PROBLEMS / "china-core.toml").read_text())

junk = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                 st.text(max_size=8), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3),
                                                                                          st.integers(), max_size=2))


@settings(max_examples=150, deadline=None)
@given(data=st.data(), value=junk)
def test_corrupted_documents_raise_input_error_naming_a_field(data, value):
    doc = copy.deepcopy(DOC)
    section = data.draw(st.sampled_from(sorted(doc)))
    target = doc[section]
    if isinstance(target, list):
        target = target[data.draw(st.integers(0, len(target) - 1))]
    key = data.draw(st.sampled_from(sorted(target) + ["__extra__"]))
    target[key] = value
    try:
        problem = parse_problem(doc, source="fuzz")
    except InputError as exc:
        assert exc.issues and all(issue.field for issue in exc.issues)
        assert "fuzz" in str(exc)
    else:
        # Some replacements are valid values (e.g. another integer); the problem then builds.
        assert problem.name
