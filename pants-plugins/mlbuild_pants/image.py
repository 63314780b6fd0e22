"""The pipeline's OCI image: base layers, dependency layers, and the code on top.

The image holds the pipeline's PEX in the packed layout, split into layers by how often
each part changes:

    1. the base image's layers, untouched (pinned by digest);
    2. third-party dependencies: one layer per large wheel (> `layer_split_mb`), one for the
       rest plus PEX's bootstrap code;
    3. the pipeline's code, the mlbuild runtime, its config and PEX-INFO, and `train`.

A code-only change therefore rebuilds and re-pushes only the small top layer. `train` on
PATH runs the PEX with no arguments, which is the runtime's `train` command: the same
function `pants run` reaches. Nothing goes under /opt/ml (SageMaker mounts it); the
build fails if the SageMaker contract does not hold.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Dict, List, Tuple

from pants.backend.python.util_rules.pex import Pex, VenvPexProcess
from pants.backend.python.util_rules.pex_from_targets import PexFromTargetsRequest
from pants.engine.fs import (
    CreateDigest,
    Digest,
    DigestContents,
    DigestEntries,
    DigestSubset,
    FileContent,
    FileEntry,
    MergeDigests,
    PathGlobs,
)
from pants.engine.process import ProcessResult
from pants.engine.rules import Get, collect_rules, rule
from pants.util.frozendict import FrozenDict

from mlbuild_pants.base_image import CACHE_DIR, CACHE_NAME, BaseImage, read_summary
from mlbuild_pants.tool import MLBuildTool

PEX_DIR = "/opt/mlbuild/pipeline"
TRAIN_PATH = "/usr/local/bin/train"
PACKED_DIR = "pipeline"
IMAGE_ENV = {
    # NB: the PEX unpacks its wheels under PEX_ROOT on first start; /tmp is writable on
    # SageMaker and a tmpfs in mlbuild's local runner, where the root is read-only.
    "PEX_ROOT": "/tmp/.pex",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
}

TRAIN_LAUNCHER = '''#!{python} -I
"""SageMaker starts the container as `train`: run the pipeline's PEX with the same arguments.

With none, the mlbuild runtime trains from /opt/ml: the code path `pants run` takes.
"""
import os
import sys

os.execv("{python}", ["{python}", "{pex_dir}", *sys.argv[1:]])
'''


@dataclass(frozen=True)
class PipelineImageRequest:
    packed_pex: PexFromTargetsRequest
    base: BaseImage
    out_dir: str
    name: str
    layer_split_bytes: int
    labels: FrozenDict[str, str]


@dataclass(frozen=True)
class PipelineImage:
    digest: Digest
    layout_path: str
    archive_path: str
    summary_path: str
    manifest_digest: str


def layer_groups(entries: List[Tuple[str, int]], split_bytes: int) -> List[Tuple[str, List[str]]]:
    """Group a packed PEX's top-level entries into named layers, bottom to top.

    `entries` are (path relative to the packed PEX, size) for every file.
    """
    wheel_sizes: Dict[str, int] = {}
    bootstrap, top = set(), set()
    for path, size in entries:
        parts = path.split("/")
        if parts[0] == ".deps" and len(parts) > 1:
            wheel_sizes[parts[1]] = wheel_sizes.get(parts[1], 0) + size
        elif parts[0] == ".bootstrap":
            bootstrap.add(".bootstrap")
        else:
            top.add(parts[0])
    large = sorted(w for w, size in wheel_sizes.items() if size > split_bytes)
    small = sorted(w for w in wheel_sizes if w not in large)
    groups = [(f"dep-{w.split('-')[0].lower()}", [f".deps/{w}"]) for w in large]
    groups.append(("deps", [*sorted(bootstrap), *(f".deps/{w}" for w in small)]))
    groups.append(("app", sorted(top)))
    return [(name, paths) for name, paths in groups if paths]


def image_spec(request: PipelineImageRequest, groups: List[Tuple[str, List[str]]], is_dir: Dict[str, bool]) -> dict:
    layers = []
    for name, paths in groups:
        layer: dict = {"name": name, "files": [], "dirs": []}
        for path in paths:
            src, dest = f"{PACKED_DIR}/{path}", f"{PEX_DIR}/{path}"
            if is_dir[path]:
                layer["dirs"].append({"src": src, "dest": dest})
            else:
                layer["files"].append({"src": src, "dest": dest})
        if name == "app":
            layer["files"].append({"src": "train", "dest": TRAIN_PATH, "mode": "0755"})
        layers.append(layer)
    return {
        "ref": request.name,
        "base": {"layout": request.base.layout_path, "ref": request.base.ref},
        "layers": layers,
        "config": {"cmd": ["train"], "env": IMAGE_ENV, "workdir": "/", "labels": dict(request.labels)},
        "annotations": dict(request.labels),
    }


@rule(desc="Building an ml_pipeline image")
async def build_pipeline_image(request: PipelineImageRequest, tool: MLBuildTool) -> PipelineImage:
    packed = await Get(Pex, PexFromTargetsRequest, request.packed_pex)
    entries = await Get(DigestEntries, Digest, packed.digest)
    prefix = f"{PACKED_DIR}/"
    files = [
        (e.path[len(prefix) :], e.file_digest.serialized_bytes_length)
        for e in entries
        if isinstance(e, FileEntry) and e.path.startswith(prefix)
    ]
    groups = layer_groups(files, request.layer_split_bytes)
    file_paths = {path for path, _ in files}
    is_dir = {p: p not in file_paths for _, paths in groups for p in paths}
    spec = image_spec(request, groups, is_dir)
    launcher = TRAIN_LAUNCHER.format(python=request.base.python, pex_dir=PEX_DIR)
    inputs = await Get(
        Digest,
        CreateDigest(
            [
                FileContent("spec.json", json.dumps(spec, indent=2, sort_keys=True).encode()),
                FileContent("train", launcher.encode(), is_executable=True),
            ]
        ),
    )
    input_digest = await Get(Digest, MergeDigests([inputs, packed.digest, request.base.digest]))
    result = await Get(
        ProcessResult,
        VenvPexProcess(
            tool.pex,
            argv=(
                "-m", "mlbuild.oci", "build", "--spec", "spec.json", "--out", request.out_dir,
                "--name", request.name, "--cache", f"{CACHE_DIR}/oci", "--check-sagemaker",
            ),
            input_digest=input_digest,
            output_directories=(request.out_dir,),
            append_only_caches=FrozenDict({CACHE_NAME: CACHE_DIR}),
            description=f"Assembling OCI image {request.out_dir}/{request.name}.oci",
        ),
    )
    summary_path = f"{request.out_dir}/{request.name}.image.json"
    summary = read_summary(await Get(DigestContents, DigestSubset(result.output_digest, PathGlobs([summary_path]))))
    return PipelineImage(
        digest=result.output_digest,
        layout_path=f"{request.out_dir}/{summary['layout']}",
        archive_path=f"{request.out_dir}/{summary['archive']}",
        summary_path=summary_path,
        manifest_digest=summary["manifest_digest"],
    )


def sha256_of(entries: DigestEntries, path: str) -> str:
    (entry,) = [e for e in entries if isinstance(e, FileEntry) and e.path == path]
    return entry.file_digest.fingerprint


def rules():
    return collect_rules()
