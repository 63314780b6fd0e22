"""Base images for ml_pipeline images: built (or later pulled) and pinned by digest."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Dict, Optional

from pants.backend.python.util_rules.pex import VenvPexProcess
from pants.core.goals.package import BuiltPackage, BuiltPackageArtifact, PackageFieldSet
from pants.engine.addresses import Address
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import Digest, DigestContents, DigestSubset, PathGlobs
from pants.engine.process import ProcessCacheScope, ProcessResult
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import (
    HydratedSources,
    HydrateSourcesRequest,
    WrappedTarget,
    WrappedTargetRequest,
)
from pants.engine.unions import UnionRule
from pants.util.frozendict import FrozenDict

from mlbuild_pants.names import FORWARDED_ENV_VARS, OCI_REF_NAME_ANNOTATION
from mlbuild_pants.target_types import (
    MLBaseImageDebianLockField,
    MLBaseImagePythonField,
    MLBaseImageReferenceField,
)
from mlbuild_pants.tool import MLBuildTool

# NB: downloaded .debs and compressed layers survive between builds in this named cache.
CACHE_NAME = "mlbuild"
CACHE_DIR = ".cache/mlbuild"
REF_NAME = OCI_REF_NAME_ANNOTATION
# NB: a pull reads docker config.json credentials, or an ECR token through boto3.
REGISTRY_ENV_VARS = ("DOCKER_CONFIG", "HOME", *FORWARDED_ENV_VARS)


@dataclass(frozen=True)
class MLBaseImageFieldSet(PackageFieldSet):
    required_fields = (MLBaseImagePythonField,)

    debian_lock: MLBaseImageDebianLockField
    image: MLBaseImageReferenceField
    python: MLBaseImagePythonField


@dataclass(frozen=True)
class BaseImageRequest:
    address: Address
    description_of_origin: str


@dataclass(frozen=True)
class BaseImage:
    """A built base: an OCI layout at `layout_path` inside `digest`, pinned by `manifest_digest`."""

    address: Address
    digest: Digest
    layout_path: str
    ref: str
    manifest_digest: str
    python: str


def bytecode_tag(python: str) -> Optional[str]:
    """'/usr/bin/python3.11' -> 'cpython-311': the cache tag of the base's interpreter, if its name says."""
    found = re.fullmatch(r".*/python(\d)\.(\d+)", python)
    return f"cpython-{found.group(1)}{found.group(2)}" if found else None


def bytecode_field(python: str) -> Dict[str, str]:
    """A spec item's `bytecode` for the base's interpreter: its `.py` files are compiled at build time."""
    tag = bytecode_tag(python)
    return {"bytecode": tag} if tag else {}


def read_summary(contents: DigestContents) -> dict:
    (summary,) = contents
    return json.loads(summary.content)


async def _pull_base_image(field_set: MLBaseImageFieldSet, tool: MLBuildTool, name: str, out_dir: str) -> BaseImage:
    reference = field_set.image.value
    assert reference is not None
    env = await Get(EnvironmentVars, EnvironmentVarsRequest(REGISTRY_ENV_VARS))
    layout = f"{out_dir}/{name}.oci"
    # NB: the image is pinned by digest, but the Process carries the caller's registry and AWS
    # credentials in its environment, which is part of the cache key and of the Command a
    # remote cache stores: so it is never persisted (local or remote), only memoized while
    # pantsd lives. The pull's own blob cache (digest-keyed, verified) makes a re-pull cheap,
    # and every step after it is keyed by the layout's digest, so those still hit any cache.
    result = await Get(
        ProcessResult,
        VenvPexProcess(
            tool.pex,
            argv=(
                "-m",
                "mlbuild.registry",
                "pull",
                reference,
                "--layout",
                layout,
                "--cache-dir",
                f"{CACHE_DIR}/pull",
                "--ref-name",
                name,
            ),
            extra_env=dict(env),
            output_directories=(layout,),
            append_only_caches=FrozenDict({CACHE_NAME: CACHE_DIR}),
            cache_scope=ProcessCacheScope.PER_RESTART_SUCCESSFUL,
            description=f"Pulling base image {reference}",
        ),
    )
    index = read_summary(
        await Get(DigestContents, DigestSubset(result.output_digest, PathGlobs([f"{layout}/index.json"])))
    )
    (manifest,) = [m for m in index["manifests"] if m.get("annotations", {}).get(REF_NAME) == name]
    return BaseImage(
        address=field_set.address,
        digest=result.output_digest,
        layout_path=layout,
        ref=name,
        manifest_digest=manifest["digest"],
        python=field_set.python.value,
    )


@rule(desc="Building an ml_base_image")
async def build_base_image(request: BaseImageRequest, tool: MLBuildTool) -> BaseImage:
    wrapped = await Get(
        WrappedTarget, WrappedTargetRequest(request.address, description_of_origin=request.description_of_origin)
    )
    target = wrapped.target
    if not MLBaseImageFieldSet.is_applicable(target):
        raise ValueError(
            f"{request.description_of_origin} names {request.address}, which is a `{target.alias}`, not an "
            "`ml_base_image`. Fix: point it at an ml_base_image target (the default is //docker/debian-python3.11:base)."
        )
    field_set = MLBaseImageFieldSet.create(target)
    name = request.address.target_name
    out_dir = request.address.spec_path.replace("/", ".") or "root"
    if field_set.image.value is not None:
        return await _pull_base_image(field_set, tool, name, out_dir)
    lock = await Get(HydratedSources, HydrateSourcesRequest(field_set.debian_lock))
    (lock_path,) = lock.snapshot.files
    # NB: the standard library is compiled at build time: Debian compiles it in a post-install
    # script, which an offline rootfs build never runs, so every container start would.
    bytecode = tuple(f"--{k}={v}" for k, v in bytecode_field(field_set.python.value).items())
    result = await Get(
        ProcessResult,
        VenvPexProcess(
            tool.pex,
            argv=(
                "-m",
                "mlbuild.base_image",
                "--lock",
                lock_path,
                "--output",
                out_dir,
                "--name",
                name,
                "--cache-dir",
                CACHE_DIR,
                *bytecode,
            ),
            input_digest=lock.snapshot.digest,
            output_directories=(out_dir,),
            append_only_caches=FrozenDict({CACHE_NAME: CACHE_DIR}),
            description=f"Assembling base image {request.address} from {os.path.basename(lock_path)}",
        ),
    )
    summary = read_summary(
        await Get(DigestContents, DigestSubset(result.output_digest, PathGlobs([f"{out_dir}/{name}.image.json"])))
    )
    return BaseImage(
        address=request.address,
        digest=result.output_digest,
        layout_path=f"{out_dir}/{summary['layout']}",
        ref=summary["ref"],
        manifest_digest=summary["manifest_digest"],
        python=field_set.python.value,
    )


@rule(desc="Packaging an ml_base_image")
async def package_base_image(field_set: MLBaseImageFieldSet) -> BuiltPackage:
    base = await Get(BaseImage, BaseImageRequest(field_set.address, "`pants package`"))
    return BuiltPackage(
        base.digest,
        (BuiltPackageArtifact(base.layout_path, extra_log_lines=(f"manifest digest: {base.manifest_digest}",)),),
    )


def rules():
    return [*collect_rules(), UnionRule(PackageFieldSet, MLBaseImageFieldSet)]
