"""Large outputs that a code edit never changes, stored once under `dist/` and linked.

NB: `pants package` clears and rewrites every artifact it returns (`Workspace.write_digest`
with `clear_paths`): a layout holding a 3 GB torch image or a PEX holding its wheels would be
3 GB written per `package`, per pipeline, even with nothing changed. So the files that come
unchanged from cached dependency builds (the base and dependency layers' blobs, the packed
PEX's `.bootstrap` and `.deps/`) are placed once in `dist/mlbuild/blobs/sha256/<hex>`
(`mlbuild.shared_blobs`) and the artifacts hold symlinks to them: `package` then writes only
the code's few files and a link per shared blob, whatever the dependencies weigh.

Placing them is a side effect outside the sandbox, so it is checked on every run (a
per-session `find` of the store: `rm -rf dist` or a remote-cache hit that skipped the build
are noticed) and the bytes are copied only when missing (`python -m mlbuild.shared_blobs fill`). The links are absolute, so a Process sandbox or a
`pants run` chroot that holds the artifact reads the same files.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from pants.backend.python.util_rules.pex import VenvPexProcess
from pants.base.build_root import BuildRoot
from pants.core.util_rules.distdir import DistDir
from pants.engine.fs import (
    CreateDigest,
    Digest,
    DigestEntries,
    DigestSubset,
    FileContent,
    FileEntry,
    MergeDigests,
    PathGlobs,
    SymlinkEntry,
)
from pants.engine.process import Process, ProcessCacheScope, ProcessResult
from pants.engine.rules import Get, MultiGet, collect_rules, rule

from mlbuild_pants.names import DIST_SHARED_BLOBS_SUBDIR
from mlbuild_pants.tool import MLBuildTool

WANT_FILE = "mlbuild-shared-blobs.json"


@dataclass(frozen=True)
class SharedBlobsRequest:
    digest: Digest  # the files to store once, at the paths the artifacts hold them
    description: str


@dataclass(frozen=True)
class SharedBlobs:
    links: Digest  # the same paths, each a symlink to its blob in the store
    store: str  # the store's absolute path


def shared_blobs_store(build_root: BuildRoot, dist_dir: DistDir) -> str:
    return os.path.join(build_root.path, str(dist_dir.relpath), DIST_SHARED_BLOBS_SUBDIR)


def want_of(entries: DigestEntries) -> dict:
    """{sha256 hex: {path, size}}: what `mlbuild.shared_blobs` is asked to hold."""
    return {
        e.file_digest.fingerprint: {"path": e.path, "size": e.file_digest.serialized_bytes_length}
        for e in sorted((e for e in entries if isinstance(e, FileEntry)), key=lambda e: e.path)
    }


def missing_from(listing: str, want: dict) -> list:
    """The wanted digests that a `<hex> <size>` listing of the store lacks (or has at another size)."""
    present = dict(line.split(" ", 1) for line in listing.splitlines() if " " in line)
    return sorted(h for h, w in want.items() if present.get(h) != str(w["size"]))


def links_of(entries: DigestEntries, store: str) -> tuple:
    return tuple(
        SymlinkEntry(e.path, os.path.join(store, "sha256", e.file_digest.fingerprint))
        for e in entries
        if isinstance(e, FileEntry)
    )


@rule(desc="Storing shared blobs under dist/")
async def store_shared_blobs(
    request: SharedBlobsRequest, tool: MLBuildTool, build_root: BuildRoot, dist_dir: DistDir
) -> SharedBlobs:
    store = shared_blobs_store(build_root, dist_dir)
    entries = await Get(DigestEntries, Digest, request.digest)
    want = want_of(entries)
    # NB: what the store holds, by one `find` (a few milliseconds, no interpreter to start): the
    # same question for every pipeline of a command, so the engine runs it once per `pants` run.
    listing = await Get(
        ProcessResult,
        Process(
            argv=(
                "/bin/sh",
                "-c",
                'find "$1/sha256" -maxdepth 1 -type f -printf "%f %s\\n" 2>/dev/null; true',
                "sh",
                store,
            ),
            cache_scope=ProcessCacheScope.PER_SESSION,
            description=f"Listing the shared blobs in {store}",
        ),
    )
    lacking = missing_from(listing.stdout.decode(), want)
    if lacking:
        subset, want_digest = await MultiGet(
            Get(Digest, DigestSubset(request.digest, PathGlobs([want[h]["path"] for h in lacking]))),
            Get(
                Digest,
                CreateDigest(
                    [FileContent(WANT_FILE, json.dumps({h: want[h] for h in lacking}, sort_keys=True).encode())]
                ),
            ),
        )
        inputs = await Get(Digest, MergeDigests([subset, want_digest]))
        await Get(
            ProcessResult,
            VenvPexProcess(
                tool.pex,
                argv=("-m", "mlbuild.shared_blobs", "fill", "--store", store, "--want", WANT_FILE, "--from", "."),
                input_digest=inputs,
                cache_scope=ProcessCacheScope.PER_SESSION,
                description=f"Storing {len(lacking)} shared blob(s) of {request.description} in {store}",
            ),
        )
    links = await Get(Digest, CreateDigest(links_of(entries, store)))
    return SharedBlobs(links, store)


def rules():
    return collect_rules()
