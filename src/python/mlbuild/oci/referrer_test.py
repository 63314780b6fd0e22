from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mlbuild.oci.archive import write_oci_archive
from mlbuild.oci.errors import UserError
from mlbuild.oci.image import Image, set_config
from mlbuild.oci.layout import read_index, read_layout, write_layout
from mlbuild.oci.referrer import EMPTY_MEDIA_TYPE, IN_TOTO_MEDIA_TYPE, attach, make_referrer, referrers
from mlbuild.tools_required import require_tool

REF = "trainer:1"


def _layout(tmp_path: Path, env: str = "1") -> tuple[Path, Image]:
    image = set_config(Image(), entrypoint=None, env={"V": env}, workdir="/")
    layout = tmp_path / "layout"
    write_layout(image, layout, REF)
    return layout, image


def test_attach_stores_an_oci_1_1_artifact_manifest_about_the_image(tmp_path: Path) -> None:
    layout, image = _layout(tmp_path)
    subject = image.manifest_descriptor()
    desc = attach(layout, make_referrer(subject, IN_TOTO_MEDIA_TYPE, b'{"a": 1}\n', {"k": "v"}))
    manifest = json.loads((layout / "blobs" / "sha256" / desc.digest.split(":")[1]).read_bytes())
    assert manifest["artifactType"] == IN_TOTO_MEDIA_TYPE
    assert manifest["config"]["mediaType"] == EMPTY_MEDIA_TYPE and manifest["config"]["size"] == 2
    assert manifest["subject"] == {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size}
    assert manifest["annotations"] == {"k": "v"}
    (found,) = referrers(layout, subject.digest, IN_TOTO_MEDIA_TYPE)
    assert found.payload == b'{"a": 1}\n' and found.descriptor == desc
    assert referrers(layout, subject.digest, "application/other") == []
    # The image is still the layout's only image, by ref and without one.
    assert read_layout(layout).manifest_bytes() == image.manifest_bytes()
    assert read_layout(layout, REF).manifest_bytes() == image.manifest_bytes()


def test_attach_again_replaces_and_rebuilding_the_image_drops_stale_referrers(tmp_path: Path) -> None:
    layout, image = _layout(tmp_path)
    subject = image.manifest_descriptor()
    attach(layout, make_referrer(subject, IN_TOTO_MEDIA_TYPE, b"one"))
    attach(layout, make_referrer(subject, IN_TOTO_MEDIA_TYPE, b"two"))
    assert [r.payload for r in referrers(layout, subject.digest)] == [b"two"]
    write_layout(set_config(Image(), entrypoint=None, env={"V": "2"}, workdir="/"), layout, REF)
    assert [m.get("artifactType") for m in read_index(layout)["manifests"]] == [None]


def test_attach_refuses_an_image_the_layout_does_not_hold(tmp_path: Path) -> None:
    layout, _ = _layout(tmp_path)
    other = set_config(Image(), entrypoint=None, env={"V": "other"}, workdir="/").manifest_descriptor()
    with pytest.raises(UserError, match="has no image"):
        attach(layout, make_referrer(other, IN_TOTO_MEDIA_TYPE, b"x"))


def test_a_changed_payload_byte_is_caught(tmp_path: Path) -> None:
    layout, image = _layout(tmp_path)
    attach(layout, make_referrer(image.manifest_descriptor(), IN_TOTO_MEDIA_TYPE, b'{"subject": 1}'))
    blob = (
        layout
        / "blobs"
        / "sha256"
        / referrers(layout, image.manifest_descriptor().digest)[0].payload_descriptor.digest.split(":")[1]
    )
    blob.write_bytes(b'{"subject": 2}')
    with pytest.raises(UserError, match="does not match its digest"):
        referrers(layout, image.manifest_descriptor().digest)


def test_same_inputs_same_layout_bytes(tmp_path: Path) -> None:
    archives = []
    for name in ("a", "b"):
        layout, image = _layout(tmp_path / name)
        attach(layout, make_referrer(image.manifest_descriptor(), IN_TOTO_MEDIA_TYPE, b"stmt"))
        write_oci_archive(layout, tmp_path / f"{name}.tar")
        archives.append((tmp_path / f"{name}.tar").read_bytes())
    assert archives[0] == archives[1]


@require_tool("skopeo", "skopeo")
def test_skopeo_still_reads_the_image_by_ref(tmp_path: Path) -> None:
    layout, image = _layout(tmp_path)
    attach(layout, make_referrer(image.manifest_descriptor(), IN_TOTO_MEDIA_TYPE, b"stmt"))
    out = subprocess.run(
        ["skopeo", "inspect", f"oci:{layout}:{REF}"], check=True, capture_output=True, text=True
    ).stdout
    assert json.loads(out)["Digest"] == image.manifest_descriptor().digest
