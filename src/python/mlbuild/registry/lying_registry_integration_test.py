"""A lying registry: a tampering proxy (tampering_proxy.py) in front of a real `docker-registry`.

Every lie (flipped, truncated or HTML bodies, wrong Docker-Content-Digest or Content-Type headers)
must make `python -m mlbuild.registry pull|resolve|push` (with and without --no-verify) exit 3
with one line naming what was wrong, no traceback; a failed pull leaves no layout and only
verified blobs in its cache. Prints `lying registry: cases N / refused R / passed P` (with -s).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from mlbuild.registry import push_layout
from mlbuild.registry.cli import main
from mlbuild.registry.local_server import serve_registry
from mlbuild.registry.tampering_proxy import HTML, Answer, Lie, Script, flip, header, html, tampering_proxy, truncate
from mlbuild.registry.testing import make_layout
from mlbuild.tools_required import require_tool

pytestmark = require_tool("docker-registry", "docker-registry")
WRONG = "sha256:" + "1" * 64
BLOBS, MANIFESTS = r"/blobs/sha256:", r"/manifests/"


def ok_with_wrong_digest(answer: Answer) -> Answer:
    """200 for a blob the registry lacks, claiming another digest (no Content-Length)."""
    return 200, {"docker-content-digest": WRONG}, b""


@dataclass(frozen=True)
class Case:
    name: str
    command: str  # 'pull' | 'resolve' | 'push' | 'push --no-verify'
    lies: tuple[Lie, ...]
    fragment: str  # in the one-line error


def _lie(method: str, path: str, rewrite, after: int = 0) -> Lie:
    return Lie(method, path, rewrite, after)


def cases() -> Iterator[Case]:
    for command in ("pull", "resolve"):
        yield Case(
            f"{command}: manifest is an HTML page", command, (_lie("*", MANIFESTS, html),), "not an image manifest"
        )
        yield Case(
            f"{command}: manifest Content-Type text/html",
            command,
            (_lie("GET", MANIFESTS, header("Content-Type", "text/html")),),
            "not an image manifest",
        )
        yield Case(f"{command}: manifest truncated", command, (_lie("GET", MANIFESTS, truncate),), "manifest")
        yield Case(f"{command}: manifest byte flipped", command, (_lie("GET", MANIFESTS, flip),), "manifest")
        yield Case(
            f"{command}: wrong Docker-Content-Digest",
            command,
            (_lie("*", MANIFESTS, header("Docker-Content-Digest", WRONG)),),
            "Docker-Content-Digest header says",
        )
        yield Case(f"{command}: every answer is HTML", command, (_lie("*", "", html),), "not an image manifest")
    yield Case("pull: layer byte flipped", "pull", (_lie("GET", BLOBS, flip, after=1),), "hashing to")
    yield Case("pull: config byte flipped", "pull", (_lie("GET", BLOBS, flip),), "hashing to")
    yield Case("pull: blob truncated", "pull", (_lie("GET", BLOBS, truncate, after=2),), "hashing to")
    yield Case("pull: blob is an HTML page", "pull", (_lie("GET", BLOBS, html),), "hashing to")
    for command in ("push", "push --no-verify"):
        yield Case(
            f"{command}: HEAD blob answers an HTML 200",
            command,
            (_lie("HEAD", BLOBS, html),),
            f"HEAD answers {len(HTML)} bytes",
        )
        yield Case(
            f"{command}: HEAD blob is an HTML 200 without a length",
            command,
            (_lie("HEAD", BLOBS, lambda a: (200, {"content-type": "text/html"}, b"")),),
            "(text/html)",
        )
        yield Case(
            f"{command}: HEAD blob claims another digest",
            command,
            (_lie("HEAD", BLOBS, ok_with_wrong_digest),),
            "HEAD answers -1 bytes",
        )
        yield Case(
            f"{command}: blob PUT reports another digest",
            command,
            (_lie("PUT", r"/blobs/uploads/", header("Docker-Content-Digest", WRONG)),),
            "reports Docker-Content-Digest",
        )
        yield Case(
            f"{command}: manifest PUT reports another digest",
            command,
            (_lie("PUT", MANIFESTS, header("Docker-Content-Digest", WRONG)),),
            "registry stored digest",
        )
        yield Case(
            f"{command}: every answer is HTML", command, (_lie("*", "", html),), f"HEAD answers {len(HTML)} bytes"
        )
    # NB: only verification reads back what was pushed; without it these lies go unseen (documented).
    yield Case("push: verify GET manifest flipped", "push", (_lie("GET", MANIFESTS, flip),), "serves different bytes")
    yield Case("push: verify GET manifest is HTML", "push", (_lie("GET", MANIFESTS, html),), "serves different bytes")
    yield Case(
        "push: verify HEAD blob is HTML",
        "push",
        (_lie("HEAD", BLOBS, html, after=3),),
        f"HEAD answers {len(HTML)} bytes",
    )
    yield Case(
        "push: verify HEAD blob truncated length",
        "push",
        (_lie("HEAD", BLOBS, header("Content-Length", "1"), after=3),),
        "HEAD answers 1 bytes",
    )


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, str]]:
    root = tmp_path_factory.mktemp("lying")
    with serve_registry(root / "registry") as running:
        layout = make_layout(root / "img")
        pushed = push_layout(
            layout, None, f"{running.host}/team/app", tags=["v1"], progress=None, env={"DOCKER_CONFIG": str(root)}
        )
        yield running.host, layout, pushed.digest


def _cache_is_verified(cache: Path) -> bool:
    blobs = cache / "sha256"
    return not blobs.is_dir() or all(hashlib.sha256(p.read_bytes()).hexdigest() == p.name for p in blobs.iterdir())


def _run(
    case: Case, i: int, registry: tuple[str, Path, str], work: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[str]]:
    host, layout, digest = registry
    script = Script([Lie(lie.method, lie.path, lie.rewrite, lie.after) for lie in case.lies])
    with tampering_proxy(host, script) as proxy:
        if case.command == "pull":
            argv = [
                "pull",
                f"{proxy}/team/app@{digest}",
                "--layout",
                str(work / "layout"),
                "--cache-dir",
                str(work / "cache"),
            ]
        elif case.command == "resolve":
            argv = ["resolve", f"{proxy}/team/app:v1"]
        else:
            argv = ["push", "--layout", str(layout), "--to", f"{proxy}/lies/case{i}", *case.command.split()[1:]]
        capsys.readouterr()
        code = main(argv)
        out, err = capsys.readouterr()
    problems = []
    if code != 3 or case.fragment not in err or "Traceback" in err or len(err.strip().splitlines()) != 1:
        problems.append(f"exit {code}, stdout {out.strip()[:100]!r}, stderr {err.strip()[:400]!r}")
    if not any(lie.fired for lie in script.lies):
        problems.append("the lie never fired")
    if case.command == "pull" and ((work / "layout").exists() or not _cache_is_verified(work / "cache")):
        problems.append("a failed pull left a layout or an unverified cached blob")
    return code, problems


def test_lying_registry(
    registry: tuple[str, Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker"))
    corpus = list(cases())
    failures = {}
    refused = 0
    for i, case in enumerate(corpus):
        work = tmp_path / f"case{i}"
        work.mkdir()
        code, problems = _run(case, i, registry, work, capsys)
        refused += code == 3
        if problems:
            failures[case.name] = problems
    passed = len(corpus) - len(failures)
    with capsys.disabled():
        print(f"\nlying registry: cases {len(corpus)} / refused {refused} / passed {passed}")
    assert failures == {} and refused == passed == len(corpus)


def test_the_proxy_tells_the_truth_when_not_lying(
    registry: tuple[str, Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: through the same proxy with no lies, pull, resolve and both pushes succeed."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker"))
    host, layout, digest = registry
    with tampering_proxy(host, Script()) as proxy:
        assert main(["resolve", f"{proxy}/team/app:v1"]) == 0
        assert capsys.readouterr().out.strip() == digest
        assert (
            main(
                [
                    "pull",
                    f"{proxy}/team/app@{digest}",
                    "--layout",
                    str(tmp_path / "l"),
                    "--cache-dir",
                    str(tmp_path / "c"),
                ]
            )
            == 0
        )
        for i, extra in enumerate(([], ["--no-verify"])):
            assert main(["push", "--layout", str(layout), "--to", f"{proxy}/truth/p{i}", *extra]) == 0
            assert capsys.readouterr().out.strip().endswith(digest)
