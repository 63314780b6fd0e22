"""`pants package` for ml_pipeline: the pipeline's PEX, the config check, and what feeds the image."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import zipfile

import pytest  # pants: no-infer-dep (Pants' own pytest runs these; the pants-plugins resolve has it only through testutil)
from pants.backend.python.target_types import EntryPoint, PexLayout
from pants.backend.python.util_rules.pex import Pex
from pants.backend.python.util_rules.pex_from_targets import PexFromTargetsRequest
from pants.core.goals.package import BuiltPackage
from pants.engine.addresses import Address
from pants.engine.fs import EMPTY_DIGEST, Digest, DigestEntries, FileDigest, FileEntry, MergeDigests
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import MockGet, RuleRunner, run_rule_with_mocks
from pants.util.frozendict import FrozenDict

from mlbuild_pants.conftest import BUILT_MANIFEST, BUILT_PEX_SHA256, BUILT_TOY, TOY, pipeline_field_set
from mlbuild_pants.image import PipelineImage
from mlbuild_pants.package import (
    PROVENANCE_MAX_INPUT_BYTES,
    BuiltMLPipeline,
    MLPipelineFieldSet,
    MLPipelinePex,
    MLPipelinePexRequest,
    package_ml_pipeline,
    pex_folder_sha256,
    provenance_inputs,
    requirements_only,
)
from mlbuild_pants.publish import image_artifact
from mlbuild_pants.target_types import MLPipelineTarget


def test_the_pipeline_pex_carries_the_pipeline_and_its_config(rule_runner: RuleRunner) -> None:
    prepared = rule_runner.request(MLPipelinePex, [MLPipelinePexRequest(pipeline_field_set(rule_runner))])
    assert prepared.request.output_filename == "src.pipez.toy/train.pex"
    built = rule_runner.request(Pex, [prepared.request])
    rule_runner.write_digest(built.digest, path_prefix="dist")
    pex = os.path.join(rule_runner.build_root, "dist/src.pipez.toy/train.pex")
    names = zipfile.ZipFile(pex).namelist()
    assert {"pipez/toy/model.py", "pipez/toy/helpers.py", "pipez/toy/toy.yaml", "mlbuild/runtime/cli.py"} <= set(names)
    # NB: a PEX_ROOT of its own: running a PEX writes into it, and ~/.pex is the user's.
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ["HOME"],
        "PEX_ROOT": os.path.join(rule_runner.build_root, ".pex_root"),
    }
    out = subprocess.run(["python3.11", pex, "train"], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == [
        "pipez.toy.model",
        "src/pipez/toy:train",
        "hyperparameters:",
        "{depth:",
        "3}",
        "train",
    ]


def test_a_config_that_is_not_yaml_is_rejected_when_packaging(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            "src/pipez/json/toy.json": "{}",
            "src/pipez/json/BUILD": 'ml_pipeline(name="train", pipeline="pipez.toy.model", config="toy.json")',
        }
    )
    with pytest.raises(ExecutionError) as e:
        rule_runner.request(
            BuiltPackage, [pipeline_field_set(rule_runner, Address("src/pipez/json", target_name="train"))]
        )
    assert "toy.json" in str(e.value) and ".yaml" in str(e.value), str(e.value)


def pipeline_pex_request(name: str, module: str) -> PexFromTargetsRequest:
    return PexFromTargetsRequest(
        [TOY],
        output_filename=f"src.pipez.toy/{name}.pex",
        internal_only=False,
        layout=PexLayout.ZIPAPP,
        main=EntryPoint("mlbuild.runtime.cli", "main"),
        inject_env=FrozenDict({"MLBUILD_PIPELINE_MODULE": module}),
        additional_sources=Digest("3" * 64, 10),
        description=f"the PEX of {name}",
    )


def test_the_requirements_pex_drops_the_code_so_an_edit_does_not_rebuild_it() -> None:
    pipeline = pipeline_pex_request("train", "pipez.toy.model")
    requirements = requirements_only(pipeline, "requirements", PexLayout.PACKED)
    assert not requirements.include_source_files
    assert requirements.additional_sources is None and not requirements.inject_env
    assert (requirements.output_filename, requirements.layout, requirements.internal_only) == (
        "requirements",
        PexLayout.PACKED,
        True,
    )
    # What it is resolved for (the targets' closure) stays the pipeline's.
    assert requirements.addresses == pipeline.addresses
    # Two pipelines with the same requirements ask for the same PEX (one build, one cache entry).
    other = pipeline_pex_request("other", "pipez.toy.other")
    assert requirements_only(other, "requirements", PexLayout.PACKED) == requirements


def test_provenance_reads_the_summary_and_the_layouts_small_files_only() -> None:
    image = PipelineImage(
        digest=EMPTY_DIGEST,
        layout_path="src.pipez.toy/train.oci",
        shared=EMPTY_DIGEST,
        summary_path="src.pipez.toy/train.image.json",
        manifest_digest="sha256:" + "0" * 64,
    )

    def entry(path: str, size: int) -> FileEntry:
        return FileEntry(path, FileDigest("0" * 64, size))

    small, big = PROVENANCE_MAX_INPUT_BYTES, PROVENANCE_MAX_INPUT_BYTES + 1
    entries = DigestEntries(
        [
            entry("src.pipez.toy/train.image.json", 100),
            entry("src.pipez.toy/train.oci/index.json", 100),
            entry("src.pipez.toy/train.oci/blobs/sha256/manifest", small),
            entry("src.pipez.toy/train.oci/blobs/sha256/layer", big),
            entry("src.pipez.toy/train.oci.tar", 100),  # beside the layout, not in it
            entry("src.pipez.toy/train.pex", 100),
        ]
    )
    assert [e.path for e in provenance_inputs(entries, image)] == [
        "src.pipez.toy/train.image.json",
        "src.pipez.toy/train.oci/index.json",
        "src.pipez.toy/train.oci/blobs/sha256/manifest",
    ]


def test_the_package_lists_every_output_and_the_image_says_what_publish_needs() -> None:
    merged: list = []

    def merge(request: MergeDigests) -> Digest:
        merged.append(request)
        return Digest("9" * 64, 1)

    field_set = MLPipelineFieldSet.create(MLPipelineTarget({"config": "toy.yaml"}, TOY))
    package = run_rule_with_mocks(
        package_ml_pipeline,
        rule_args=[field_set],
        mock_gets=[
            MockGet(BuiltMLPipeline, (MLPipelineFieldSet,), lambda _: BUILT_TOY),
            MockGet(Digest, (MergeDigests,), merge),
        ],
    )
    assert merged == [MergeDigests([BUILT_TOY.pex_digest, BUILT_TOY.image.digest, EMPTY_DIGEST])]
    assert package.digest == Digest("9" * 64, 1)
    # NB: no oci-archive unless the target asks for one (`oci_archive=True`).
    assert [a.relpath for a in package.artifacts] == [
        "src.pipez.toy/train.pex",
        "src.pipez.toy/train.oci",
        "src.pipez.toy/train.image.json",
        "src.pipez.toy/train.provenance.json",
        "mlbuild/lineage/records/r1.json",
    ]
    # `publish` finds the image among the packages and takes its identity from it, not from a rebuild.
    found_package, image = image_artifact((package,), TOY)
    assert found_package is package
    assert (image.relpath, image.manifest_digest, image.pex_sha256) == (
        "src.pipez.toy/train.oci",
        BUILT_MANIFEST,
        BUILT_PEX_SHA256,
    )
    with_archive = dataclasses.replace(
        BUILT_TOY, archive_digest=Digest("4" * 64, 4), archive_path="src.pipez.toy/train.oci.tar"
    )
    archived = run_rule_with_mocks(
        package_ml_pipeline,
        rule_args=[field_set],
        mock_gets=[
            MockGet(BuiltMLPipeline, (MLPipelineFieldSet,), lambda _: with_archive),
            MockGet(Digest, (MergeDigests,), merge),
        ],
    )
    assert merged[-1] == MergeDigests([BUILT_TOY.pex_digest, BUILT_TOY.image.digest, Digest("4" * 64, 4)])
    assert "src.pipez.toy/train.oci.tar" in [a.relpath for a in archived.artifacts]


def test_a_folder_pex_is_named_by_the_sha256_of_its_sha256sum_listing() -> None:
    entries = DigestEntries(
        [
            FileEntry("d/train.pex/b.py", FileDigest("b" * 64, 1)),
            FileEntry("d/train.pex/.deps/x.whl", FileDigest("a" * 64, 2)),
            FileEntry("d/other.txt", FileDigest("c" * 64, 3)),  # beside the PEX, not in it
            FileEntry("d/train.pex/__pycache__/b.cpython-311.pyc", FileDigest("e" * 64, 4)),  # bytecode: not counted
        ]
    )
    listing = f"{'a' * 64}  ./.deps/x.whl\n{'b' * 64}  ./b.py\n"
    assert pex_folder_sha256(entries, "d/train.pex") == hashlib.sha256(listing.encode()).hexdigest()


def test_the_store_listing_says_which_blobs_to_place() -> None:
    from mlbuild_pants.shared_blobs import missing_from

    want = {
        "a" * 64: {"path": "x/.deps/a.whl", "size": 3},
        "b" * 64: {"path": "y", "size": 5},
        "c" * 64: {"path": "z", "size": 7},
    }
    listing = f"{'a' * 64} 3\n{'b' * 64} 4\n{'d' * 64} 9\n"
    # b is there at another size (a torn copy): placed again; c is not there at all.
    assert missing_from(listing, want) == ["b" * 64, "c" * 64]
    assert missing_from("", want) == sorted(want)
