"""The package lock file: which exact .deb files make up a base root filesystem.

The lock is JSON, committed to the repo (e.g. `docker/debian-python3.11/packages.lock.json`),
and written in one canonical form: packages sorted by (name, architecture), fixed key
order, two-space indent, trailing newline. `dumps(loads(text)) == text` for any lock this
module wrote, so a refresh that changes nothing changes no byte.

Mirror base URLs are kept apart from package paths: each package names a mirror key
(`"debian"`, `"debian-security"`) and its `filename` relative to that mirror
(`pool/main/p/python3.11/python3.11_..._amd64.deb`), so moving to another mirror is a
one-line edit of `mirrors` (or a `--mirror` override at fetch time).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import quote

from mlbuild.debian.errors import LockFileError

LOCK_VERSION = 1

REFRESH_HINT = (
    "regenerate it with `./pants mlbuild lock-debian --output FILE` " "(see docker/debian-python3.11/README.md)"
)

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_VERSION_RE = re.compile(r"^[0-9A-Za-z.+~:-]+$")
_ARCH_RE = re.compile(r"^[a-z0-9-]+$")
_MIRROR_KEY_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class AptSource:
    """One `deb MIRROR SUITE COMPONENTS...` line, with the mirror named by its key."""

    mirror: str
    suite: str
    components: tuple[str, ...] = ("main",)


@dataclass(frozen=True)
class LockInputs:
    """What the lock was resolved from; `resolve.py` can redo it from these alone."""

    packages: tuple[str, ...]  # kept sorted and de-duplicated
    architecture: str
    sources: tuple[AptSource, ...]  # order kept: it is apt's sources.list order

    def __post_init__(self) -> None:
        object.__setattr__(self, "packages", tuple(sorted(set(self.packages))))
        object.__setattr__(self, "sources", tuple(self.sources))


@dataclass(frozen=True)
class LockedPackage:
    name: str
    version: str
    architecture: str  # the package's own: "amd64", or "all" for arch-independent ones
    mirror: str  # key into PackageLock.mirrors
    filename: str  # path relative to the mirror base, e.g. "pool/main/..."
    size: int
    sha256: str

    @property
    def deb_name(self) -> str:
        return self.filename.rsplit("/", 1)[-1]

    def url(self, mirrors: Mapping[str, str]) -> str:
        try:
            base = mirrors[self.mirror]
        except KeyError:
            raise LockFileError(
                f"package {self.name}: mirror {self.mirror!r} is not in the lock's `mirrors` "
                f"(known: {sorted(mirrors)}); add it to `mirrors` or pass --mirror {self.mirror}=URL"
            ) from None
        return base.rstrip("/") + "/" + quote(self.filename, safe="/~")


@dataclass(frozen=True)
class PackageLock:
    inputs: LockInputs
    mirrors: Mapping[str, str]
    packages: tuple[LockedPackage, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        # Canonical order, whatever order the caller built it in.
        object.__setattr__(self, "packages", tuple(sorted(self.packages, key=lambda p: (p.name, p.architecture))))
        object.__setattr__(self, "mirrors", dict(sorted(self.mirrors.items())))

    @property
    def total_size(self) -> int:
        return sum(p.size for p in self.packages)

    def with_mirrors(self, overrides: Mapping[str, str]) -> "PackageLock":
        return PackageLock(self.inputs, {**self.mirrors, **overrides}, self.packages)


# --- serialisation ---------------------------------------------------------------------


def to_json_obj(lock: PackageLock) -> dict[str, Any]:
    return {
        "lock_version": LOCK_VERSION,
        "inputs": {
            "packages": sorted(lock.inputs.packages),
            "architecture": lock.inputs.architecture,
            "sources": [
                {"mirror": s.mirror, "suite": s.suite, "components": list(s.components)} for s in lock.inputs.sources
            ],
        },
        "mirrors": dict(sorted(lock.mirrors.items())),
        "packages": [
            {
                "name": p.name,
                "version": p.version,
                "architecture": p.architecture,
                "mirror": p.mirror,
                "filename": p.filename,
                "size": p.size,
                "sha256": p.sha256,
            }
            for p in lock.packages
        ],
    }


def dumps(lock: PackageLock) -> str:
    return json.dumps(to_json_obj(lock), indent=2, ensure_ascii=False) + "\n"


def write(lock: PackageLock, path: Path) -> None:
    """Write atomically: a reader sees the old lock or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(dumps(lock))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def loads(text: str, source: str = "<lock>") -> PackageLock:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise LockFileError(f"{source}: not valid JSON ({e}); {REFRESH_HINT}") from None
    return from_json_obj(obj, source)


def load(path: Path) -> PackageLock:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LockFileError(f"{path}: lock file not found; {REFRESH_HINT}") from None
    return loads(text, str(path))


class _Reader:
    """Field access that names the file and the JSON path in every error."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> LockFileError:
        return LockFileError(f"{self.source}: {where}: {problem}; {REFRESH_HINT}")

    def get(self, obj: Any, key: str, where: str, kind: type) -> Any:
        if not isinstance(obj, dict):
            raise self.fail(where, f"expected an object, got {type(obj).__name__}")
        if key not in obj:
            raise self.fail(f"{where}.{key}" if where else key, "missing")
        value = obj[key]
        if kind is int and isinstance(value, bool) or not isinstance(value, kind):
            raise self.fail(
                f"{where}.{key}" if where else key,
                f"expected {kind.__name__}, got {type(value).__name__} {value!r}",
            )
        return value

    def string(self, obj: Any, key: str, where: str, pattern: re.Pattern[str] | None = None) -> str:
        value = self.get(obj, key, where, str)
        if pattern is not None and not pattern.match(value):
            raise self.fail(f"{where}.{key}", f"malformed value {value!r}")
        return value

    def strings(self, obj: Any, key: str, where: str) -> tuple[str, ...]:
        values = self.get(obj, key, where, list)
        for i, v in enumerate(values):
            if not isinstance(v, str):
                raise self.fail(f"{where}.{key}[{i}]", f"expected string, got {v!r}")
        return tuple(values)


def from_json_obj(obj: Any, source: str = "<lock>") -> PackageLock:
    r = _Reader(source)
    if not isinstance(obj, dict):
        raise r.fail("top level", f"expected an object, got {type(obj).__name__}")
    version = r.get(obj, "lock_version", "", int)
    if version != LOCK_VERSION:
        raise r.fail("lock_version", f"unsupported version {version} (this mlbuild reads {LOCK_VERSION})")

    raw_inputs = r.get(obj, "inputs", "", dict)
    sources = []
    for i, s in enumerate(r.get(raw_inputs, "sources", "inputs", list)):
        where = f"inputs.sources[{i}]"
        sources.append(
            AptSource(
                mirror=r.string(s, "mirror", where, _MIRROR_KEY_RE),
                suite=r.string(s, "suite", where),
                components=r.strings(s, "components", where),
            )
        )
    inputs = LockInputs(
        packages=r.strings(raw_inputs, "packages", "inputs"),
        architecture=r.string(raw_inputs, "architecture", "inputs", _ARCH_RE),
        sources=tuple(sources),
    )

    raw_mirrors = r.get(obj, "mirrors", "", dict)
    mirrors: dict[str, str] = {}
    for key, url in raw_mirrors.items():
        if not _MIRROR_KEY_RE.match(key):
            raise r.fail(f"mirrors.{key}", "malformed mirror key")
        if not isinstance(url, str) or "://" not in url:
            raise r.fail(f"mirrors.{key}", f"expected a URL like http://deb.debian.org/debian, got {url!r}")
        mirrors[key] = url
    for i, s in enumerate(inputs.sources):
        if s.mirror not in mirrors:
            raise r.fail(f"inputs.sources[{i}].mirror", f"{s.mirror!r} is not a key of `mirrors`")

    packages = []
    seen: set[tuple[str, str]] = set()
    for i, p in enumerate(r.get(obj, "packages", "", list)):
        where = f"packages[{i}]"
        pkg = LockedPackage(
            name=r.string(p, "name", where, _NAME_RE),
            version=r.string(p, "version", where, _VERSION_RE),
            architecture=r.string(p, "architecture", where, _ARCH_RE),
            mirror=r.string(p, "mirror", where, _MIRROR_KEY_RE),
            filename=r.string(p, "filename", where),
            size=r.get(p, "size", where, int),
            sha256=r.string(p, "sha256", where, _SHA256_RE),
        )
        where = f"{where} ({pkg.name})"
        if pkg.mirror not in mirrors:
            raise r.fail(f"{where}.mirror", f"{pkg.mirror!r} is not a key of `mirrors`")
        if pkg.filename.startswith("/") or ".." in pkg.filename.split("/") or not pkg.filename.endswith(".deb"):
            raise r.fail(f"{where}.filename", f"expected a relative pool/... .deb path, got {pkg.filename!r}")
        if pkg.size <= 0:
            raise r.fail(f"{where}.size", f"expected a positive byte count, got {pkg.size}")
        key = (pkg.name, pkg.architecture)
        if key in seen:
            raise r.fail(where, f"package {pkg.name}:{pkg.architecture} is listed twice")
        seen.add(key)
        packages.append(pkg)

    names = {p.name for p in packages}
    missing = [n for n in inputs.packages if n not in names]
    if missing:
        raise r.fail("inputs.packages", f"requested packages {missing} are not in `packages`")
    return PackageLock(inputs=inputs, mirrors=mirrors, packages=tuple(packages))


def default_sources() -> tuple[AptSource, ...]:
    return (
        AptSource("debian", "bookworm"),
        AptSource("debian", "bookworm-updates"),
        AptSource("debian-security", "bookworm-security"),
    )


DEFAULT_MIRRORS: Mapping[str, str] = {
    "debian": "http://deb.debian.org/debian",
    "debian-security": "http://deb.debian.org/debian-security",
}

# The base's top-level packages. base-files (/etc/os-release), netbase (/etc/services,
# /etc/protocols) and tzdata (/usr/share/zoneinfo) are what a distroless base adds on top;
# coreutils is what scientific libraries shell out to (joblib runs `cat /proc/cpuinfo`).
DEFAULT_PACKAGES: Sequence[str] = (
    "base-files",
    "ca-certificates",
    "coreutils",
    "libgomp1",
    "libstdc++6",
    "netbase",
    "python3.11",
    "tzdata",
)
