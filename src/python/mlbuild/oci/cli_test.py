from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlbuild.oci.cli import main


def _write_spec(tmp_path: Path, spec: dict) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def test_build_check_and_unpack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "train").write_text("#!/usr/bin/python3\n")
    (tmp_path / "train").chmod(0o755)
    spec = _write_spec(
        tmp_path, {"ref": "t", "layers": [{"name": "app", "files": [{"src": "train", "dest": "/usr/local/bin/train"}]}]}
    )
    out = tmp_path / "out"
    assert (
        main(
            [
                "build",
                "--spec",
                str(spec),
                "--output",
                str(out),
                "--cache-dir",
                str(tmp_path / "cache"),
                "--check-sagemaker",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == ["image.json", "image.tar", "layout"]
    assert main(["check", "--layout", str(out / "layout"), "--ref-name", "t"]) == 0
    assert (
        main(["unpack", "--layout", str(out / "layout"), "--ref-name", "t", "--rootfs", str(tmp_path / "rootfs")]) == 0
    )
    assert (tmp_path / "rootfs" / "usr" / "local" / "bin" / "train").read_text() == "#!/usr/bin/python3\n"


@pytest.mark.parametrize(
    "spec, code, message",
    [
        ({"ref": "t", "bogus": 1}, 2, "unknown keys ['bogus']"),
        ({"ref": "t", "layers": []}, 2, "[train-on-path]"),
        ({"ref": "t", "base": {"layout": "missing"}}, 2, "no oci-layout file"),
    ],
)
def test_user_errors_exit_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], spec: dict, code: int, message: str
) -> None:
    path = _write_spec(tmp_path, spec)
    assert main(["build", "--spec", str(path), "--output", str(tmp_path / "out"), "--check-sagemaker"]) == code
    assert message in capsys.readouterr().err


def test_platform_errors_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write_spec(tmp_path, {"ref": "t"})

    def broken(*_args: object, **_kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("mlbuild.oci.cli.write_outputs", broken)
    assert main(["build", "--spec", str(path), "--output", str(tmp_path / "out")]) == 3
    assert "No space left" in capsys.readouterr().err


def test_a_check_on_a_base_index_sees_what_a_full_replay_sees(tmp_path: Path) -> None:
    """The app image's contract check replays only its own layer on the dependency image's index."""
    from mlbuild.oci.layout import read_layout
    from mlbuild.oci.merged_fs import MergedFS

    (tmp_path / "lib.py").write_text("x = 1\n")
    (tmp_path / "train").write_text("#!/usr/bin/python3\n")
    (tmp_path / "train").chmod(0o755)
    base_spec = _write_spec(
        tmp_path,
        {"ref": "deps", "layers": [{"name": "deps", "files": [{"src": "lib.py", "dest": "/opt/deps/lib.py"}]}]},
    )
    base_out = tmp_path / "deps-image"
    assert (
        main(
            [
                "build",
                "--spec",
                str(base_spec),
                "--output",
                str(base_out),
                "--name",
                "deps",
                "--no-archive",
                "--write-fs-index",
            ]
        )
        == 0
    )
    index = base_out / "deps.fs.json"
    assert json.loads(index.read_text())["nodes"]["opt/deps/lib.py"][0] == "file"
    app_spec = tmp_path / "app.json"
    app_spec.write_text(
        json.dumps(
            {
                "ref": "app",
                "base": {"layout": str(base_out / "deps.oci"), "ref": "deps"},
                "layers": [
                    {"name": "app", "files": [{"src": "train", "dest": "/usr/local/bin/train", "mode": "0755"}]}
                ],
            }
        )
    )
    out = tmp_path / "out"
    assert (
        main(
            [
                "build",
                "--spec",
                str(app_spec),
                "--output",
                str(out),
                "--name",
                "app",
                "--check-sagemaker",
                "--base-fs-index",
                str(index),
            ]
        )
        == 0
    )
    image = read_layout(out / "app.oci", "app")
    resumed = MergedFS.of_image(image, base=json.loads(index.read_text()))
    assert resumed.nodes == MergedFS.of_image(image).nodes
    # An index of other layers is not used: the full replay still finds every file.
    stale = {"layers": ["sha256:" + "0" * 64], "nodes": {}}
    assert MergedFS.of_image(image, base=stale).nodes == MergedFS.of_image(image).nodes
    assert "opt/deps/lib.py" in MergedFS.of_image(image, base=stale).nodes
