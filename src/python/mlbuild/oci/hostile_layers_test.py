"""The hostile-layer corpus (hostile_corpus.py) against `unpack` and `check`.

Every refused case: unpack raises a UserError naming the layer with the expected reason, nothing
outside the root changes and nothing partial is left; `python -m mlbuild.oci check` exits 2 with
the same reason on one line, no traceback. Every accepted case: unpack and check agree on the
(stripped) modes. Prints `hostile layers: cases N / refused R / passed P` (visible with -s).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mlbuild.oci.cli import main
from mlbuild.oci.errors import UserError
from mlbuild.oci.hostile_corpus import Case, cases
from mlbuild.oci.layout import write_layout
from mlbuild.oci.merged_fs import MergedFS
from mlbuild.oci.unpack import unpack_image


def _snapshot(path: Path, skip: str) -> dict[str, tuple[int, int, int]]:
    out = {}
    for p in path.rglob("*"):
        if skip not in p.parts:
            st = p.lstat()
            out[str(p)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def _check_cli(case: Case, image, work: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    layout = work / "layout"
    write_layout(image, layout, "hostile")
    limits = case.limits
    args = [
        "check",
        "--layout",
        str(layout),
        "--max-bytes",
        str(limits.max_bytes),
        "--max-entries",
        str(limits.max_entries),
        "--max-file-bytes",
        str(limits.max_file_bytes),
    ]
    capsys.readouterr()
    code = main(args)
    err = capsys.readouterr().err
    problems = []
    if code != 2 or case.fragment not in err or "Traceback" in err or len(err.strip().splitlines()) != 1:
        problems.append(f"check CLI: exit {code}, stderr {err.strip()[:300]!r}")
    return problems


def _run(case: Case, work: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    work.mkdir()
    outside = work / "outside.txt"
    outside.write_text("precious")
    (work / "sandbox").mkdir()
    image = case.image(work / "blobs")
    root = work / "sandbox" / "rootfs"
    before = _snapshot(work, "sandbox")
    problems = []
    try:
        unpack_image(image, root, case.limits)
        unpack_error = None
    except UserError as e:
        unpack_error = str(e)
    try:
        fs = MergedFS.of_image(image, case.limits)
        check_error = None
    except UserError as e:
        check_error, fs = str(e), None
    if _snapshot(work, "sandbox") != before or outside.read_text() != "precious":
        problems.append("something outside the root changed")
    if case.refused:
        for what, error in (("unpack", unpack_error), ("check", check_error)):
            if error is None or case.fragment not in error:
                problems.append(f"{what}: expected a refusal with {case.fragment!r}, got {error!r}")
        if list((work / "sandbox").iterdir()):
            problems.append(f"partial output left: {sorted(p.name for p in (work / 'sandbox').iterdir())}")
        problems += _check_cli(case, image, work, capsys)
    else:
        if unpack_error or check_error:
            problems.append(f"refused an acceptable layer: unpack {unpack_error!r}, check {check_error!r}")
        for rel, mode in case.modes.items():
            got = stat.S_IMODE(os.lstat(root / rel).st_mode) if root.exists() else None
            seen = node.mode if fs and (node := fs.lookup(rel)) else None
            if got != mode or seen != mode:
                problems.append(
                    f"{rel}: unpack mode {got and oct(got)}, check mode {seen and oct(seen)}, expected {oct(mode)}"
                )
    return problems


def test_hostile_layer_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = list(cases())
    assert len(corpus) >= 60 and len({c.name for c in corpus}) == len(corpus)
    failures = {}
    for i, case in enumerate(corpus):
        problems = _run(case, tmp_path / f"case{i}", capsys)
        if problems:
            failures[case.name] = problems
    refused = sum(1 for c in corpus if c.refused and c.name not in failures)
    passed = len(corpus) - len(failures)
    with capsys.disabled():
        print(
            f"\nhostile layers: cases {len(corpus)} / refused {refused} / passed {passed}"
            f" (accepted with modes stripped: {sum(1 for c in corpus if not c.refused)})"
        )
    assert failures == {}
    assert refused == sum(1 for c in corpus if c.refused) and passed == len(corpus)
