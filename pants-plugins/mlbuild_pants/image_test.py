"""The pipeline image's layers, launchers and specs (what `mlbuild.oci build` is asked to build)."""

from __future__ import annotations

import os

from pants.engine.addresses import Address
from pants.engine.fs import EMPTY_DIGEST
from pants.util.frozendict import FrozenDict

from mlbuild_pants.base_image import BaseImage, bytecode_tag
from mlbuild_pants.image import (
    PROGRAMS,
    DependencyImage,
    DependencyImageRequest,
    PipelineImageRequest,
    app_image_spec,
    dependency_image_spec,
    launcher,
    layer_groups,
)

LABELS = FrozenDict({"org.mlbuild.pipeline.address": "src/pipez/toy:train", "org.mlbuild.pex.sha256": "ab" * 32})


def base(python: str = "/usr/bin/python3.11") -> BaseImage:
    return BaseImage(
        address=Address("docker/debian-python3.11", target_name="base"),
        digest=EMPTY_DIGEST,
        layout_path="docker.debian-python3.11/base.oci",
        ref="base",
        manifest_digest="sha256:" + "1" * 64,
        python=python,
    )


def test_layers_put_large_wheels_alone_and_the_rest_together() -> None:
    wheels = [
        ("torch-2.1-cp311.whl", 110),
        ("numpy-2.1.3-cp311.whl", 50),
        ("PyYAML-6.0.2-cp311.whl", 1),
        ("Edge-1.whl", 100),
    ]
    assert layer_groups(wheels, split_bytes=100) == [
        ("dep-torch", ["torch-2.1-cp311.whl"]),
        ("deps", ["Edge-1.whl", "PyYAML-6.0.2-cp311.whl", "numpy-2.1.3-cp311.whl"]),
    ]
    # The same layers whatever order the PEX lists its wheels in (the image digest depends on it).
    assert layer_groups(list(reversed(wheels)), split_bytes=100) == layer_groups(wheels, split_bytes=100)
    # No empty layer: only large wheels, only small ones, none.
    assert layer_groups([("torch-2.1.whl", 110)], split_bytes=100) == [("dep-torch", ["torch-2.1.whl"])]
    assert layer_groups([("six-1.whl", 1)], split_bytes=100) == [("deps", ["six-1.whl"])]
    assert layer_groups([], split_bytes=100) == []


def test_bytecode_tag_is_the_interpreters_cache_tag_when_its_name_says() -> None:
    assert bytecode_tag("/usr/bin/python3.11") == "cpython-311"
    assert bytecode_tag("/usr/local/bin/python3.9") == "cpython-39"
    assert bytecode_tag("/usr/bin/python3") is None
    assert bytecode_tag("/opt/conda/bin/python") is None


def test_the_dependency_image_compiles_its_wheels_only_for_a_known_interpreter() -> None:
    groups = [("dep-torch", ["torch-2.1.whl"]), ("deps", ["six-1.whl"])]
    request = DependencyImageRequest(requirements_pex=None, base=base(), layer_split_bytes=1, layer_max_bytes=1 << 30)  # type: ignore[arg-type]
    spec = dependency_image_spec(request, groups)
    assert spec["base"] == {"layout": "docker.debian-python3.11/base.oci", "ref": "base"}
    assert [layer["name"] for layer in spec["layers"]] == ["dep-torch", "deps"]
    # Each layer is split by path past `layer_max_mb` (registries refuse multi-GB uploads).
    assert {layer["max_bytes"] for layer in spec["layers"]} == {1 << 30}
    (torch,) = spec["layers"][0]["zips"]
    assert torch == {
        "src": "requirements/.deps/torch-2.1.whl",
        "dest": "/opt/mlbuild/deps/torch-2.1.whl",
        "bytecode": "cpython-311",
    }
    # Each wheel lands in the folder the launchers add to the path, one site dir a wheel.
    assert f'os.listdir("{os.path.dirname(torch["dest"])}")' in launcher("train", "/usr/bin/python3.11")
    unknown = dependency_image_spec(DependencyImageRequest(None, base("/usr/bin/python3"), 1, 1 << 30), groups)  # type: ignore[arg-type]
    assert all("bytecode" not in z for layer in unknown["layers"] for z in layer["zips"])


def test_launchers_put_the_deps_then_the_code_on_the_path_and_call_their_programs_main() -> None:
    train = launcher("train", "/usr/bin/python3.11")
    assert train.startswith("#!/usr/bin/python3.11 -I\n")
    assert 'os.listdir("/opt/mlbuild/deps")' in train and 'sys.path.append("/opt/mlbuild/app")' in train
    assert "from mlbuild.runtime.cli import main\n" in train and "sys.exit(main())" in train
    serve = launcher("serve", "/usr/local/bin/python3.11")
    assert serve.startswith("#!/usr/local/bin/python3.11 -I\n")
    assert "from mlbuild.serving.cli import main\n" in serve and "sys.exit(main(sys.argv[1:]))" in serve
    # Each is a Python program: the text compiles.
    compile(train, "train", "exec")
    compile(serve, "serve", "exec")


def app_request(python: str = "/usr/bin/python3.11") -> PipelineImageRequest:
    return PipelineImageRequest(
        requirements_pex=None,  # type: ignore[arg-type]
        app_sources=EMPTY_DIGEST,
        base=base(python),
        out_dir="src.pipez.toy",
        name="train",
        layer_split_bytes=1,
        layer_max_bytes=1 << 30,
        env=FrozenDict({"MLBUILD_PIPELINE_MODULE": "pipez.toy.model", "PYTHONUNBUFFERED": "0"}),
        labels=LABELS,
    )


DEPS = DependencyImage(
    EMPTY_DIGEST, "deps-image/deps.oci", "deps", "deps-image/deps.fs.json", EMPTY_DIGEST, EMPTY_DIGEST
)


def test_the_app_image_is_the_dependency_image_plus_the_code_labelled_and_annotated_alike() -> None:
    request = app_request()
    spec = app_image_spec(request, DEPS)
    # Built on the dependency image, never on the base directly: a code change re-pushes one layer.
    # Thin: its layer blobs are referenced, never read, so a code edit costs the same whatever they weigh.
    assert spec["base"] == {"layout": "deps-image/deps.oci", "ref": "deps", "thin": True}
    (layer,) = spec["layers"]
    # The code lands where the launchers look for it, after the dependencies.
    (code,) = layer["dirs"]
    assert code["src"] == "app" and f'sys.path.append("{code["dest"]}")' in launcher("train", "/usr/bin/python3.11")
    # Compiled at build time like the dependencies: `train` and each `serve` worker import it as is.
    assert code["bytecode"] == "cpython-311"
    (unknown,) = app_image_spec(app_request("/usr/bin/python3"), DEPS)["layers"][0]["dirs"]
    assert "bytecode" not in unknown
    # A launcher a program, executable, on PATH: SageMaker starts the container as `train` or `serve`.
    launchers = {f["src"]: f for f in layer["files"]}
    assert set(launchers) == set(PROGRAMS) == {"train", "serve"}
    for program, file in launchers.items():
        assert file["dest"] == f"/usr/local/bin/{program}" and file["mode"] == "0755"
    config = spec["config"]
    assert config["cmd"] == ["train"]
    # The pipeline's env wins over the image's defaults.
    assert config["env"]["MLBUILD_PIPELINE_MODULE"] == "pipez.toy.model" and config["env"]["PYTHONUNBUFFERED"] == "0"
    assert config["env"]["PYTHONDONTWRITEBYTECODE"] == "1"
    assert config["labels"] == spec["annotations"] == dict(LABELS)
