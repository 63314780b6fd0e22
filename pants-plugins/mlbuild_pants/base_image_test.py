"""Base images: which targets may be one, and how a pulled base is pinned.

NB: building a base needs the mlbuild tool and, for a Debian lock, the mirror; these tests
run the rule with its requests answered by mocks, so nothing is built or downloaded.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import List

import pytest  # pants: no-infer-dep (Pants' own pytest runs these; the pants-plugins resolve has it only through testutil)
from pants.backend.python.target_types import PythonSourcesGeneratorTarget
from pants.backend.python.util_rules.pex import VenvPexProcess
from pants.engine.addresses import Address
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import EMPTY_DIGEST, EMPTY_FILE_DIGEST, DigestContents, DigestSubset, FileContent, Snapshot
from pants.engine.process import ProcessCacheScope, ProcessResult
from pants.engine.target import HydratedSources, HydrateSourcesRequest, WrappedTarget, WrappedTargetRequest
from pants.testutil.rule_runner import MockGet, run_rule_with_mocks

from mlbuild_pants.base_image import BaseImage, BaseImageRequest, build_base_image
from mlbuild_pants.target_types import MLBaseImageTarget

SLIM = Address("docker/slim", target_name="slim")
PINNED = "r.io/python:3.11@sha256:" + "0" * 64
OTHER_DIGEST, OURS_DIGEST = "sha256:" + "a" * 64, "sha256:" + "b" * 64
LOCK = Snapshot.create_for_testing(["docker/deb/packages.lock.json"], ["docker/deb"])


def build(target, processes: List[VenvPexProcess], index: dict) -> BaseImage:
    def run(process: VenvPexProcess) -> ProcessResult:
        processes.append(process)
        return ProcessResult(b"", EMPTY_FILE_DIGEST, b"", EMPTY_FILE_DIGEST, EMPTY_DIGEST, None)  # type: ignore[arg-type]

    def contents(subset: DigestSubset) -> DigestContents:
        (path,) = subset.globs.globs
        return DigestContents([FileContent(path, json.dumps(index).encode())])

    return run_rule_with_mocks(
        build_base_image,
        rule_args=[
            BaseImageRequest(target.address, "the `base_image` field of src/p:train"),
            SimpleNamespace(pex=None),
        ],
        mock_gets=[
            MockGet(WrappedTarget, (WrappedTargetRequest,), lambda _: WrappedTarget(target)),
            MockGet(EnvironmentVars, (EnvironmentVarsRequest,), lambda r: EnvironmentVars({"HOME": "/home/me"})),
            MockGet(ProcessResult, (VenvPexProcess,), run),
            MockGet(DigestContents, (DigestSubset,), contents),
            MockGet(
                HydratedSources,
                (HydrateSourcesRequest,),
                lambda _: HydratedSources(LOCK, {"includes": ["docker/deb/packages.lock.json"]}, None),
            ),
        ],
    )


def test_a_base_image_field_naming_another_kind_of_target_says_which_and_the_fix() -> None:
    sources = PythonSourcesGeneratorTarget({}, Address("src/p"))
    with pytest.raises(ValueError) as e:
        build(sources, [], {})
    assert str(e.value).startswith(
        "the `base_image` field of src/p:train names src/p:p, which is a `python_sources`, not an `ml_base_image`"
    )


def test_a_pulled_base_is_pinned_to_the_manifest_named_after_the_target() -> None:
    target = MLBaseImageTarget({"image": PINNED, "python": "/usr/local/bin/python3.11"}, SLIM)
    index = {
        "manifests": [
            {"digest": OTHER_DIGEST, "annotations": {"org.opencontainers.image.ref.name": "other"}},
            {"digest": OURS_DIGEST, "annotations": {"org.opencontainers.image.ref.name": "slim"}},
        ]
    }
    processes: List[VenvPexProcess] = []
    built = build(target, processes, index)
    assert (built.address, built.layout_path, built.ref, built.manifest_digest, built.python) == (
        SLIM,
        "docker.slim/slim.oci",
        "slim",
        OURS_DIGEST,
        "/usr/local/bin/python3.11",
    )
    (pull,) = processes
    argv = list(pull.argv)
    assert argv[:4] == ["-m", "mlbuild.registry", "pull", PINNED]
    assert argv[argv.index("--layout") + 1] == "docker.slim/slim.oci" and argv[argv.index("--ref-name") + 1] == "slim"
    # The pull sees the caller's credentials, so its result must never reach a persistent cache.
    assert dict(pull.extra_env or {}) == {"HOME": "/home/me"}
    assert pull.cache_scope == ProcessCacheScope.PER_RESTART_SUCCESSFUL


def test_a_debian_base_ships_its_standard_library_compiled_for_its_python() -> None:
    summary = {"layout": "deb.oci", "ref": "deb", "manifest_digest": OURS_DIGEST}
    for python, expected in (("/usr/bin/python3.11", ["--bytecode=cpython-311"]), ("/usr/bin/python3", [])):
        target = MLBaseImageTarget(
            {"debian_lock": "packages.lock.json", "python": python}, Address("docker/deb", target_name="deb")
        )
        processes: List[VenvPexProcess] = []
        built = build(target, processes, summary)
        assert (built.layout_path, built.manifest_digest, built.python) == ("docker.deb/deb.oci", OURS_DIGEST, python)
        (assemble,) = processes
        argv = list(assemble.argv)
        assert argv[:4] == ["-m", "mlbuild.base_image", "--lock", "docker/deb/packages.lock.json"]
        assert [a for a in argv if a.startswith("--bytecode")] == expected
