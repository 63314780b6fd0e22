"""The pipeline's OCI image: base layers, installed dependencies, and the code on top.

Layers, bottom to top, split by how often each part changes:

    1. the base image's layers, untouched (pinned by digest);
    2. the locked third-party dependencies, *installed* (unpacked, one folder per wheel
       under /opt/mlbuild/deps): one layer per large wheel (> `layer_split_mb`), split by
       path past `layer_max_mb`, and one for the rest;
    3. the pipeline's code and config, the mlbuild runtime, and `train`.

Layers 1–2 form a dependency image built by its own Process from the requirements alone,
so Pants caches it: a code-only change builds and pushes only the small top layer. And
since the wheels are installed and their modules compiled at build time, a container
reaches the pipeline's first stage in interpreter + import time; nothing is unpacked or
compiled when SageMaker starts it.

`train` on PATH puts the dependencies and the code on `sys.path` in the order `pants run`
does and calls the runtime's `main`: the same function `pants run` reaches, with the same
arguments and environment. Nothing goes under /opt/ml (SageMaker mounts it); the build
fails if the SageMaker contract does not hold.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import List, Tuple

from pants.backend.python.util_rules.pex import Pex, VenvPexProcess
from pants.backend.python.util_rules.pex_from_targets import PexFromTargetsRequest
from pants.engine.fs import (
    AddPrefix,
    CreateDigest,
    Digest,
    DigestContents,
    DigestEntries,
    DigestSubset,
    FileContent,
    FileEntry,
    MergeDigests,
    PathGlobs,
    RemovePrefix,
)
from pants.engine.process import ProcessResult
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.frozendict import FrozenDict

from mlbuild_pants.base_image import CACHE_DIR, CACHE_NAME, BaseImage, bytecode_field, read_summary
from mlbuild_pants.names import APP_LAYER
from mlbuild_pants.tool import MLBuildTool

DEPS_DIR = "/opt/mlbuild/deps"
APP_DIR = "/opt/mlbuild/app"
TRAIN_PATH = "/usr/local/bin/train"
SERVE_PATH = "/usr/local/bin/serve"
REQUIREMENTS_DIR = "requirements"  # the packed requirements PEX, in the dependency image's sandbox
DEPS_IMAGE_DIR = "deps-image"
DEPS_IMAGE_NAME = "deps"
APP_SOURCES = "app"
IMAGE_ENV = {
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
}

# NB: `-I` (isolated): no PYTHONPATH, user site or script folder from the environment can
# shadow what the image pins; it also ignores PYTHONDONTWRITEBYTECODE/PYTHONUNBUFFERED, so
# the launcher applies both itself. Dependencies are site dirs (their .pth files count),
# then the code, the order a `pants run` venv gives.
LAUNCHER = '''#!{python} -I
"""SageMaker starts the container as `{program}`: {what}.

{detail}
"""
import os
import site
import sys

sys.dont_write_bytecode = True
for stream in (sys.stdout, sys.stderr):
    stream.reconfigure(line_buffering=True)
for wheel in sorted(os.listdir("{deps_dir}")):
    site.addsitedir(os.path.join("{deps_dir}", wheel))
sys.path.append("{app_dir}")

from {module} import main

sys.exit(main({argv}))
'''
# program -> (module, argv, what it does, detail)
PROGRAMS = {
    "train": (
        "mlbuild.runtime.cli",
        "",
        "run the mlbuild runtime on the pipeline",
        "With no arguments the runtime trains from /opt/ml: the code path `pants run` takes.",
    ),
    "serve": (
        "mlbuild.serving.cli",
        "sys.argv[1:]",
        "serve the pipeline's model from /opt/ml/model",
        "With no arguments: SageMaker's hosting contract on port 8080 ($SAGEMAKER_BIND_TO_PORT).",
    ),
}


def launcher(program: str, python: str) -> str:
    module, argv, what, detail = PROGRAMS[program]
    return LAUNCHER.format(
        program=program,
        what=what,
        detail=detail,
        python=python,
        deps_dir=DEPS_DIR,
        app_dir=APP_DIR,
        module=module,
        argv=argv,
    )


@dataclass(frozen=True)
class PipelineImageRequest:
    requirements_pex: PexFromTargetsRequest  # packed layout, requirements only
    app_sources: Digest  # the code and config, stripped of source roots
    base: BaseImage
    out_dir: str
    name: str
    layer_split_bytes: int
    layer_max_bytes: int
    env: FrozenDict[str, str]
    labels: FrozenDict[str, str]


@dataclass(frozen=True)
class PipelineImage:
    digest: Digest  # the summary and the layout minus `shared`: the code's blobs, config, manifest, index
    shared: Digest  # the base and dependency layers' blobs, at their paths in the layout
    layout_path: str
    summary_path: str
    manifest_digest: str


@dataclass(frozen=True)
class DependencyImageRequest:
    requirements_pex: PexFromTargetsRequest
    base: BaseImage
    layer_split_bytes: int
    layer_max_bytes: int


@dataclass(frozen=True)
class DependencyImage:
    """The base plus the installed dependencies: what every code change builds on."""

    digest: Digest  # DEPS_IMAGE_DIR/deps.oci (and its summary and filesystem index)
    layout_path: str
    ref: str
    fs_index_path: str  # its merged filesystem (`mlbuild.oci build --write-fs-index`)
    # NB: the two halves of `digest`: what an image built on it reads (index, manifests,
    # configs, the filesystem index: kilobytes), and the layer blobs it only references.
    small: Digest
    layer_blobs: Digest  # under `layout_path`/blobs/sha256/


def dependency_image_request(request: PipelineImageRequest) -> DependencyImageRequest:
    return DependencyImageRequest(
        request.requirements_pex, request.base, request.layer_split_bytes, request.layer_max_bytes
    )


SPEC_FILE = "spec.json"


def spec_file(spec: dict) -> FileContent:
    return FileContent(SPEC_FILE, json.dumps(spec, indent=2, sort_keys=True).encode())


def oci_build(
    tool: MLBuildTool, inputs: Digest, out_dir: str, name: str, flags: Tuple[str, ...], description: str
) -> VenvPexProcess:
    """`python -m mlbuild.oci build` of the spec in `inputs`, into `out_dir/<name>.oci`, layer cache kept."""
    return VenvPexProcess(
        tool.pex,
        argv=(
            "-m",
            "mlbuild.oci",
            "build",
            "--spec",
            SPEC_FILE,
            "--output",
            out_dir,
            "--name",
            name,
            "--cache-dir",
            f"{CACHE_DIR}/oci",
            *flags,
        ),
        input_digest=inputs,
        output_directories=(out_dir,),
        append_only_caches=FrozenDict({CACHE_NAME: CACHE_DIR}),
        description=description,
    )


def layer_groups(wheels: List[Tuple[str, int]], split_bytes: int) -> List[Tuple[str, List[str]]]:
    """Group the packed PEX's wheels (name, size) into named layers, bottom to top."""
    large = sorted(w for w, size in wheels if size > split_bytes)
    small = sorted(w for w, _ in wheels if w not in large)
    groups = [(f"dep-{w.split('-')[0].lower()}", [w]) for w in large]
    groups.append(("deps", small))
    return [(name, members) for name, members in groups if members]


def dependency_image_spec(request: DependencyImageRequest, groups: List[Tuple[str, List[str]]]) -> dict:
    # NB: the wheels' modules are compiled at build time (mlbuild.oci.bytecode), so a new
    # container imports numpy/scipy/scikit-learn without compiling them first.
    extra = bytecode_field(request.base.python)
    layers = [
        {
            "name": name,
            "zips": [{"src": f"{REQUIREMENTS_DIR}/.deps/{w}", "dest": f"{DEPS_DIR}/{w}", **extra} for w in wheels],
            "max_bytes": request.layer_max_bytes,
        }
        for name, wheels in groups
    ]
    return {
        "ref": DEPS_IMAGE_NAME,
        "base": {"layout": request.base.layout_path, "ref": request.base.ref},
        "layers": layers,
    }


def app_image_spec(request: PipelineImageRequest, deps: DependencyImage) -> dict:
    return {
        "ref": request.name,
        # NB: thin: the dependency image's layer blobs are never read or copied after a code
        # edit; the new layout references them and the rule places them beside it.
        "base": {"layout": deps.layout_path, "ref": deps.ref, "thin": True},
        "layers": [
            {
                "name": APP_LAYER,
                # NB: compiled too (about 30 ms for the runtime and a pipeline), so `train`
                # and every `serve` worker import the code without compiling it first.
                "dirs": [{"src": APP_SOURCES, "dest": APP_DIR, **bytecode_field(request.base.python)}],
                "files": [
                    {"src": "train", "dest": TRAIN_PATH, "mode": "0755"},
                    {"src": "serve", "dest": SERVE_PATH, "mode": "0755"},
                ],
            }
        ],
        "config": {
            "cmd": ["train"],
            "env": {**IMAGE_ENV, **dict(request.env)},
            "workdir": "/",
            "labels": dict(request.labels),
        },
        "annotations": dict(request.labels),
    }


@rule(desc="Installing an ml_pipeline's dependencies into an image")
async def build_dependency_image(request: DependencyImageRequest, tool: MLBuildTool) -> DependencyImage:
    packed = await Get(Pex, PexFromTargetsRequest, request.requirements_pex)
    entries = await Get(DigestEntries, Digest, packed.digest)
    prefix = f"{REQUIREMENTS_DIR}/.deps/"
    wheels = [
        (e.path[len(prefix) :], e.file_digest.serialized_bytes_length)
        for e in entries
        if isinstance(e, FileEntry) and e.path.startswith(prefix) and "/" not in e.path[len(prefix) :]
    ]
    spec = dependency_image_spec(request, layer_groups(wheels, request.layer_split_bytes))
    spec_digest = await Get(Digest, CreateDigest([spec_file(spec)]))
    inputs = await Get(Digest, MergeDigests([spec_digest, packed.digest, request.base.digest]))
    result = await Get(
        ProcessResult,
        VenvPexProcess,
        oci_build(
            # NB: the merged filesystem's index lets the app image's contract check replay only
            # its own small layer instead of reading every dependency layer again.
            tool,
            inputs,
            DEPS_IMAGE_DIR,
            DEPS_IMAGE_NAME,
            ("--no-archive", "--write-fs-index"),
            f"Installing {len(wheels)} locked wheels into the dependency layers",
        ),
    )
    layout_path = f"{DEPS_IMAGE_DIR}/{DEPS_IMAGE_NAME}.oci"
    summary = read_summary(
        await Get(
            DigestContents,
            DigestSubset(result.output_digest, PathGlobs([f"{DEPS_IMAGE_DIR}/{DEPS_IMAGE_NAME}.image.json"])),
        )
    )
    layer_paths = layer_blob_paths(layout_path, summary)
    small, layer_blobs = await MultiGet(
        Get(Digest, DigestSubset(result.output_digest, PathGlobs(["**", *(f"!{p}" for p in layer_paths)]))),
        Get(Digest, DigestSubset(result.output_digest, PathGlobs(layer_paths))),
    )
    return DependencyImage(
        result.output_digest,
        layout_path,
        DEPS_IMAGE_NAME,
        f"{DEPS_IMAGE_DIR}/{DEPS_IMAGE_NAME}.fs.json",
        small,
        layer_blobs,
    )


def layer_blob_paths(layout_path: str, summary: dict) -> List[str]:
    """Where an image's layer blobs are in its layout, from its summary (`image.json`)."""
    return sorted({f"{layout_path}/blobs/sha256/{layer['digest'].split(':', 1)[1]}" for layer in summary["layers"]})


@rule(desc="Building an ml_pipeline image")
async def build_pipeline_image(request: PipelineImageRequest, tool: MLBuildTool) -> PipelineImage:
    deps = await Get(DependencyImage, DependencyImageRequest, dependency_image_request(request))
    spec = app_image_spec(request, deps)
    files, app = await MultiGet(
        Get(
            Digest,
            CreateDigest(
                [
                    spec_file(spec),
                    *(
                        FileContent(program, launcher(program, request.base.python).encode(), is_executable=True)
                        for program in PROGRAMS
                    ),
                ]
            ),
        ),
        Get(Digest, AddPrefix(request.app_sources, APP_SOURCES)),
    )
    # NB: the dependency image's small files are all this Process reads of it (no layer blob):
    # a code edit's build costs the same whatever the dependencies weigh.
    input_digest = await Get(Digest, MergeDigests([files, app, deps.small]))
    result = await Get(
        ProcessResult,
        VenvPexProcess,
        oci_build(
            tool,
            input_digest,
            request.out_dir,
            request.name,
            ("--no-archive", "--check-sagemaker", "--check-program", "serve", "--base-fs-index", deps.fs_index_path),
            f"Assembling OCI image {request.out_dir}/{request.name}.oci",
        ),
    )
    summary_path = f"{request.out_dir}/{request.name}.image.json"
    summary = read_summary(await Get(DigestContents, DigestSubset(result.output_digest, PathGlobs([summary_path]))))
    layout_path = f"{request.out_dir}/{summary['layout']}"
    shared = await Get(
        Digest, AddPrefix(await Get(Digest, RemovePrefix(deps.layer_blobs, deps.layout_path)), layout_path)
    )
    return PipelineImage(
        digest=result.output_digest,
        shared=shared,
        layout_path=layout_path,
        summary_path=summary_path,
        manifest_digest=summary["manifest_digest"],
    )


def sha256_of(entries: DigestEntries, path: str) -> str:
    (entry,) = [e for e in entries if isinstance(e, FileEntry) and e.path == path]
    return entry.file_digest.fingerprint


def rules():
    return collect_rules()
