from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mlbuild.oci import sagemaker_contract
from mlbuild.oci.errors import ContractError
from mlbuild.oci.image import set_config
from mlbuild.oci.testing import D, F, Raw, S, raw_image

TRAIN = F("usr/local/bin/train", b"#!/usr/bin/python3\n", 0o755)

# name: (layers, config changes, violated rules)
CASES: dict[str, tuple[list[list[Raw]], dict[str, Any], list[str]]] = {
    "ok": ([[TRAIN]], {}, []),
    "ok-symlink-to-absolute": (
        [[F("opt/program/train", b"", 0o755), S("usr/local/bin/train", "/opt/program/train")]],
        {},
        [],
    ),
    "ok-merged-usr": (
        [[D("usr"), D("usr/bin"), S("bin", "usr/bin")], [F("bin/train", b"", 0o755)]],
        {"env": {"PATH": "/bin"}},
        [],
    ),
    "ok-custom-path": ([[F("opt/program/train", b"", 0o755)]], {"env": {"PATH": "/opt/program:/usr/bin"}}, []),
    "ok-empty-opt-ml": ([[TRAIN, D("opt"), D("opt/ml")]], {}, []),
    "ok-entrypoint": ([[F("opt/program/run", b"", 0o755)]], {"entrypoint": ["/opt/program/run"]}, []),
    "opt-ml-file": ([[TRAIN, F("opt/ml/model/weights.bin")]], {}, ["opt-ml-empty"]),
    "opt-ml-via-symlinked-opt": ([[TRAIN, S("opt", "srv"), F("srv/ml/input/x")]], {}, ["opt-ml-empty"]),
    "opt-ml-whited-out": ([[TRAIN, F("opt/ml/x")], [F("opt/.wh.ml")]], {}, []),
    "train-missing": ([[F("usr/bin/other", b"", 0o755)]], {}, ["train-on-path"]),
    "train-not-executable": ([[F("usr/local/bin/train", b"", 0o644)]], {}, ["train-on-path"]),
    "train-not-on-path": ([[F("opt/program/train", b"", 0o755)]], {}, ["train-on-path"]),
    "train-whited-out": ([[TRAIN], [F("usr/local/bin/.wh.train")]], {}, ["train-on-path"]),
    "train-opaque-dir": ([[TRAIN], [F("usr/local/bin/.wh..wh..opq")]], {}, ["train-on-path"]),
    "train-dangling-symlink": ([[S("usr/local/bin/train", "/nowhere")]], {}, ["train-on-path"]),
    "entrypoint-missing": ([[TRAIN]], {"entrypoint": ["/opt/program/run"]}, ["entrypoint-executable"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_contract_rules(tmp_path: Path, case: str) -> None:
    layers, config, rules = CASES[case]
    image = set_config(raw_image(tmp_path, *layers), **config)
    assert [v.rule for v in sagemaker_contract.check(image)] == rules


def test_platform_rule_and_error_message(tmp_path: Path) -> None:
    image = raw_image(tmp_path, [F("opt/ml/code/x.py")])
    image = replace(image, config={**image.config, "architecture": "arm64"})
    with pytest.raises(ContractError) as e:
        sagemaker_contract.require(image)
    message = str(e.value)
    assert "[platform]" in message and "linux/arm64" in message
    assert "[opt-ml-empty]" in message and "/opt/ml/code/x.py" in message and "Fix:" in message
    assert "[train-on-path]" in message


SERVE = F("usr/local/bin/serve", b"#!/usr/bin/python3\n", 0o755)


@pytest.mark.parametrize(
    "layers, config, rules",
    [
        ([[TRAIN, SERVE]], {}, []),
        ([[TRAIN]], {}, ["serve-on-path"]),
        ([[TRAIN, F("usr/local/bin/serve", b"", 0o644)]], {}, ["serve-on-path"]),
        ([[SERVE]], {}, ["train-on-path"]),
        ([[F("opt/program/run", b"", 0o755)]], {"entrypoint": ["/opt/program/run"]}, []),
        ([[TRAIN, SERVE]], {"entrypoint": ["/opt/program/run"]}, ["entrypoint-executable"]),
    ],
    ids=[
        "both",
        "serve-missing",
        "serve-not-executable",
        "train-missing",
        "entrypoint-takes-both",
        "entrypoint-missing-once",
    ],
)
def test_hosting_contract_wants_serve_too(tmp_path: Path, layers, config, rules) -> None:
    image = set_config(raw_image(tmp_path, *layers), **config)
    assert [v.rule for v in sagemaker_contract.check(image, programs=("train", "serve"))] == rules


def test_hosting_error_names_both_contracts(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="training and hosting-container contract") as e:
        sagemaker_contract.require(raw_image(tmp_path, [TRAIN]), programs=("train", "serve"))
    assert "executable (mode 0755) `serve`, e.g. /usr/local/bin/serve" in str(e.value)
