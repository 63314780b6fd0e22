"""A private, throwaway apt environment: apt-get/apt-cache that ignore the host's state.

The host's sources.list, preferences, installed packages (dpkg status) and package lists
are all replaced (its apt.conf.d is kept, for proxy settings; every option that matters is
set on the command line, which wins) by files in a temporary directory, so a resolution depends only on the
sources we pass in and on what the mirror serves today. The dpkg status file is empty:
the closure apt computes is everything the base needs, not just what this machine lacks.
Recommends are off; maintainer scripts are never involved (we only simulate and print URIs).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence
from urllib.parse import unquote

from mlbuild.debian.errors import ResolveError
from mlbuild.debian.lock import AptSource

DEFAULT_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")

# `Inst NAME (VERSION RELEASE[, RELEASE...] [ARCH])`, optionally followed by ` []`.
_INST_RE = re.compile(r"^Inst (?P<name>[^\s:]+)(?::\S+)? (?:\[[^\]]*\] )?\((?P<version>\S+) .*\[(?P<arch>[^\]]+)\]\)")
# `'URL' FILENAME SIZE SHA256:HEX`
_URI_RE = re.compile(r"^'(?P<url>[^']+)' (?P<file>\S+) (?P<size>\d+) (?P<hash>\S*)$")


@dataclass(frozen=True)
class PlannedInstall:
    name: str
    version: str
    architecture: str


@dataclass(frozen=True)
class PrintedUri:
    url: str
    deb_name: str
    size: int
    sha256: str


def parse_simulated_install(output: str) -> list[PlannedInstall]:
    """Parse `apt-get -s install` output into the packages it would unpack."""
    planned = []
    for line in output.splitlines():
        if not line.startswith("Inst "):
            continue
        m = _INST_RE.match(line)
        if not m:
            raise ResolveError(f"cannot parse apt-get -s output line {line!r}")
        planned.append(PlannedInstall(m["name"], m["version"], m["arch"]))
    return planned


def parse_print_uris(output: str) -> list[PrintedUri]:
    """Parse `apt-get --print-uris install` output (run with Acquire::ForceHash=SHA256)."""
    uris = []
    for line in output.splitlines():
        if not line.startswith("'"):
            continue
        m = _URI_RE.match(line)
        if not m:
            raise ResolveError(f"cannot parse apt-get --print-uris line {line!r}")
        kind, _, digest = m["hash"].partition(":")
        if kind.upper() != "SHA256" or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ResolveError(
                f"apt-get --print-uris gave no SHA256 for {m['file']} (got {m['hash']!r}); "
                "the mirror's Packages index must carry SHA256 fields"
            )
        uris.append(PrintedUri(m["url"], unquote(m["file"]), int(m["size"]), digest))
    return uris


def parse_control_paragraphs(text: str) -> Iterator[dict[str, str]]:
    """Parse deb822 paragraphs (apt-cache show, control files); continuation lines joined."""
    fields: dict[str, str] = {}
    last = None
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields, last = {}, None
        elif line[0] in " \t" and last is not None:
            fields[last] += "\n" + line
        elif ":" in line:
            key, _, value = line.partition(":")
            last = key.strip()
            fields[last] = value.strip()
    if fields:
        yield fields


class AptEnvironment:
    """Context manager owning a temp dir with sources.list, lists, cache and an empty status."""

    def __init__(
        self,
        sources: Sequence[AptSource],
        mirrors: Mapping[str, str],
        architecture: str = "amd64",
        keyring: Path | None = DEFAULT_KEYRING,
    ) -> None:
        self.sources = tuple(sources)
        self.mirrors = dict(mirrors)
        self.architecture = architecture
        self.keyring = keyring
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> "AptEnvironment":
        if shutil.which("apt-get") is None or shutil.which("apt-cache") is None:
            raise ResolveError(
                "apt-get/apt-cache not found: refreshing the lock needs a Debian or Ubuntu "
                "machine with apt (any release; the suites come from the lock inputs)"
            )
        if self.keyring is not None and not self.keyring.exists():
            raise ResolveError(f"{self.keyring} not found: install it with `apt-get install debian-archive-keyring`")
        self._tmp = tempfile.TemporaryDirectory(prefix="mlbuild-apt-")
        root = Path(self._tmp.name)
        for d in ("lists/partial", "cache/archives/partial", "etc/sources.list.d", "etc/preferences.d"):
            (root / d).mkdir(parents=True)
        (root / "status").write_text("")
        (root / "etc/sources.list").write_text(self.sources_list())
        self.root = root
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._tmp is not None
        self._tmp.cleanup()
        self._tmp = None

    def sources_list(self) -> str:
        lines = []
        for s in self.sources:
            if s.mirror not in self.mirrors:
                raise ResolveError(f"source {s.suite}: mirror {s.mirror!r} has no URL in mirrors")
            opts = [f"arch={self.architecture}"]
            if self.keyring is not None:
                opts.append(f"signed-by={self.keyring}")
            lines.append(f"deb [{' '.join(opts)}] {self.mirrors[s.mirror]} {s.suite} {' '.join(s.components)}")
        return "\n".join(lines) + "\n"

    def options(self) -> list[str]:
        r = self.root
        settings = {
            "Dir::Etc::sourcelist": r / "etc/sources.list",
            "Dir::Etc::sourceparts": r / "etc/sources.list.d",
            "Dir::Etc::preferences": r / "etc/preferences",
            "Dir::Etc::preferencesparts": r / "etc/preferences.d",
            "Dir::State::Lists": r / "lists",
            "Dir::State::status": r / "status",
            "Dir::Cache": r / "cache",
            "APT::Architecture": self.architecture,
            "APT::Architectures": self.architecture,
            "APT::Install-Recommends": "false",
            "APT::Install-Suggests": "false",
            "APT::Sandbox::User": "root" if os.geteuid() == 0 else "",
            "Acquire::ForceHash": "SHA256",
            "Debug::NoLocking": "1",
        }
        out = []
        for key, value in settings.items():
            if value == "":
                continue
            out += ["-o", f"{key}={value}"]
        return out

    def run(self, tool: str, args: Iterable[str]) -> str:
        cmd = [tool, *self.options(), *args]
        env = {**os.environ, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            detail = (proc.stderr.strip() or proc.stdout.strip())[-2000:]
            hint = ""
            if "Unable to locate package" in detail or "has no installation candidate" in detail:
                hint = "\nfix: check the names in --packages against the suites in the lock inputs"
            elif "Failed to fetch" in detail or "Could not resolve" in detail:
                hint = "\nfix: the mirror is unreachable; check the network or pass --mirror KEY=URL"
            raise ResolveError(f"`{tool} {' '.join(args)}` failed (exit {proc.returncode}):\n{detail}{hint}")
        return proc.stdout

    def update(self) -> None:
        self.run("apt-get", ["-q", "update"])

    def simulate_install(self, packages: Sequence[str]) -> list[PlannedInstall]:
        return parse_simulated_install(self.run("apt-get", ["-s", "-q", "install", *packages]))

    def print_uris(self, packages: Sequence[str]) -> list[PrintedUri]:
        return parse_print_uris(self.run("apt-get", ["-qq", "--print-uris", "install", *packages]))

    def show(self, planned: Sequence[PlannedInstall]) -> list[dict[str, str]]:
        specs = [f"{p.name}:{self.architecture}={p.version}" for p in planned]
        return list(parse_control_paragraphs(self.run("apt-cache", ["show", "--no-all-versions", *specs])))
