"""The mutation check's own parts: patches that must apply once, and the JUnit reading.

`test_every_mutation_still_applies` runs in the normal suite, so a code change that moves a
mutated snippet fails here in seconds, not only in the slower `tests/mutation/check.py` run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from mutation.check import MUTATIONS, Mutation, PatchError, apply, key, outcomes, table


def source(path: str) -> Path:
    """A file of a mutation, in this sandbox (the BUILD depends on each) or the repo."""
    relative = Path(path).relative_to("src/python")
    for root in sys.path:
        if root and (Path(root) / relative).is_file():
            return Path(root) / relative
    raise AssertionError(f"{path} is not in this test's sandbox: add it to tests/mutation/BUILD")


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_every_mutation_still_applies(mutation: Mutation, tmp_path: Path) -> None:
    text = source(mutation.path).read_text()
    assert (
        text.count(mutation.old) == 1
    ), f"{mutation.path} moved: update mutation {mutation.name!r} in tests/mutation/check.py"
    (tmp_path / mutation.path).parent.mkdir(parents=True)
    (tmp_path / mutation.path).write_text(text)
    assert apply(tmp_path, mutation) == text
    mutated = (tmp_path / mutation.path).read_text()
    assert mutated != text and mutation.new in mutated
    compile(mutated, mutation.path, "exec")  # a mutant that does not even parse proves nothing


def test_a_patch_that_no_longer_applies_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "mod.py"
    for text, count in (("x = 1\n", 0), ("y = 2\ny = 2\n", 2)):
        target.write_text(text)
        with pytest.raises(PatchError, match=rf"mod\.py: the snippet 'y = 2\\n' of mutation 'm' occurs {count} times"):
            apply(tmp_path, Mutation("m", "claim", "mod.py", "y = 2\n", "y = 3\n", "mod_test.py", "test_y"))
        assert target.read_text() == text
    with pytest.raises(PatchError, match="gone.py: no such file"):
        apply(tmp_path, Mutation("m", "claim", "gone.py", "y", "z", "t.py", "t"))


def test_outcomes_tell_a_failed_test_from_an_error_and_a_skip(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "report.xml").write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="src.python.mlbuild.oci.build_test" name="test_a[zlib]"><failure message="assert"/></testcase>'
        '<testcase classname="src.python.mlbuild.oci.build_test" name="test_b"/>'
        '<testcase classname="src.python.mlbuild.oci.build_test" name="test_c"><error message="fixture"/></testcase>'
        '<testcase classname="src.python.mlbuild.oci.build_test" name="test_d"><skipped message="no tool"/></testcase>'
        "</testsuite></testsuites>"
    )
    found = outcomes(tmp_path)
    assert found == {
        key("src/python/mlbuild/oci/build_test.py", "test_a[zlib]"): "failed",
        "build_test.py::test_b": "passed",
        "build_test.py::test_c": "error",
        "build_test.py::test_d": "skipped",
    }


def test_table_aligns_columns() -> None:
    assert table([["a", "bb"], ["ccc", "d"]]).splitlines() == ["a   | bb", "----+---", "ccc | d"]
