from __future__ import annotations

from pathlib import Path

import pytest

from mlbuild.oci.layout import write_layout
from mlbuild.replay.image import PULLED_REF, config_from_image, job_image, local_store_image, pulled_image
from mlbuild.replay.testing import CONFIG, tiny_image
from mlbuild.runtime.errors import UserError


def test_the_local_store_image_by_digest(tmp_path: Path) -> None:
    image = tiny_image(tmp_path / "registry", tmp_path / "blobs")
    digest = image.manifest_descriptor().digest
    found = job_image(f"oci:{tmp_path / 'registry'}/tiny@{digest}", digest, tmp_path / "cache")
    assert (found.layout_dir, found.ref, found.pulled) == (tmp_path / "registry", "tiny:t1", False)
    assert found.image.manifest_descriptor().digest == digest


def test_a_digest_gone_from_the_local_store(tmp_path: Path) -> None:
    tiny_image(tmp_path / "registry", tmp_path / "blobs")
    other = "sha256:" + "0" * 64
    with pytest.raises(UserError, match=f"image {other} is no longer in the local image store"):
        local_store_image(f"oci:{tmp_path / 'registry'}/tiny@{other}", other)
    with pytest.raises(UserError, match="the local image store .* is gone"):
        local_store_image(f"oci:{tmp_path / 'nowhere'}/tiny@{other}", other)


def test_a_pulled_image_is_reused_from_the_cache_without_the_registry(tmp_path: Path) -> None:
    image = tiny_image(tmp_path / "registry", tmp_path / "blobs")
    digest = image.manifest_descriptor().digest
    write_layout(image, tmp_path / "cache" / "replay" / "images" / digest.split(":")[1], PULLED_REF)
    # NB: port 9 on loopback answers nothing: a pull attempt would fail, so reuse is proven
    found = pulled_image(f"127.0.0.1:9/tiny@{digest}", tmp_path / "cache")
    assert not found.pulled and found.image.manifest_descriptor().digest == digest


def test_a_tag_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not pinned by digest"):
        pulled_image("127.0.0.1:9/tiny:latest", tmp_path / "cache")


def test_the_config_inside_the_image(tmp_path: Path) -> None:
    image = tiny_image(tmp_path / "registry", tmp_path / "blobs", config=CONFIG + "# edited\n")
    assert config_from_image(image).decode() == CONFIG + "# edited\n"


def test_an_image_not_built_by_mlbuild(tmp_path: Path) -> None:
    from mlbuild.container_run.testing import write_image
    from mlbuild.oci.layer import LayerEntry

    image = write_image(tmp_path / "l", tmp_path / "b", [[LayerEntry.file("x", b"x")]])
    with pytest.raises(UserError, match="MLBUILD_PIPELINE_MODULE is not set"):
        config_from_image(image)
