"""Mutation check: the tests behind the two strongest claims of docs/internals/tests.md must fail when the claim breaks.

    python3 tests/mutation/check.py            # from the repo root; exit 0 only if every mutant is caught

Claims (docs/internals/tests.md, "What the tests prove"):
- "same seed, same model": a runtime that no longer seeds `random`/numpy must fail the test that
  trains the same pipeline twice and compares the model bytes.
- "byte-for-byte reproducible builds": a build that lets the clock or the path it runs in into
  a layer, the image or the PEX must fail the test that builds twice (another folder, another
  TMPDIR, later) and compares every byte.

How: `git clone` of HEAD into a temporary folder (never the working tree). First the chosen
tests run unmutated and must pass (a test that is already failing or skipped proves nothing).
Then each mutation is applied on its own, by replacing one exact snippet that must occur
exactly once (a patch that no longer applies fails the check loudly, naming the file and the
snippet to update), its tests run through `./pants test` with JUnit reports, and the named test
must be among the failures. The clone is restored after each mutation and removed at the end.
Prints a table; exit 0 when every mutant is caught, 1 when one survives or the baseline
fails, 2 when a patch does not apply or Pants could not run the tests at all.

The tests chosen are the cheapest that check each property end to end in the code that holds
it (unit tests, a few minutes in all); the e2e tests (`tests/e2e/run_churn_test.py`,
`tests/e2e/package_churn_test.py`) check the same properties on the real pipeline and are too
slow to run once per mutant.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[2]
REPORT_DIR = "dist/mutation-reports"


class PatchError(Exception):
    """A mutation's snippet is not in its file exactly once: the code moved, update the mutation."""


@dataclass(frozen=True)
class Mutation:
    name: str  # what the mutant does, for the table
    claim: str  # the claim (docs/internals/tests.md) it breaks
    path: str  # file, relative to the repo root
    old: str  # exact snippet, must occur once
    new: str
    test_file: str  # the test file Pants runs
    must_fail: str  # the test (pytest node name, parameters included) that must fail


MUTATIONS: Tuple[Mutation, ...] = (
    Mutation(
        name="runtime no longer seeds random/numpy",
        claim="same seed, same model",
        path="src/python/mlbuild/runtime/train.py",
        old="    _seed_everything(hp)\n",
        new="    pass  # MUTANT: no seeding\n",
        test_file="src/python/mlbuild/runtime/cli_test.py",
        must_fail="test_container_train_and_local_run_share_one_code_path",
    ),
    Mutation(
        name="tar entries carry the build's clock",
        claim="reproducible image",
        path="src/python/mlbuild/oci/determinism.py",
        old="    info.mtime = EPOCH\n",
        new="    info.mtime = int(__import__('time').time())  # MUTANT: clock\n",
        test_file="src/python/mlbuild/oci/build_test.py",
        must_fail="test_builds_are_byte_for_byte_reproducible_despite_noise[zlib]",
    ),
    Mutation(
        name="layer annotations carry the build's TMPDIR",
        claim="reproducible image",
        path="src/python/mlbuild/oci/build.py",
        old="{LAYER_NAME_ANNOTATION: name}",
        new="{LAYER_NAME_ANNOTATION: name, 'tmp': __import__('tempfile').gettempdir()}",
        test_file="src/python/mlbuild/oci/build_test.py",
        must_fail="test_builds_are_byte_for_byte_reproducible_despite_noise[zlib]",
    ),
    Mutation(
        name="PEX-INFO carries the sources' path",
        claim="reproducible PEX",
        path="src/python/mlbuild/zipapp/assemble.py",
        # NB: the packed PEX, `package`'s default.
        old="    new_info, pex_hash = _pex_info(info, sources, entry_point, inject_env)\n    files = [",
        new=(
            "    new_info, pex_hash = _pex_info(info, sources, entry_point, inject_env)\n"
            "    new_info['built_from'] = str(Path(sources_dir).resolve())  # MUTANT: path\n    files = ["
        ),
        test_file="src/python/mlbuild/zipapp/assemble_test.py",
        must_fail="test_packed_same_inputs_same_bytes_and_clashes_refused",
    ),
)


def apply(root: Path, mutation: Mutation) -> str:
    """Apply the mutation in `root`; return the file's original text (to restore it)."""
    path = root / mutation.path
    if not path.is_file():
        raise PatchError(f"{mutation.path}: no such file; update `path` of mutation {mutation.name!r} in {__file__}")
    text = path.read_text()
    count = text.count(mutation.old)
    if count != 1:
        raise PatchError(
            f"{mutation.path}: the snippet {mutation.old!r} of mutation {mutation.name!r} occurs {count} times "
            f"(expected once); the code moved: update the mutation in {__file__}"
        )
    path.write_text(text.replace(mutation.old, mutation.new))
    return text


def outcomes(report_dir: Path) -> Dict[str, str]:
    """JUnit reports -> {test name: 'passed' | 'failed' | 'error' | 'skipped'}.

    'failed' is a test whose body raised (an assertion); 'error' is one pytest could not set up
    (a fixture or the import raised): a mutant that breaks the import is not caught by the test.
    """
    result: Dict[str, str] = {}
    for xml in sorted(report_dir.rglob("*.xml")):
        for case in ET.parse(xml).getroot().iter("testcase"):
            name = f"{case.get('classname', '').rsplit('.', 1)[-1]}.py::{case.get('name')}"
            kinds = {child.tag for child in case}
            if "failure" in kinds:
                result[name] = "failed"
            elif "error" in kinds:
                result[name] = "error"
            elif "skipped" in kinds:
                result[name] = "skipped"
            else:
                result[name] = "passed"
    return result


def key(test_file: str, test: str) -> str:
    return f"{Path(test_file).name}::{test}"


def run_tests(root: Path, test_files: Iterable[str], log: Path) -> Tuple[int, Dict[str, str]]:
    report_dir = root / REPORT_DIR
    shutil.rmtree(report_dir, ignore_errors=True)
    argv = [
        "./pants",
        "--no-pantsd",
        "--no-watch-filesystem",
        "--no-dynamic-ui",
        "test",
        "--report",
        f"--report-dir={REPORT_DIR}",
        *sorted(set(test_files)),
    ]
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        code = subprocess.run(argv, cwd=root, stdout=out, stderr=subprocess.STDOUT).returncode
    return code, outcomes(report_dir)


def clone_head(source: Path, dest: Path) -> None:
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(source), str(dest)], check=True)


def table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def check(mutations: Sequence[Mutation], repo: Path, keep: bool = False) -> int:
    work = Path(tempfile.mkdtemp(prefix="mlbuild-mutation-"))
    root = work / "repo"
    log = work / "pants.log"
    started = time.monotonic()
    try:
        clone_head(repo, root)
        # The patches are checked before anything runs, so a stale one fails in seconds.
        for mutation in mutations:
            original = apply(root, mutation)
            (root / mutation.path).write_text(original)

        expected = {key(m.test_file, m.must_fail) for m in mutations}
        code, baseline = run_tests(root, (m.test_file for m in mutations), log)
        not_passing = {t: baseline.get(t, "not run") for t in sorted(expected) if baseline.get(t) != "passed"}
        if not_passing:
            print(
                f"mutation check: without mutations these tests do not pass (pants exit {code}): {not_passing}; "
                f"log: {log}",
                file=sys.stderr,
            )
            keep = True
            return 1

        rows: List[List[str]] = [["claim", "mutation", "file", "test that must fail", "result"]]
        survivors = 0
        for mutation in mutations:
            original = apply(root, mutation)
            try:
                code, found = run_tests(root, [mutation.test_file], log)
            finally:
                (root / mutation.path).write_text(original)
            state = found.get(key(mutation.test_file, mutation.must_fail), "not run")
            if state == "failed":
                result = "caught (test failed)"
            else:
                survivors += 1
                result = f"SURVIVED (test {state}, pants exit {code})"
            rows.append(
                [mutation.claim, mutation.name, mutation.path, key(mutation.test_file, mutation.must_fail), result]
            )
        print(table(rows))
        print(
            f"mutation check: {len(mutations) - survivors}/{len(mutations)} mutants caught in "
            f"{time.monotonic() - started:.0f} s"
        )
        if survivors:
            keep = True
            print(f"mutation check: a test that should prove its claim did not fail; log: {log}", file=sys.stderr)
            return 1
        return 0
    finally:
        if keep:
            print(f"mutation check: clone kept at {root}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--repo", type=Path, default=REPO, help="the git repository whose HEAD is cloned (default: this one)"
    )
    parser.add_argument(
        "--only", action="append", default=[], help="run only mutations whose name contains this (repeatable)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary clone and the Pants log")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.only or any(o in m.name for o in args.only)]
    if not chosen:
        parser.error(f"--only {args.only} matches no mutation; names: {[m.name for m in MUTATIONS]}")
    try:
        return check(chosen, args.repo, keep=args.keep)
    except PatchError as e:
        print(f"mutation check: error: {e}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as e:
        print(f"mutation check: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
