from __future__ import annotations

import json
from pathlib import Path

from mlbuild.lineage import build_cli
from mlbuild.lineage.store import Store
from mlbuild.lineage.testing import LABELS, MANIFEST, write_image


def test_provenance_records_and_attaches_through_the_build_cli(tmp_path: Path, capsys) -> None:
    summary = write_image(tmp_path / "dist", LABELS, MANIFEST)
    out = tmp_path / "dist" / "train.provenance.json"
    code = build_cli.main(
        [
            "--lineage-dir",
            str(tmp_path / "store"),
            "provenance",
            "--image-json",
            str(summary),
            "--output",
            str(out),
            "--record",
        ]
    )
    assert code == 0
    record_id = capsys.readouterr().out.strip().splitlines()[-1]
    record = Store(tmp_path / "store").get(record_id)
    assert record.kind == "package" and json.loads(out.read_text())["predicateType"] == "https://slsa.dev/provenance/v1"


def test_a_record_from_an_image_summary(tmp_path: Path, capsys) -> None:
    summary = write_image(tmp_path / "dist", LABELS, MANIFEST)
    code = build_cli.main(
        ["--lineage-dir", str(tmp_path / "store"), "record", "--kind", "package", "--image-json", str(summary)]
    )
    assert code == 0
    assert Store(tmp_path / "store").get(capsys.readouterr().out.strip()).kind == "package"


def test_a_bad_record_body_is_a_user_error_naming_the_file(tmp_path: Path, capsys) -> None:
    body = tmp_path / "body.json"
    body.write_text("[1, 2]")
    assert (
        build_cli.main(
            ["--lineage-dir", str(tmp_path / "store"), "record", "--kind", "run", "--record-file", str(body)]
        )
        == 2
    )
    assert f"{body}: a record body must be a JSON object" in capsys.readouterr().err


def test_the_pex_built_beside_an_image_is_named_in_its_record_and_statement(tmp_path: Path, capsys) -> None:
    from mlbuild import names

    labels = {k: v for k, v in LABELS.items() if k != names.PEX_SHA256_LABEL}  # images no longer carry it
    summary = write_image(tmp_path / "dist", labels, MANIFEST)
    out = tmp_path / "dist" / "train.provenance.json"
    pex = "ab" * 32
    argv = [
        "--lineage-dir",
        str(tmp_path / "store"),
        "provenance",
        "--image-json",
        str(summary),
        "--output",
        str(out),
        "--record",
    ]
    assert build_cli.main([*argv, "--pex-sha256", pex]) == 0
    record = Store(tmp_path / "store").get(capsys.readouterr().out.strip().splitlines()[-1])
    assert record.get("pex.sha256") == pex
    byproducts = json.loads(out.read_text())["predicate"]["runDetails"]["byproducts"]
    assert {"name": "pex", "digest": {"sha256": pex}} in byproducts
    # Without it, an image with no label names no PEX at all (nothing guessed).
    assert build_cli.main(argv) == 0
    record = Store(tmp_path / "store").get(capsys.readouterr().out.strip().splitlines()[-1])
    assert record.get("pex.sha256") is None
    assert build_cli.main([*argv, "--pex-sha256", "not-a-sha"]) == 2
