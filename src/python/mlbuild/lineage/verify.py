"""`verify QUERY`: rebuild an artifact from a clean checkout of its recorded revision and compare.

    QUERY -> the package record that made the artifact (a run or publish record is followed to
             its package by PEX sha256 / image digest)
          -> refuse if the build was dirty or its revision unknown
          -> git clone --no-hardlinks <repo> TMP && git -C TMP checkout <revision>
          -> ./pants --no-pantsd --no-local-cache package <pipeline>   (in TMP, output to stderr)
          -> compare TMP/dist/<path dotted>/<name>.image.json and .pex with the record

A match prints `verified: <manifest digest> rebuilt identically from <revision>`. A mismatch
raises `NotReproducible` (exit 7) naming each input whose recorded and rebuilt values differ:
lockfile, config, base image, PEX (code), each layer (by its `org.mlbuild.layer.name`), tool
versions. Every git/Pants call goes through one `Runner`, so tests replace it.

NB: the rebuild runs with `--no-local-cache` by default: with Pants' process cache, identical
inputs replay the outputs of the original build instead of rebuilding them, which shows the
inputs match but not that the build reproduces. `reuse_cache=True` (`--reuse-cache`) trades
that for speed. It also gets fresh named caches (Pants' pex_root: downloaded and installed
wheels, venvs), so nothing a developer ran on this machine can reach the rebuild; the lockfile
pins what gets downloaded again. Shared still: the launcher's Pants venv and pex CLI, and the
system's interpreters.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from mlbuild import console
from mlbuild.lineage import collect, provenance
from mlbuild.lineage.build_diff import Difference, NotReproducible, check, differences  # noqa: F401 - re-exported
from mlbuild.lineage.build_facts import (  # noqa: F401
    Facts,
    Layer,
    _summary_path,
    output_paths,
    rebuilt_facts,
    recorded_facts,
)
from mlbuild.lineage.provenance import VerificationError
from mlbuild.lineage.rebuild_choice import DIRTY_REFUSAL, check_rebuildable, resolve_package  # noqa: F401
from mlbuild.lineage.rebuild_runner import (  # noqa: F401 - re-exported; tests replace run_command here
    SCRUBBED_ENV,
    CannotRebuild,
    RebuildFailed,
    Runner,
    child_env,
    git_toplevel,
    pants_argv,
    run_command,
)
from mlbuild.lineage.record import Record
from mlbuild.lineage.store import Store
from mlbuild.names import DIST_LINEAGE_SUBDIR, LAYER_COMPRESSOR_ANNOTATION, LAYER_NAME_ANNOTATION  # noqa: F401


def check_rebuilt_provenance(checkout: Path, record: Record) -> str:
    """The rebuilt layout's provenance: about the rebuilt image, and the recorded statement's bytes.

    Same revision, same Pants (pinned in pants.toml) and same mlbuild (in the tree), so the
    statement, which carries no timestamps, rebuilds byte for byte like the image does.
    """
    recorded = record.get("provenance.digest")
    if recorded and record.get("provenance.subject") not in (None, record.get("image.manifest_digest")):
        raise VerificationError(
            f"package record {record.id[:12]}: its provenance is about {record.get('provenance.subject')}, "
            f"not its image {record.get('image.manifest_digest')}; the record is inconsistent."
        )
    summary_path = _summary_path(checkout / "dist", record.pipeline, search=True)
    build = collect.read_image_build(summary_path) if summary_path else None
    stored = provenance.stored_in_layout(build.layout, build.manifest_digest) if build and build.layout else None
    if stored is None:
        if recorded:
            raise NotReproducible(
                f"not reproducible: the rebuild stored no provenance, the record names {recorded}.",
                [Difference("provenance digest", recorded, None, "the rebuilt layout holds no statement")],
            )
        return "the rebuilt layout holds no provenance (built before mlbuild stored it there)"
    assert build is not None and build.layout is not None  # NB: `stored` needs both
    subject = provenance.verify_statement(
        provenance.from_layout(build.layout, build.manifest_digest) or {}, build.manifest_digest
    )
    rebuilt = stored.descriptor.digest
    if recorded and recorded != rebuilt:
        raise NotReproducible(
            f"not reproducible: the image rebuilt identically but its provenance did not (recorded {recorded}, "
            f"rebuilt {rebuilt}); the statement names the Pants and mlbuild versions and the config, so one of those differs.",
            [Difference("provenance digest", recorded, rebuilt, "tool versions or config in the statement")],
        )
    same = f", identical to the recorded {recorded[:19]}" if recorded else ""
    return f"its provenance's subject is {subject.get('name')} (sha256:{subject['digest']['sha256'][:12]}){same}"


# --- the whole thing ----------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    repo: Optional[Path] = None
    keep: bool = False
    reuse_cache: bool = False
    workdir: Optional[Path] = None  # where the temporary checkout goes (default: $TMPDIR)


def verify(
    store: Store,
    query: str,
    options: Options = Options(),
    runner: Optional[Runner] = None,
    log: Callable[[str], None] = lambda msg: console.say(f"verify: {msg}"),
) -> str:
    """Rebuild what `query` names from a clean checkout and compare; the success line, or raises."""
    runner = runner or run_command  # NB: looked up per call, so tests can patch the module's
    record = resolve_package(store, query, log)
    revision = check_rebuildable(record)
    repo = Path(options.repo).resolve() if options.repo else git_toplevel(runner)
    try:
        runner(["git", "-C", str(repo), "cat-file", "-e", f"{revision}^{{commit}}"], None, False)
    except RebuildFailed:
        raise CannotRebuild(
            f"cannot rebuild: revision {revision} is not in {repo}. Fix: fetch it, or pass --repo with a clone that has it."
        ) from None
    log(
        f"package record {record.id[:12]}: {record.pipeline} at {revision}, image {record.get('image.manifest_digest')}"
    )
    checkout = Path(tempfile.mkdtemp(prefix="mlbuild-verify-", dir=str(options.workdir) if options.workdir else None))
    try:
        runner(["git", "clone", "--no-hardlinks", "--quiet", str(repo), str(checkout)], None, False)
        runner(["git", "-C", str(checkout), "checkout", "--quiet", revision], None, False)
        # NB: fresh named caches too: the developer's pex_root (wheels, installed wheels,
        # venvs) is state a build could read (its .pyc files once entered a PEX); a verdict must not depend on it.
        argv = pants_argv(record.pipeline, options.reuse_cache, checkout.parent / f"{checkout.name}-named-caches")
        shutil.rmtree(checkout.parent / f"{checkout.name}-named-caches", ignore_errors=True)
        log(f"rebuilding in {checkout}: {' '.join(argv)}")
        runner(argv, checkout, True)
        rebuilt = rebuilt_facts(checkout, record)
        dists = [repo / "dist"]
        for root in (store.root, *store.inboxes):
            if root.parts[-3:] == ("dist", *Path(DIST_LINEAGE_SUBDIR).parts):
                dists.append(root.parent.parent)
        dists = list(dict.fromkeys(dists))
        verified = check(record, recorded_facts(record, dists), rebuilt, revision)
        return f"{verified}; {check_rebuilt_provenance(checkout, record)}"
    finally:
        if options.keep:
            log(f"kept the checkout: {checkout}")
        else:
            shutil.rmtree(checkout, ignore_errors=True)
            shutil.rmtree(checkout.parent / f"{checkout.name}-named-caches", ignore_errors=True)
