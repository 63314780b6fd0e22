"""`pants package` for ml_pipeline: the pipeline's PEX and its SageMaker-ready OCI image."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Tuple

from pants.backend.python.subsystems.setup import PythonSetup
from pants.backend.python.target_types import (
    EntryPoint,
    InterpreterConstraintsField,
    PexLayout,
    PythonResolveField,
    ResolvedPexEntryPoint,
    ResolvePexEntryPointRequest,
)
from pants.backend.python.util_rules.pex import Pex, VenvPexProcess
from pants.backend.python.util_rules.pex_from_targets import PexFromTargetsRequest
from pants.backend.python.util_rules.python_sources import PythonSourceFilesRequest, StrippedPythonSourceFiles
from pants.core.goals.package import (
    BuiltPackage,
    BuiltPackageArtifact,
    OutputPathField,
    PackageFieldSet,
)
from pants.core.goals.run import RunFieldSet, RunInSandboxBehavior
from pants.core.util_rules.source_files import SourceFiles
from pants.core.util_rules.stripped_source_files import StrippedSourceFiles
from pants.engine.addresses import Address, AddressInput
from pants.engine.fs import (
    EMPTY_DIGEST,
    AddPrefix,
    CreateDigest,
    Digest,
    DigestContents,
    DigestEntries,
    DigestSubset,
    FileEntry,
    MergeDigests,
    PathGlobs,
    RemovePrefix,
)
from pants.engine.process import FallibleProcessResult, ProcessResult
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import HydratedSources, HydrateSourcesRequest, TransitiveTargets, TransitiveTargetsRequest
from pants.engine.unions import UnionRule
from pants.util.frozendict import FrozenDict
from pants.vcs.git import GitWorktreeRequest, MaybeGitWorktree
from pants.version import VERSION as PANTS_VERSION

from mlbuild_pants.base_image import BaseImage, BaseImageRequest
from mlbuild_pants.image import (
    REQUIREMENTS_DIR,
    DependencyImage,
    DependencyImageRequest,
    PipelineImage,
    PipelineImageRequest,
    dependency_image_request,
    sha256_of,
)
from mlbuild_pants.names import (
    DIST_LINEAGE_SUBDIR,
    LOCKFILE_PATH_LABEL,
    LOCKFILE_SHA256_LABEL,
    OCI_BASE_DIGEST_LABEL,
    OCI_BASE_NAME_LABEL,
    OCI_REVISION_LABEL,
    OCI_TITLE_LABEL,
    PIPELINE_ADDRESS_LABEL,
)
from mlbuild_pants.names import (
    PIPELINE_ADDRESS_ENV as ADDRESS_ENV_VAR,
)
from mlbuild_pants.names import (
    PIPELINE_CONFIG_ENV as CONFIG_ENV_VAR,
)
from mlbuild_pants.names import (
    PIPELINE_MODULE_ENV as MODULE_ENV_VAR,
)
from mlbuild_pants.shared_blobs import SharedBlobs, SharedBlobsRequest
from mlbuild_pants.target_types import (
    MLPipelineBaseImageField,
    MLPipelineConfigField,
    MLPipelineLargeWheelField,
    MLPipelineLayerMaxField,
    MLPipelineModuleField,
    MLPipelineOciArchiveField,
    MLPipelinePexLayoutField,
    MLPipelineSampleDataField,
    base_image_address_input,
)
from mlbuild_pants.tool import MLBuildTool, MLBuildToolRequest

# NB: the runtime's command line is the PEX's entry point; it finds the pipeline through
# these variables, which pex bakes into PEX-INFO (`--inject-env`), so the container's
# `train` needs no arguments. Names match mlbuild.runtime.pipeline (which Pants can't import).
RUNTIME_ENTRY_POINT = EntryPoint("mlbuild.runtime.cli", "main")
# NB: every pipeline ships `serve`, the image's hosting program (mlbuild.serving: standard library only).
SERVING_ENTRY_POINT = EntryPoint("mlbuild.serving.cli", "main")
# NB: lineage records land in dist/mlbuild/lineage/, the store `inspect` reads by default.
LINEAGE_OUT = DIST_LINEAGE_SUBDIR


@dataclass(frozen=True)
class MLPipelineFieldSet(PackageFieldSet, RunFieldSet):
    # NB: a local run reads sample data from the repo and writes under dist/, so it can't be
    # sandboxed.
    run_in_sandbox_behavior = RunInSandboxBehavior.NOT_SUPPORTED
    required_fields = (MLPipelineModuleField, MLPipelineConfigField)

    pipeline: MLPipelineModuleField
    config: MLPipelineConfigField
    sample_data: MLPipelineSampleDataField
    base_image: MLPipelineBaseImageField
    layer_split_mb: MLPipelineLargeWheelField
    layer_max_mb: MLPipelineLayerMaxField
    pex_layout: MLPipelinePexLayoutField
    oci_archive: MLPipelineOciArchiveField
    resolve: PythonResolveField
    interpreter_constraints: InterpreterConstraintsField
    output_path: OutputPathField

    @property
    def pex_path(self) -> str:
        return self.output_path.value_or_default(file_ending="pex")


@dataclass(frozen=True)
class MLPipelinePexRequest:
    field_set: MLPipelineFieldSet


@dataclass(frozen=True)
class MLPipelinePex:
    """The PexFromTargetsRequest for a pipeline (run needs its interpreter constraints)."""

    request: PexFromTargetsRequest


@rule(desc="Preparing an ml_pipeline PEX")
async def ml_pipeline_pex_request(request: MLPipelinePexRequest) -> MLPipelinePex:
    field_set = request.field_set
    entry_point, config_sources = await MultiGet(
        Get(ResolvedPexEntryPoint, ResolvePexEntryPointRequest(field_set.pipeline)),
        Get(HydratedSources, HydrateSourcesRequest(field_set.config)),
    )
    # NB: the config travels inside the PEX as a resource of the pipeline's package.
    stripped_config = await Get(StrippedSourceFiles, SourceFiles(config_sources.snapshot, ()))
    assert entry_point.val is not None
    return MLPipelinePex(
        PexFromTargetsRequest(
            addresses=[field_set.address],
            internal_only=False,
            layout=PexLayout.ZIPAPP,
            main=RUNTIME_ENTRY_POINT,
            inject_env=FrozenDict(
                {
                    MODULE_ENV_VAR: entry_point.val.module,
                    CONFIG_ENV_VAR: field_set.config.value,
                    ADDRESS_ENV_VAR: field_set.address.spec,
                }
            ),
            output_filename=field_set.pex_path,
            additional_sources=stripped_config.snapshot.digest,
            include_local_dists=True,
            description=f"Building the PEX of ml_pipeline {field_set.address}",
        )
    )


def requirements_only(
    request: PexFromTargetsRequest,
    output_filename: str,
    layout: PexLayout,
    additional_args: Tuple[str, ...] = (),
    internal_only: bool = True,
) -> PexFromTargetsRequest:
    """The pipeline PEX's third-party requirements alone: unchanged by code edits, so cached.

    NB: one output name for every pipeline, so pipelines with the same requirements share it.
    """
    return dataclasses.replace(
        request,
        output_filename=output_filename,
        layout=layout,
        internal_only=internal_only,
        include_source_files=False,
        additional_sources=None,
        inject_env=FrozenDict(),
        description=None,
        additional_args=additional_args,
    )


# NB: the requirements-only zipapp, built by pex once per lockfile, that each code change's
# PEX is assembled from (`mlbuild.zipapp`): pex itself would compress every dependency again.
REQUIREMENTS_ZIPAPP = "mlbuild_requirements.zipapp.pex"
REQUIREMENTS_ZIPAPP_DIR = "requirements-zipapp"
PEX_SOURCES_DIR = "pex-sources"


@dataclass(frozen=True)
class PipelineCodeRequest:
    field_set: MLPipelineFieldSet


@dataclass(frozen=True)
class PipelineCode:
    """The pipeline's code as both the PEX and the image's app layer hold it."""

    pex_request: PexFromTargetsRequest
    app_sources: Digest  # stripped sources plus the config beside its module


@rule(desc="Collecting an ml_pipeline's code")
async def pipeline_code(request: PipelineCodeRequest) -> PipelineCode:
    field_set = request.field_set
    prepared, transitive = await MultiGet(
        Get(MLPipelinePex, MLPipelinePexRequest(field_set)),
        Get(TransitiveTargets, TransitiveTargetsRequest([field_set.address])),
    )
    sources = await Get(StrippedPythonSourceFiles, PythonSourceFilesRequest(transitive.closure))
    app_sources = await Get(
        Digest,
        MergeDigests(
            [sources.stripped_source_files.snapshot.digest, prepared.request.additional_sources or EMPTY_DIGEST]
        ),
    )
    return PipelineCode(prepared.request, app_sources)


@dataclass(frozen=True)
class PipelinePexRequest:
    field_set: MLPipelineFieldSet


@dataclass(frozen=True)
class PipelinePex:
    """The pipeline's PEX: a packed folder (default) or a zipapp file."""

    digest: Digest  # what depends on the code: the zipapp, or the packed PEX's PEX-INFO, __main__.py, sources
    shared: Digest  # the packed PEX's `.bootstrap` and `.deps/`, unchanged by code edits (empty for a zipapp)
    path: str
    sha256: str  # the file's; for a folder, of its `sha256sum` listing (see `pex_folder_sha256`)


def pex_folder_sha256(entries: DigestEntries, root: str) -> str:
    """The sha256 of a folder PEX: of the lines `sha256sum` prints for each of its files, by path.

    NB: computed from the digests Pants already holds (no byte read), and checkable by hand:
    `cd <name>.pex && find -L . -type f -not -path '*/__pycache__/*' | LC_ALL=C sort | xargs
    sha256sum | sha256sum` (running a packed PEX writes bytecode beside its code: not built, not counted).
    """
    prefix = root + "/"
    lines = sorted(
        (e.path[len(prefix) :], e.file_digest.fingerprint)
        for e in entries
        if isinstance(e, FileEntry) and e.path.startswith(prefix) and "/__pycache__/" not in f"/{e.path}"
    )
    return hashlib.sha256("".join(f"{h}  ./{p}\n" for p, h in lines).encode()).hexdigest()


# NB: the files of the requirements-only packed PEX that the code changes (the rest is shared).
PACKED_CODE_FILES = ("PEX-INFO", "__main__.py")


@dataclass(frozen=True)
class PackedPexPartsRequest:
    requirements: PexFromTargetsRequest  # packed, requirements only
    pex_path: str


@dataclass(frozen=True)
class PackedPexParts:
    code_files: Digest  # REQUIREMENTS_DIR/{PEX-INFO,__main__.py}: what the assembly rewrites
    shared: Digest  # everything else (`.bootstrap`, `.deps/`), placed under `pex_path` unchanged


@rule
async def packed_pex_parts(request: PackedPexPartsRequest) -> PackedPexParts:
    requirements = await Get(Pex, PexFromTargetsRequest, request.requirements)
    code_files = [f"{REQUIREMENTS_DIR}/{name}" for name in PACKED_CODE_FILES]
    code, rest = await MultiGet(
        Get(Digest, DigestSubset(requirements.digest, PathGlobs(code_files))),
        Get(Digest, DigestSubset(requirements.digest, PathGlobs(["**", *(f"!{f}" for f in code_files)]))),
    )
    shared = await Get(Digest, AddPrefix(await Get(Digest, RemovePrefix(rest, REQUIREMENTS_DIR)), request.pex_path))
    return PackedPexParts(code, shared)


@rule(desc="Assembling an ml_pipeline PEX")
async def assemble_pipeline_pex(request: PipelinePexRequest) -> PipelinePex:
    """The same PEX pex would build from the targets, in about a second after a code edit.

    The requirements-only PEX comes from Pants' cache unless the lockfile changed; the Process
    adds the code and a new PEX-INFO. Packed (default), it reads only the requirements PEX's
    PEX-INFO and `__main__.py` and writes only the code's files: the wheels are shared as they
    are. Zipapp, it copies every compressed entry of the requirements zipapp into a new file.
    """
    field_set = request.field_set
    code = await Get(PipelineCode, PipelineCodeRequest(field_set))
    pex_request = code.pex_request
    packed = field_set.pex_layout.value == "packed"
    requirements_request = (
        requirements_only(pex_request, REQUIREMENTS_DIR, PexLayout.PACKED)
        if packed
        else requirements_only(pex_request, REQUIREMENTS_ZIPAPP, PexLayout.ZIPAPP, internal_only=False)
    )
    tool = await Get(MLBuildTool, MLBuildToolRequest())
    if packed:
        parts = await Get(PackedPexParts, PackedPexPartsRequest(requirements_request, field_set.pex_path))
        requirements_input, shared, requirements_arg = parts.code_files, parts.shared, REQUIREMENTS_DIR
    else:
        requirements = await Get(Pex, PexFromTargetsRequest, requirements_request)
        requirements_input = await Get(Digest, AddPrefix(requirements.digest, REQUIREMENTS_ZIPAPP_DIR))
        requirements_arg = f"{REQUIREMENTS_ZIPAPP_DIR}/{REQUIREMENTS_ZIPAPP}"
        shared = EMPTY_DIGEST
    sources = await Get(Digest, AddPrefix(code.app_sources, PEX_SOURCES_DIR))
    inputs = await Get(Digest, MergeDigests([sources, requirements_input]))
    env_args = [arg for name, value in sorted(pex_request.inject_env.items()) for arg in ("--env", f"{name}={value}")]
    assert pex_request.main is not None
    result = await Get(
        ProcessResult,
        VenvPexProcess(
            tool.pex,
            argv=(
                "-m",
                "mlbuild.zipapp",
                "--layout",
                field_set.pex_layout.value,
                "--requirements",
                requirements_arg,
                "--sources",
                PEX_SOURCES_DIR,
                "--output",
                field_set.pex_path,
                "--entry-point",
                pex_request.main.spec,
                *env_args,
            ),
            input_digest=inputs,
            output_files=() if packed else (field_set.pex_path,),
            output_directories=(field_set.pex_path,) if packed else (),
            description=f"Assembling the PEX of ml_pipeline {field_set.address}",
        ),
    )
    if packed:
        whole = await Get(DigestEntries, Digest, await Get(Digest, MergeDigests([result.output_digest, shared])))
        sha256 = pex_folder_sha256(whole, field_set.pex_path)
    else:
        sha256 = sha256_of(await Get(DigestEntries, Digest, result.output_digest), field_set.pex_path)
    return PipelinePex(result.output_digest, shared, field_set.pex_path, sha256)


@dataclass(frozen=True)
class ValidateConfigRequest:
    field_set: MLPipelineFieldSet


@dataclass(frozen=True)
class ValidatedConfig:
    path: str


class InvalidPipelineConfig(Exception):
    """The pipeline's config failed the runtime's own validation (message: file, field, fix)."""


@rule(desc="Checking an ml_pipeline's config")
async def validate_pipeline_config(request: ValidateConfigRequest) -> ValidatedConfig:
    """Parse the config with the runtime's parser before anything heavy is built.

    NB: a small cached Process: a typo is reported in seconds, not after the PEX and the
    image (which take tens of seconds) were built for nothing.
    """
    # NB: the file first: a missing or misnamed config is reported by its field, before the tool is built.
    config = await Get(HydratedSources, HydrateSourcesRequest(request.field_set.config))
    (path,) = config.snapshot.files
    tool = await Get(MLBuildTool, MLBuildToolRequest())
    result = await Get(
        FallibleProcessResult,
        VenvPexProcess(
            tool.pex,
            argv=("-m", "mlbuild.runtime.check_config", path),
            input_digest=config.snapshot.digest,
            description=f"Checking {path}",
        ),
    )
    if result.exit_code != 0:
        message = result.stderr.decode(errors="replace").strip() or f"exit code {result.exit_code}"
        raise InvalidPipelineConfig(f"{message}\n(the config of {request.field_set.address})")
    return ValidatedConfig(path)


@dataclass(frozen=True)
class MLPipelineImageArtifact(BuiltPackageArtifact):
    """The image's layout in a BuiltPackage, with what `publish` needs to know about it."""

    relpath: str  # NB: always a path here (Pants' BuiltPackageArtifact allows None)
    manifest_digest: str = ""
    pex_sha256: str = ""


@dataclass(frozen=True)
class BuiltMLPipeline:
    """The built outputs, as `dist/` holds them: shared blobs are links into `dist/mlbuild/blobs/`."""

    pex_digest: Digest
    pex_path: str
    pex_sha256: str
    image: PipelineImage  # its digest: the whole layout (linked), the provenance and the package's lineage record
    base: BaseImage
    provenance_path: str
    record_path: str
    archive_digest: Digest  # the oci-archive, where `oci_archive=True`; else empty
    archive_path: str


@dataclass(frozen=True)
class SourceRevisionRequest:
    pass


@dataclass(frozen=True)
class SourceRevision:
    """The git commit the build came from, `-dirty` if the work tree differs; else "unknown"."""

    value: str


@rule(desc="Reading the source revision")
async def source_revision(_: SourceRevisionRequest) -> SourceRevision:
    maybe = await Get(MaybeGitWorktree, GitWorktreeRequest())
    if maybe.git_worktree is None:
        return SourceRevision("unknown")
    worktree = maybe.git_worktree
    return SourceRevision(worktree.commit_id + ("-dirty" if worktree.changed_files() else ""))


@dataclass(frozen=True)
class PackageLineage:
    """The image with its provenance inside, the statement beside it, and the package's lineage record."""

    digest: Digest  # layout, archive, summary, statement, record
    provenance_path: str
    record_path: str


@dataclass(frozen=True)
class PackageLineageRequest:
    field_set: MLPipelineFieldSet
    image: PipelineImage
    pex_sha256: str  # the PEX built beside the image


@dataclass(frozen=True)
class OciArchiveRequest:
    image: PipelineImage
    wanted: bool


@dataclass(frozen=True)
class OciArchive:
    digest: Digest
    path: str


@rule(desc="Writing an oci-archive")
async def write_oci_archive(request: OciArchiveRequest) -> OciArchive:
    """`<name>.oci.tar`: the image (without its provenance referrer) in one file, when asked for.

    NB: every byte of the image again, on every code edit: hence opt-in (`oci_archive=True`).
    """
    image = request.image
    path = image.layout_path[: -len(".oci")] + ".oci.tar"
    if not request.wanted:
        return OciArchive(EMPTY_DIGEST, "")
    whole, tool = await MultiGet(
        Get(Digest, MergeDigests([image.digest, image.shared])), Get(MLBuildTool, MLBuildToolRequest())
    )
    result = await Get(
        ProcessResult,
        VenvPexProcess(
            tool.pex,
            argv=("-m", "mlbuild.oci", "archive", "--layout", image.layout_path, "--output", path),
            input_digest=whole,
            output_files=(path,),
            description=f"Writing the oci-archive {path}",
        ),
    )
    return OciArchive(result.output_digest, path)


@dataclass(frozen=True)
class SharedFilesRequest:
    field_set: MLPipelineFieldSet
    image: PipelineImageRequest


@rule
async def shared_files(request: SharedFilesRequest) -> Digest:
    """The outputs' files that come unchanged from the cached dependency builds, at their paths:
    the base and dependency layers' blobs in the layout, the packed PEX's `.bootstrap` and `.deps/`."""
    field_set, image = request.field_set, request.image
    deps = await Get(DependencyImage, DependencyImageRequest, dependency_image_request(image))
    layout_path = f"{image.out_dir}/{image.name}.oci"
    layers = await Get(
        Digest, AddPrefix(await Get(Digest, RemovePrefix(deps.layer_blobs, deps.layout_path)), layout_path)
    )
    if field_set.pex_layout.value != "packed":
        return layers
    parts = await Get(PackedPexParts, PackedPexPartsRequest(image.requirements_pex, field_set.pex_path))
    return await Get(Digest, MergeDigests([layers, parts.shared]))


@rule(desc="Building an ml_pipeline's PEX and image")
async def build_ml_pipeline(field_set: MLPipelineFieldSet, python_setup: PythonSetup) -> BuiltMLPipeline:
    await Get(ValidatedConfig, ValidateConfigRequest(field_set))
    base_input = base_image_address_input(field_set.address, field_set.base_image)
    base_address = await Get(Address, AddressInput, base_input)
    resolve = field_set.resolve.normalized_value(python_setup)
    lockfile = python_setup.resolves[resolve]
    code, base, lock_contents, revision = await MultiGet(
        Get(PipelineCode, PipelineCodeRequest(field_set)),
        Get(BaseImage, BaseImageRequest(base_address, base_input.description_of_origin)),
        Get(DigestContents, PathGlobs([lockfile])),
        Get(SourceRevision, SourceRevisionRequest()),
    )
    labels = {
        OCI_TITLE_LABEL: field_set.address.spec,
        OCI_REVISION_LABEL: revision.value,
        OCI_BASE_NAME_LABEL: str(base.address),
        OCI_BASE_DIGEST_LABEL: base.manifest_digest,
        PIPELINE_ADDRESS_LABEL: field_set.address.spec,
        LOCKFILE_PATH_LABEL: lockfile,
        LOCKFILE_SHA256_LABEL: "".join(hashlib.sha256(c.content).hexdigest() for c in lock_contents),
    }
    stem_dir, _, stem = field_set.pex_path.rpartition("/")
    layer_split_bytes = field_set.layer_split_mb.value * 1024 * 1024
    # NB: the PEX and the image are siblings built from the same code, side by side: the image
    # holds nothing of the PEX (not even its sha, which the provenance and the package record
    # name), so after a code edit neither waits for the other.
    requirements_pex = requirements_only(code.pex_request, REQUIREMENTS_DIR, PexLayout.PACKED)
    image_request = PipelineImageRequest(
        requirements_pex=requirements_pex,
        app_sources=code.app_sources,
        base=base,
        out_dir=stem_dir or ".",
        name=stem[: -len(".pex")],
        layer_split_bytes=layer_split_bytes,
        layer_max_bytes=field_set.layer_max_mb.value * 1024 * 1024,
        env=code.pex_request.inject_env,
        labels=FrozenDict(labels),
    )
    # NB: what the outputs share with every other build of these dependencies does not depend
    # on the code, so it is checked in dist/mlbuild/blobs while the code's PEX and image build.
    shared = await Get(Digest, SharedFilesRequest(field_set, image_request))
    pex, image, linked = await MultiGet(
        Get(PipelinePex, PipelinePexRequest(field_set)),
        Get(PipelineImage, PipelineImageRequest, image_request),
        Get(SharedBlobs, SharedBlobsRequest(shared, f"ml_pipeline {field_set.address}")),
    )
    lineage, archive = await MultiGet(
        Get(PackageLineage, PackageLineageRequest(field_set, image, pex.sha256)),
        Get(OciArchive, OciArchiveRequest(image, field_set.oci_archive.value)),
    )
    pex_links, image_links = await MultiGet(
        Get(Digest, DigestSubset(linked.links, PathGlobs([f"{pex.path}/**"]))),
        Get(Digest, DigestSubset(linked.links, PathGlobs([f"{image.layout_path}/**"]))),
    )
    pex_digest, image_digest = await MultiGet(
        Get(Digest, MergeDigests([pex.digest, pex_links])),
        Get(Digest, MergeDigests([lineage.digest, image_links])),
    )
    attested = dataclasses.replace(image, digest=image_digest)
    return BuiltMLPipeline(
        pex_digest,
        pex.path,
        pex.sha256,
        attested,
        base,
        lineage.provenance_path,
        lineage.record_path,
        archive.digest,
        archive.path,
    )


# NB: provenance reads the summary, the layout's index, manifests and config, and attaches a
# statement (new small blobs, a new index.json); the layers (~100 MB) and the archive are
# never read, so the Process gets only the small files and its output is merged back.
PROVENANCE_MAX_INPUT_BYTES = 1 << 20


def provenance_inputs(entries: DigestEntries, image: PipelineImage) -> Tuple[FileEntry, ...]:
    """The image's files the provenance Process needs: the summary and the layout's small files."""
    return tuple(
        e
        for e in entries
        if isinstance(e, FileEntry)
        and (
            e.path == image.summary_path
            or (
                e.path.startswith(image.layout_path + "/")
                and e.file_digest.serialized_bytes_length <= PROVENANCE_MAX_INPUT_BYTES
            )
        )
    )


@rule(desc="Recording an ml_pipeline's provenance")
async def record_package_lineage(request: PackageLineageRequest, tool: MLBuildTool) -> PackageLineage:
    field_set, image = request.field_set, request.image
    config, entries = await MultiGet(
        Get(HydratedSources, HydrateSourcesRequest(field_set.config)),
        Get(DigestEntries, Digest, image.digest),
    )
    (config_path,) = config.snapshot.files
    provenance_path = image.summary_path[: -len(".image.json")] + ".provenance.json"
    small = await Get(Digest, CreateDigest(provenance_inputs(entries, image)))
    inputs = await Get(Digest, MergeDigests([small, config.snapshot.digest]))
    result = await Get(
        ProcessResult,
        VenvPexProcess(
            tool.pex,
            argv=(
                "-m",
                "mlbuild.lineage.build_cli",
                "--lineage-dir",
                LINEAGE_OUT,
                "provenance",
                "--image-json",
                image.summary_path,
                "--output",
                provenance_path,
                "--config",
                config_path,
                "--subject-name",
                f"{field_set.address.spec}@{image.manifest_digest}",
                "--pants-version",
                PANTS_VERSION,
                "--mlbuild-version",
                tool.version,
                "--pex-sha256",
                request.pex_sha256,
                "--record",
                "--attach",
            ),
            input_digest=inputs,
            output_files=(provenance_path,),
            output_directories=(LINEAGE_OUT, image.layout_path),
            description=f"Recording the provenance of {image.layout_path}",
        ),
    )
    record_id = result.stdout.decode().strip().splitlines()[-1]
    # NB: the attached layout's index.json replaces the image's; every other file is the same bytes in both.
    unattached = await Get(Digest, DigestSubset(image.digest, PathGlobs(["**", f"!{image.layout_path}/index.json"])))
    digest = await Get(Digest, MergeDigests([unattached, result.output_digest]))
    return PackageLineage(digest, provenance_path, f"{LINEAGE_OUT}/records/{record_id}.json")


@rule(desc="Packaging an ml_pipeline")
async def package_ml_pipeline(field_set: MLPipelineFieldSet) -> BuiltPackage:
    built = await Get(BuiltMLPipeline, MLPipelineFieldSet, field_set)
    digest = await Get(Digest, MergeDigests([built.pex_digest, built.image.digest, built.archive_digest]))
    image = built.image
    return BuiltPackage(
        digest,
        (
            BuiltPackageArtifact(built.pex_path, extra_log_lines=(f"sha256: {built.pex_sha256}",)),
            MLPipelineImageArtifact(
                image.layout_path,
                extra_log_lines=(
                    f"manifest digest: {image.manifest_digest}",
                    f"base image: {built.base.manifest_digest}",
                ),
                manifest_digest=image.manifest_digest,
                pex_sha256=built.pex_sha256,
            ),
            *((BuiltPackageArtifact(built.archive_path),) if built.archive_path else ()),
            BuiltPackageArtifact(image.summary_path),
            BuiltPackageArtifact(
                built.provenance_path, extra_log_lines=("also in the OCI layout, as a referrer of the image",)
            ),
            BuiltPackageArtifact(built.record_path, extra_log_lines=("lineage record of this build",)),
        ),
    )


def rules():
    return [*collect_rules(), UnionRule(PackageFieldSet, MLPipelineFieldSet)]
