from __future__ import annotations

from pathlib import Path

import pytest

from mlbuild.oci.errors import UserError
from mlbuild.oci.spec import parse_spec


def _src(tmp_path: Path) -> Path:
    (tmp_path / "f").write_text("x")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "g").write_text("y")
    return tmp_path


@pytest.mark.parametrize(
    "spec, message",
    [
        ([], "must be a JSON object"),
        ({}, "missing ['ref']"),
        ({"ref": "r", "layer": []}, "unknown keys ['layer']"),
        ({"ref": "r", "layers": [{"name": "l", "files": [{"src": "nope", "dest": "/x"}]}]}, "layers[0].files[0].src"),
        (
            {"ref": "r", "layers": [{"name": "l", "files": [{"src": "f", "dest": "/x", "mode": "rwx"}]}]},
            "not a file mode",
        ),
        ({"ref": "r", "layers": [{"name": "l", "files": [{"src": "f", "dest": "/../x"}]}]}, "without '..'"),
        ({"ref": "r", "config": {"entrypoint": "train"}}, "config.entrypoint: must be a JSON list"),
        ({"ref": "r", "config": {"env": {"A": 1}}}, "config.env: must be an object of string -> string"),
        ({"ref": "r", "base": {"ref": "x"}}, "base: missing ['layout']"),
    ],
)
def test_spec_errors_name_the_field(tmp_path: Path, spec: object, message: str) -> None:
    with pytest.raises(UserError) as e:
        parse_spec(spec, base_dir=_src(tmp_path), where="spec.json")
    assert message in str(e.value) and str(e.value).startswith(("spec.json", "file"))


def test_a_full_spec(tmp_path: Path) -> None:
    spec = parse_spec(
        {
            "ref": "r",
            "layers": [
                {
                    "name": "l",
                    "files": [{"src": "f", "dest": "/opt/f", "mode": "0755"}],
                    "dirs": [{"src": "d", "dest": "/opt/d"}],
                    "symlinks": [{"dest": "/usr/local/bin/train", "target": "/opt/f"}],
                }
            ],
            "config": {"entrypoint": [], "cmd": ["a"], "env": {"A": "1"}, "workdir": "/opt", "labels": {}},
        },
        base_dir=_src(tmp_path),
    )
    entries = spec.layers[0].entries
    assert [(e.path, e.kind, oct(e.mode)) for e in entries] == [
        ("opt/f", "file", "0o755"),
        ("opt/d/g", "file", "0o644"),
        ("usr/local/bin/train", "symlink", "0o777"),
    ]
