"""`pants publish` for ml_pipeline: push the image, train it as a job, report with links.

One PublishPackages per push to a registry of `[mlbuild].registries` (`python -m
mlbuild.registry push`, see registries.py), then the job's: `python -m mlbuild.publish`
(the job backend's own push, the job, the report). All run from the mlbuild tool PEX as
InteractiveProcesses so progress streams to the terminal; those start from an empty
environment, so the variables boto3 and the registry client read are forwarded by name.
`--publish-output FILE` lists, per target, every reference pushed (by digest and by tag)
and the report's path (the job's name and links are in the report: they exist only once
the job is submitted).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Tuple

from pants.backend.python.subsystems.setup import PythonSetup
from pants.backend.python.target_types import PythonResolveField
from pants.backend.python.util_rules.pex import PexProcess
from pants.backend.python.util_rules.pex_environment import PexEnvironment
from pants.base.build_root import BuildRoot
from pants.core.goals.package import BuiltPackage
from pants.core.goals.publish import (
    PublishFieldSet,
    PublishOutputData,
    PublishPackages,
    PublishProcesses,
    PublishRequest,
)
from pants.core.util_rules.distdir import DistDir
from pants.engine.addresses import Address
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import Digest, DigestSubset, PathGlobs
from pants.engine.process import InteractiveProcess, Process
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import AllTargets, WrappedTarget, WrappedTargetRequest

from mlbuild_pants.names import (
    DIST_PUBLISH_SUBDIR,
    ECR_REGISTRY_ENV,
    FORWARDED_ENV_VARS,
    INSECURE_REGISTRIES_ENV,
    LOCAL_PUBLISH_DIR,
    UNPACK_KEEP_SPECIAL_MODES_ENV,
    UNPACK_MAX_BYTES_ENV,
    UNPACK_MAX_ENTRIES_ENV,
    UNPACK_MAX_FILE_BYTES_ENV,
)
from mlbuild_pants.package import (
    MLPipelineFieldSet,
    MLPipelineImageArtifact,
    SourceRevision,
    SourceRevisionRequest,
)
from mlbuild_pants.registries import (
    RegistryConfigError,
    mount_sources,
    parse_registries,
    placeholder_values,
    plan_pushes,
)
from mlbuild_pants.run import lineage_environment
from mlbuild_pants.subsystem import MLBuildSubsystem
from mlbuild_pants.target_types import (
    MLPipelineConfigField,
    MLPipelineImageTagsField,
    MLPipelineModuleField,
    MLPipelineRegistriesField,
    MLPipelineRepositoryField,
    MLPipelineSkipPushField,
)
from mlbuild_pants.tool import MLBuildToolPex, MLBuildToolPexRequest, tool_pex_environment

PUBLISH_SUBDIR = DIST_PUBLISH_SUBDIR
# NB: beyond AWS: PATH finds bubblewrap for the local backend; the caches hold its rootfs;
# the user's plain-HTTP registries and unpack limits (mlbuild.registry.plain_http,
# mlbuild.oci.layer_rules) apply under Pants as they do outside it.
EXTRA_ENV_VARS = (
    "PATH",
    "DOCKER_CONFIG",
    "XDG_CACHE_HOME",
    INSECURE_REGISTRIES_ENV,
    UNPACK_MAX_BYTES_ENV,
    UNPACK_MAX_ENTRIES_ENV,
    UNPACK_MAX_FILE_BYTES_ENV,
    UNPACK_KEEP_SPECIAL_MODES_ENV,
)


class PublishMLPipelineRequest(PublishRequest):
    pass


@dataclass(frozen=True)
class MLPipelinePublishFieldSet(PublishFieldSet):
    publish_request_type = PublishMLPipelineRequest
    required_fields = (MLPipelineModuleField, MLPipelineConfigField)

    pipeline: MLPipelineModuleField
    config: MLPipelineConfigField
    registries: MLPipelineRegistriesField
    repository: MLPipelineRepositoryField
    image_tags: MLPipelineImageTagsField
    skip_push: MLPipelineSkipPushField

    def get_output_data(self) -> PublishOutputData:
        return PublishOutputData({"publisher": "mlbuild", **super().get_output_data()})


def image_artifact(
    packages: Tuple[BuiltPackage, ...], address: Address
) -> Tuple[BuiltPackage, MLPipelineImageArtifact]:
    found = [(p, a) for p in packages for a in p.artifacts if isinstance(a, MLPipelineImageArtifact)]
    if len(found) != 1:
        raise ValueError(
            f"`pants publish {address}`: expected one ml_pipeline image among the packages, found {len(found)}"
        )
    return found[0]


def report_dir(dist_dir: DistDir, address: Address) -> str:
    return os.path.join(str(dist_dir.relpath), PUBLISH_SUBDIR, address.spec_path.replace("/", "."), address.target_name)


def siblings(all_targets: AllTargets, own: Address, resolve: str, python_setup: PythonSetup) -> Tuple:
    """The other ml_pipeline targets of the same resolve that push (their images share layers)."""
    return tuple(
        t
        for t in all_targets
        if t.has_field(MLPipelineModuleField)
        and t.address != own
        and not t[MLPipelineSkipPushField].value
        and t[PythonResolveField].normalized_value(python_setup) == resolve
    )


@rule(desc="Preparing to publish an ml_pipeline")
async def publish_ml_pipeline(
    request: PublishMLPipelineRequest,
    mlbuild: MLBuildSubsystem,
    build_root: BuildRoot,
    dist_dir: DistDir,
    python_setup: PythonSetup,
) -> PublishProcesses:
    address = request.field_set.address
    wrapped = await Get(WrappedTarget, WrappedTargetRequest(address, description_of_origin="`pants publish`"))
    field_set = MLPipelineFieldSet.create(wrapped.target)
    # NB: the package goal built the PEX and the image already; publish takes them from it.
    (package, image) = image_artifact(request.packages, address)
    if request.field_set.skip_push.value:
        return PublishProcesses(
            [
                PublishPackages(
                    names=(f"{image.relpath}@{image.manifest_digest}",), description=f"(by `skip_push` on {address})"
                )
            ]
        )
    layout = await Get(Digest, DigestSubset(package.digest, PathGlobs([f"{image.relpath}/**"])))
    tool, revision, env, pex_env = await MultiGet(
        Get(MLBuildToolPex, MLBuildToolPexRequest()),
        Get(SourceRevision, SourceRevisionRequest()),
        Get(EnvironmentVars, EnvironmentVarsRequest((*FORWARDED_ENV_VARS, *EXTRA_ENV_VARS))),
        Get(PexEnvironment),
    )
    root = build_root.path
    reports = report_dir(dist_dir, address)
    ref = os.path.basename(image.relpath)[: -len(".oci")]
    process_env = {**env, **lineage_environment(root, str(dist_dir.relpath)), **tool_pex_environment(pex_env)}
    if mlbuild.ecr_registry:
        process_env[ECR_REGISTRY_ENV] = mlbuild.ecr_registry
    fields = request.field_set
    try:
        pushes = plan_pushes(
            registries=parse_registries(mlbuild.registries),
            chosen=fields.registries.value,
            repository_template=fields.repository.value or mlbuild.default_repository,
            tag_templates=fields.image_tags.value or (),
            values=placeholder_values(address.spec_path, address.target_name, revision.value, image.manifest_digest),
            field_owner=address.spec,
        )
    except RegistryConfigError as e:
        raise ValueError(f"`pants publish {address}`: {e}") from None
    all_targets = await Get(AllTargets)
    resolve = wrapped.target[PythonResolveField].normalized_value(python_setup)
    mounts = mount_sources(
        pushes[0].repository if pushes else "",
        [
            (
                t[MLPipelineRepositoryField].value or mlbuild.default_repository,
                placeholder_values(t.address.spec_path, t.address.target_name, revision.value, image.manifest_digest),
            )
            for t in siblings(all_targets, address, resolve, python_setup)
        ],
    )
    push_processes = await MultiGet(
        Get(
            Process,
            PexProcess(
                tool.pex,
                argv=[
                    "-m",
                    "mlbuild.registry",
                    "push",
                    "--layout",
                    image.relpath,
                    "--ref-name",
                    ref,
                    "--to",
                    push.destination,
                    *(arg for tag in push.tags for arg in ("--tag", tag)),
                    # NB: a sibling pipeline's repository may hold the big layers already (torch).
                    *(arg for repository in mounts for arg in ("--mount-from", repository)),
                ],
                input_digest=layout,
                extra_env=process_env,
                description=f"Pushing {address} to {push.destination}",
            ),
        )
        for push in pushes
    )
    argv = [
        "-m",
        "mlbuild.publish",
        "--layout",
        image.relpath,
        "--ref-name",
        ref,
        "--config",
        os.path.join(root, address.spec_path, field_set.config.value),
        "--address",
        address.spec,
        "--data-dir",
        os.path.join(root, address.spec_path, field_set.sample_data.value),
        "--pex-sha256",
        image.pex_sha256,
        "--image-digest",
        image.manifest_digest,
        "--git-sha",
        revision.value,
        "--report-dir",
        os.path.join(root, reports),
        "--local-root",
        os.path.join(root, LOCAL_PUBLISH_DIR),
    ]
    if mlbuild.publish_backend:
        argv += ["--backend", mlbuild.publish_backend]
    if mlbuild.local_registry:
        argv += ["--registry", mlbuild.local_registry]
    if mlbuild.wait:
        argv.append("--wait")
    if mlbuild.force:
        argv.append("--force")
    process = await Get(
        Process,
        PexProcess(
            tool.pex,
            argv=argv,
            input_digest=layout,
            extra_env=process_env,
            description=f"Publishing {address}",
        ),
    )
    return PublishProcesses(
        [
            *(
                PublishPackages(
                    names=push.references(image.manifest_digest),
                    process=InteractiveProcess.from_process(push_process),
                    description=f"to {push.registry.alias and '@' + push.registry.alias or push.registry.address}",
                    data=PublishOutputData(
                        {
                            "registry": push.registry.address,
                            "repository": push.repository,
                            "image_digest": image.manifest_digest,
                        }
                    ),
                )
                for push, push_process in zip(pushes, push_processes)
            ),
            PublishPackages(
                names=(f"{image.relpath}@{image.manifest_digest}",),
                process=InteractiveProcess.from_process(process),
                description=f"{address} (report: {reports}/report.md)",
                data=PublishOutputData(
                    {
                        "image_digest": image.manifest_digest,
                        "pex_sha256": image.pex_sha256,
                        "report_json": f"{reports}/report.json",
                        "report_markdown": f"{reports}/report.md",
                    }
                ),
            ),
        ]
    )


def rules():
    return [*collect_rules(), *MLPipelinePublishFieldSet.rules()]
