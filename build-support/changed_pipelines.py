#!/usr/bin/env python3
"""Which ml_pipelines a change affects: what the pull-request workflow publishes.

    python3 build-support/changed_pipelines.py --since origin/main [--json] [--markdown FILE]

A pipeline is published when something it is built from changed since `--since` (the working
tree against that commit, as Pants' `--changed-since` compares):
- Pants says so: `--changed-since=REF --changed-dependents=transitive` over the build graph:
  its code and config, any first-party module it imports, the lockfile of its resolve (each
  resolve's lockfile is a target of its own: a torch.lock edit selects only torch pipelines),
  its base image target (the Debian lock);
- or a file in its own folder changed that no target owns: the sample data under `data/`,
  which `pants run` and the local backend train on. Data in S3 is not in git: a job is pinned
  to the checksums of its channels, and re-publishing for new data is done by hand
  (`./pants publish PIPELINE`, or the workflow's manual run, which publishes every pipeline).

Prints one address per line (or `--json`: every pipeline with `publish` true/false and the
reason); `--markdown FILE` writes the lines the report comment starts with, skipped ones too.
Exits 2 with the fix when `--since` names no commit (a shallow clone: fetch-depth 0).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Sequence


@dataclass(frozen=True)
class Decision:
    address: str
    publish: bool
    reason: str


def _run(argv: Sequence[str], cwd: Path) -> str:
    done = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"changed_pipelines: `{' '.join(argv)}` failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def _pants_list(repo: Path, *options: str) -> List[str]:
    out = _run(["./pants", "--no-dynamic-ui", *options, "--filter-target-type=ml_pipeline", "list", *([] if options else ["::"])], repo)
    return sorted(line.strip() for line in out.splitlines() if line.strip())


def _folder(address: str) -> str:
    return address.split(":", 1)[0].rstrip("/") + "/"


def decide(every: Sequence[str], by_pants: Sequence[str], changed_files: Sequence[str], since: str) -> List[Decision]:
    """The decision for each pipeline, from what Pants selected and the changed file names."""
    selected = set(by_pants)
    decisions = []
    for address in sorted(every):
        if address in selected:
            decisions.append(Decision(address, True, f"something it is built from changed since {since}"))
            continue
        own = [f for f in changed_files if f.startswith(_folder(address))]
        if own:
            more = f" and {len(own) - 1} more" if len(own) > 1 else ""
            decisions.append(Decision(address, True, f"its folder changed: {own[0]}{more}"))
        else:
            decisions.append(Decision(address, False, f"nothing it is built from changed since {since}"))
    return decisions


def markdown(decisions: Sequence[Decision], since: str) -> str:
    published = [d for d in decisions if d.publish]
    lines = [f"**mlbuild**: publishing {len(published)} of {len(decisions)} pipelines (changes since `{since}`)", ""]
    lines += [f"- `{d.address}`: {'published' if d.publish else 'skipped'}: {d.reason}" for d in decisions]
    return "\n".join(lines) + "\n"


def select(repo: Path, since: str) -> List[Decision]:
    if subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{since}^{{commit}}"], cwd=repo, capture_output=True).returncode:
        print(
            f"changed_pipelines: --since {since!r} names no commit in {repo}. Fix: fetch it "
            "(actions/checkout with fetch-depth: 0, or `git fetch origin main`).",
            file=sys.stderr,
        )
        raise SystemExit(2)
    every = _pants_list(repo)
    by_pants = _pants_list(repo, f"--changed-since={since}", "--changed-dependents=transitive")
    changed = [f for f in _run(["git", "diff", "--name-only", since], repo).splitlines() if f]
    changed += [f for f in _run(["git", "ls-files", "--others", "--exclude-standard"], repo).splitlines() if f]
    return decide(every, by_pants, changed, since)


def main(argv: Sequence[str] = tuple(sys.argv[1:])) -> int:
    p = argparse.ArgumentParser(prog="build-support/changed_pipelines.py", description=__doc__.splitlines()[0])
    p.add_argument("--since", required=True, help="the commit to compare with (the PR's base)")
    p.add_argument("--json", action="store_true", help="print every pipeline's decision as JSON")
    p.add_argument("--markdown", type=Path, help="write the report comment's summary lines to this file")
    args = p.parse_args(list(argv))
    decisions = select(Path.cwd(), args.since)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(decisions, args.since))
    if args.json:
        out: Dict[str, object] = {"since": args.since, "pipelines": [asdict(d) for d in decisions]}
        print(json.dumps(out, indent=2))
    else:
        print("\n".join(d.address for d in decisions if d.publish))
    return 0


if __name__ == "__main__":
    sys.exit(main())
