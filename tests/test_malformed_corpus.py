"""Issue 14: every malformed input of ``tests/malformed_corpus.py`` ends in a setup error
(exit 2, one line naming file/frame/field, nothing written) or in counted frame rejects
(exit 0, every frame accounted for, the rest written) — never in a traceback or a loss."""

import pytest
from malformed_corpus import build, check, cli_runner


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    work = tmp_path_factory.mktemp("malformed")
    return {c.name: c for c in build(work)}


def _names():
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        return [c.name for c in build(d)]


NAMES = _names()


def test_corpus_is_large_enough():
    assert len(NAMES) >= 50


@pytest.mark.parametrize("name", NAMES)
def test_malformed_input(corpus, name):
    problems = check(corpus[name], cli_runner())
    assert not problems, problems
