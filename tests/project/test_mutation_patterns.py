"""tests/mutations.py stays runnable: every planted bug still finds its line.

When code moves, this fails until the mutation's pattern is updated, so the
table of which test catches which bug can always be made again."""

import mutations

from helpers import ROOT


def test_every_mutation_pattern_matches_exactly_once():
    assert mutations.check_patterns() == []


def test_mutations_are_distinct_and_name_tests_that_exist():
    names = [m.name for m in mutations.MUTATIONS]
    assert len(names) == len(set(names)) and len(names) >= 17
    for m in mutations.MUTATIONS:
        assert m.old != m.new and m.breaks and m.tests
        for t in m.tests:
            assert (ROOT / t.split("::")[0]).is_file(), (m.name, t)
