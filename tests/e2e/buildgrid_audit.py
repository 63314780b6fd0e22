"""Print, as JSON, the argv and environment of every REAPI Command in a BuildGrid disk CAS.

    <buildgrid venv>/bin/python tests/e2e/buildgrid_audit.py CAS_DIR

Runs with BuildGrid's own python (it has the REAPI protos, imported only when it runs, so the
test can import this module for its path); the remote-cache test checks that
no cache key carries a path of the machine it was built on. A blob counts as an Action when it
parses as one and its command digest names a blob in the same CAS that parses as a Command
with arguments: what Pants uploads for every cached Process.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def objects(cas_dir: Path) -> dict:
    root = cas_dir / "cas" / "objects"
    return {p.parent.name + p.name: p for p in root.glob("??/*") if p.is_file()}


def parse(message, data: bytes):
    from google.protobuf.message import DecodeError  # pants: no-infer-dep

    try:
        message.ParseFromString(data)
    except (DecodeError, RuntimeWarning, ValueError):
        return None
    return message


def commands(cas_dir: Path) -> list:
    from buildgrid._protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as reapi  # pants: no-infer-dep

    blobs = objects(cas_dir)
    found = []
    for path in blobs.values():
        if path.stat().st_size > 1 << 20:
            continue
        action = parse(reapi.Action(), path.read_bytes())
        if action is None or action.command_digest.hash not in blobs or len(action.command_digest.hash) != 64:
            continue
        command = parse(reapi.Command(), blobs[action.command_digest.hash].read_bytes())
        if command is None or not command.arguments:
            continue
        found.append(
            {
                "arguments": list(command.arguments),
                "env": {v.name: v.value for v in command.environment_variables},
                "output_files": list(command.output_files),
                "output_directories": list(command.output_directories),
                "working_directory": command.working_directory,
            }
        )
    return found


if __name__ == "__main__":
    json.dump(commands(Path(sys.argv[1])), sys.stdout, indent=1, sort_keys=True)
