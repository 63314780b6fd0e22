"""The docs stay true to the tree: every `MLBUILD_*` variable the code reads is on
docs/reference/environment.md (and nothing else is), and every relative link in README.md and
docs/ leads to a file and heading that exist."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENT_PAGE = "docs/reference/environment.md"
# NB: what reads variables: the library and the plugin (test modules left out: they set what the
# code reads), the launcher, the benchmarks and the fresh-machine script. `.ci/run` is not here:
# Pants ignores dot-folders, and the one variable it sets is defined in mlbuild/names.py.
CODE_GLOBS = (
    "src/python/mlbuild/**/*.py",
    "pants-plugins/**/*.py",
    "bench/**/*",
    "pants",
    "tests/fresh_machine/run.sh",
)
VARIABLE = re.compile(r"\bMLBUILD_[A-Z0-9_]*[A-Z0-9]\b")
LISTED = re.compile(r"^\| `(MLBUILD_[A-Z0-9_]+)` \|", re.MULTILINE)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def _is_test_file(path: Path) -> bool:
    return path.name.endswith("_test.py") or path.name == "conftest.py"


def code_files() -> Iterator[Path]:
    for pattern in CODE_GLOBS:
        for path in sorted(ROOT.glob(pattern)):
            if path.is_file() and not _is_test_file(path):
                yield path


def variables_read() -> Dict[str, str]:
    """Each `MLBUILD_*` name in the code, with one file that spells it."""
    found: Dict[str, str] = {}
    for path in code_files():
        for name in VARIABLE.findall(path.read_text(errors="replace")):
            found.setdefault(name, str(path.relative_to(ROOT)))
    return found


def doc_pages() -> List[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]


def test_the_code_has_files_to_scan() -> None:
    # NB: guards the sandbox: with no files the comparisons below would pass vacuously.
    assert (ROOT / "src/python/mlbuild/names.py").is_file() and (ROOT / "pants").is_file()
    assert len(variables_read()) > 10


def test_every_variable_the_code_reads_is_on_the_environment_page_and_no_other() -> None:
    read = variables_read()
    listed = set(LISTED.findall((ROOT / ENVIRONMENT_PAGE).read_text()))
    missing = {name: where for name, where in read.items() if name not in listed}
    unread = listed - read.keys()
    assert not missing, f"read by the code but not listed in {ENVIRONMENT_PAGE}: {missing}. Fix: add a row for each."
    assert not unread, f"listed in {ENVIRONMENT_PAGE} but read nowhere: {sorted(unread)}. Fix: remove the rows."


def test_the_docs_mention_no_variable_the_code_does_not_read() -> None:
    read = variables_read().keys()
    stale = {
        f"{page.relative_to(ROOT)}: {name}"
        for page in doc_pages()
        for name in VARIABLE.findall(page.read_text())
        if name not in read
    }
    assert not stale, f"variables no code reads: {sorted(stale)}. Fix: correct or remove the mention."


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lowercase, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> Set[str]:
    seen: Dict[str, int] = {}
    result = set()
    for line in FENCE.sub("", page.read_text()).splitlines():
        match = re.match(r"^#{1,6} (.+)$", line)
        if match:
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            result.add(base if count == 0 else f"{base}-{count}")
    return result


def relative_links(page: Path) -> Iterator[Tuple[str, Path, str]]:
    for target in LINK.findall(FENCE.sub("", page.read_text())):
        if re.match(r"^[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        yield target, (page.parent / path).resolve() if path else page, anchor


def test_every_relative_link_leads_to_a_file_and_heading_that_exist() -> None:
    broken = []
    for page in doc_pages():
        for target, path, anchor in relative_links(page):
            where = f"{page.relative_to(ROOT)}: ({target})"
            if not path.exists():
                broken.append(f"{where}: no such file")
            elif anchor and path.suffix == ".md" and anchor not in anchors(path):
                broken.append(f"{where}: no heading with that anchor")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_link_checker_sees_a_broken_link(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# A `title`: here\n\n[ok](#a-title-here) [bad](#nope) [gone](missing.md)\n```\n[in code](x.md)\n```\n"
    )
    assert anchors(page) == {"a-title-here"}
    links = [(t, p.exists(), a) for t, p, a in relative_links(page)]
    assert links == [("#a-title-here", True, "a-title-here"), ("#nope", True, "nope"), ("missing.md", False, "")]
