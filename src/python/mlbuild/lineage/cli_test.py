from __future__ import annotations

import hashlib
import json

import pytest

from mlbuild.commands.cli import main
from mlbuild.lineage import build_cli
from mlbuild.lineage.cli import looks_like_image_reference
from mlbuild.lineage.store import Store
from mlbuild.lineage.testing import LABELS, MANIFEST, PIPELINE, chain, h, write_image
from mlbuild.names import EXIT_NOT_VERIFIED


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _build(capsys, *argv):
    code = build_cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_record_from_a_json_body(tmp_path, capsys) -> None:
    body = tmp_path / "run.json"
    body.write_text(json.dumps({"pipeline": PIPELINE, "created": "2024-05-01T00:00:00Z", "metrics": {"acc": 1}}))
    code, out, _ = _build(capsys, "--lineage-dir", tmp_path / "s", "record", "--kind", "run", "--record-file", body)
    assert code == 0
    assert _build(capsys, "--lineage-dir", tmp_path / "s", "record", "--kind", "run", "--record-file", body)[1] == out
    assert [r.id for r in Store(tmp_path / "s").records()] == [out.strip()]


@pytest.mark.parametrize(
    "body, message",
    [
        ({"kind": "publish", "pipeline": PIPELINE}, "--kind is 'run'"),
        ({"pipeline": PIPELINE, "pex": {"sha256": "x"}}, "record.pex.sha256"),
        ([], "JSON object"),
    ],
)
def test_bad_bodies_exit_2(tmp_path, capsys, body, message) -> None:
    (tmp_path / "b.json").write_text(json.dumps(body))
    code, _, err = _build(
        capsys, "--lineage-dir", tmp_path, "record", "--kind", "run", "--record-file", tmp_path / "b.json"
    )
    assert code == 2 and message in err


def test_inspect_runs_diff_previous_plot(tmp_path, capsys) -> None:
    c = chain(tmp_path)
    code, out, _ = _run(capsys, "inspect", "--lineage-dir", tmp_path, c.publish.get("job.name"), "--json")
    assert code == 0 and set(json.loads(out)["records"]) == c.ids
    code, out, _ = _run(capsys, "inspect", "--lineage-dir", tmp_path, c.package.get("pex.sha256")[:8])
    assert code == 0 and out.startswith("lineage of ")
    code, out, _ = _run(capsys, "runs", "--lineage-dir", tmp_path, PIPELINE)
    assert code == 0 and len(out.splitlines()) == 3 and "accuracy" in out
    assert [r["id"] for r in json.loads(_run(capsys, "runs", "--lineage-dir", tmp_path, PIPELINE, "--json")[1])] == [
        c.run.id,
        c.publish.id,
    ]
    code, out, _ = _run(capsys, "diff", "--lineage-dir", tmp_path, c.run.id[:8], c.publish.get("job.name"))
    assert code == 0 and "accuracy" in out and "(+0.02)" in out
    code, out, _ = _run(capsys, "previous", "--lineage-dir", tmp_path, PIPELINE, "--before", c.publish.id)
    assert json.loads(out) == {"accuracy": 0.9, "loss": 0.3}
    code, out, _ = _run(
        capsys,
        "plot",
        "--lineage-dir",
        tmp_path,
        PIPELINE,
        "--metric",
        "accuracy",
        "--output",
        tmp_path / "p" / "acc.png",
    )
    assert code == 0 and (tmp_path / "p" / "acc.png").read_bytes().startswith(b"\x89PNG")


def test_record_from_artifacts(tmp_path, capsys) -> None:
    run_dir = tmp_path / "runs" / "20240501T100000Z-abcd1234"
    (run_dir / "input" / "config").mkdir(parents=True)
    (run_dir / "input" / "config" / "hyperparameters.json").write_text('{"lr": "0.1"}')
    (tmp_path / "data" / "train").mkdir(parents=True)
    (tmp_path / "data" / "train" / "x.csv").write_text("1\n")
    (run_dir / "input" / "data").mkdir()
    (run_dir / "input" / "data" / "train").symlink_to(tmp_path / "data" / "train")
    (run_dir / "model").mkdir()
    (run_dir / "model" / "model.pkl").write_bytes(b"model")
    (run_dir / "model" / "metrics.json").write_text('{"acc": 0.5}')
    root = tmp_path / "s"
    code, out, err = _build(
        capsys,
        "--lineage-dir",
        root,
        "record",
        "--kind",
        "run",
        "--run-dir",
        run_dir,
        "--pipeline",
        PIPELINE,
        "--pex-sha256",
        h("pex"),
    )
    assert code == 0, err
    record = Store(root).get(out.strip())
    assert record.succeeded and record.metrics == {"acc": 0.5} and record.hyperparameters == {"lr": "0.1"}
    assert record.get("job.name") == "20240501T100000Z-abcd1234"
    assert record.get("model.sha256") == hashlib.sha256(b"model").hexdigest()
    assert Store(root).find("20240501T100000Z-abcd1234") == [record]

    report = tmp_path / "report.json"
    report.write_text(
        json.dumps(
            {
                "job_name": "churn-1",
                "job_arn": "arn:aws:sagemaker:eu-west-1:1:training-job/churn-1",
                "region": "eu-west-1",
                "image_uri": "r/churn@sha256:" + h("m"),
                "status": "Completed",
                "pipeline_address": PIPELINE,
                "git_sha": "b" * 40,
                "pex_sha256": h("pex"),
                "metrics": {"acc": 0.6},
                "model": {"uri": "s3://b/churn-1/output/model.tar.gz", "sha256": None},
            }
        )
    )
    code, out, err = _build(
        capsys, "--lineage-dir", root, "record", "--kind", "publish", "--report-json", report, "--parent", record.id
    )
    assert code == 0, err
    published = Store(root).get("churn-1")
    assert published.parents == [record.id] and published.metrics == {"acc": 0.6}
    assert published.get("model.uri") == "s3://b/churn-1/output/model.tar.gz"


def test_provenance_and_verify(tmp_path, capsys) -> None:
    image_json = write_image(tmp_path / "dist", LABELS, MANIFEST)
    (tmp_path / "pipeline.yaml").write_text("name: churn\n")
    stmt = tmp_path / "out" / "train.provenance.json"
    code, out, err = _build(
        capsys,
        "--lineage-dir",
        tmp_path / "s",
        "provenance",
        "--image-json",
        image_json,
        "--output",
        stmt,
        "--config",
        tmp_path / "pipeline.yaml",
        "--pants-version",
        "2.17.1",
        "--record",
    )
    assert code == 0, err
    assert json.loads(stmt.read_text())["predicate"]["buildDefinition"]["externalParameters"]["config"]["sha256"]
    assert Store(tmp_path / "s").get(out.strip()).kind == "package"
    digest = json.loads(image_json.read_text())["manifest_digest"]
    assert _run(capsys, "verify-provenance", stmt, "--digest", digest)[0] == 0
    assert _run(capsys, "verify-provenance", stmt, "--image-json", image_json)[0] == 0
    changed = tmp_path / "manifest.json"
    changed.write_bytes(MANIFEST.replace(b"2", b"3"))
    code, _, err = _run(capsys, "verify-provenance", stmt, "--manifest", changed)
    assert code == EXIT_NOT_VERIFIED and "no subject has digest" in err


def test_error_exit_codes(tmp_path, capsys) -> None:
    c = chain(tmp_path)
    code, _, err = _run(capsys, "inspect", "--lineage-dir", tmp_path, "f" * 64)
    assert code == 2 and "no lineage record mentions" in err
    code, _, err = _run(capsys, "runs", "--lineage-dir", tmp_path, "nope:nope")
    assert code == 2
    c.store.put(
        c.package.__class__(
            {
                **c.package.body,
                "created": "2024-06-01T00:00:00Z",
                "pex": {"sha256": c.package.get("pex.sha256")[:6] + "0" * 58},
            }
        )
    )
    code, _, err = _run(capsys, "inspect", "--lineage-dir", tmp_path, c.package.get("pex.sha256")[:6])
    assert code == 2 and "ambiguous" in err and c.package.get("pex.sha256") in err
    c.store.path_of(c.run.id).write_text("{}")
    code, _, err = _run(capsys, "inspect", "--lineage-dir", tmp_path, "--strict", c.package.id)
    assert code == 3 and "delete" in err


@pytest.mark.parametrize(
    "body, problem",
    [
        (b"{}", "contents hash to"),
        (b"[1, 2]", "not a lineage record (record: expected a JSON object, got a JSON list.)"),
        (
            b'{"kind":"run","pipeline":"p:t","created":"2024-01-01T00:00:00Z","metrics":{"auc":"high"},"schema":1}',
            "record.metrics.auc: expected a number",
        ),
        (
            b'{"kind":"run","pipeline":"p:t","created":"2024-01-01T00:00:00Z","job":"j","schema":1}',
            "record.job: expected an object",
        ),
        (
            b'{"kind":"run","pipeline":7,"created":"2024-01-01T00:00:00Z","schema":1}',
            "record.pipeline: expected a non-empty string",
        ),
        (
            b'{"kind":"run","pipeline":"p:t","created":"2024-01-01T00:00:00Z","data":[{"name":1}],"schema":1}',
            "record.data[0].name",
        ),
        (b"\xff\xfe", "not JSON"),
    ],
)
def test_one_corrupt_record_is_skipped_and_named_unless_strict(tmp_path, capsys, body, problem) -> None:
    """Issue 11 items 9 and 12: a record that is a JSON list or has wrong field types was a
    traceback, and one corrupt file made every lineage command exit 3."""
    c = chain(tmp_path)
    bad = (
        c.store.path_of(c.run.id)
        if problem == "contents hash to"
        else c.store.path_of(hashlib.sha256(body).hexdigest())
    )
    bad.write_bytes(body)
    for argv in (["inspect", c.package.id], ["runs"], ["runs", PIPELINE, "--json"], ["previous", PIPELINE]):
        code, out, err = _run(capsys, *argv, "--lineage-dir", tmp_path)
        assert code == 0, err
        assert f"mlbuild: warning: {bad}: " in err and problem in err and "skipped" in err and "Traceback" not in err
    code, out, err = _run(capsys, "runs", "--lineage-dir", tmp_path, "--strict")
    assert (
        code == 3
        and out == ""
        and err.count("\n") == 1
        and err.startswith(f"mlbuild: error: {bad}: ")
        and problem in err
    )


@pytest.mark.parametrize(
    "text, expected",
    [
        ("127.0.0.1:5000/churn@sha256:" + "a" * 64, True),
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/churn:sha256-0123456789abcdef", True),
        ("localhost/churn:1", True),
        ("src/python/pipelines/churn:train", False),  # a Pants address, not an image
        ("churn-train-3f9a1c2b7d4e", False),
    ],
)
def test_what_counts_as_an_image_reference(text, expected) -> None:
    assert looks_like_image_reference(text) is expected


def test_an_unknown_job_on_a_machine_without_aws_is_a_clear_error(tmp_path, capsys, monkeypatch) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    code, _, err = _run(capsys, "inspect", "--lineage-dir", tmp_path, "churn-train-3f9a1c2b7d4e")
    assert code == 2 and "'churn-train-3f9a1c2b7d4e' is neither a record id or digest prefix" in err
    assert "nor a job name found in the lineage store" in err
    assert "./pants mlbuild runs" in err
    assert "AWS" not in err and "FORWARDED_ENV_VARS" not in err and "python -m mlbuild.lineage" not in err
    code, _, err = _run(capsys, "inspect", "--lineage-dir", tmp_path, "churn-train-3f9a1c2b7d4e", "--local-only")
    assert code == 2 and "AWS" not in err


def test_inspect_of_a_word_says_plainly_what_it_is_not_and_how_to_list_what_exists(
    tmp_path, capsys, monkeypatch
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    chain(tmp_path)
    code, _, err = _run(capsys, "inspect", "--lineage-dir", tmp_path, "cancer")
    assert code == 2 and "'cancer' is neither a record id or digest prefix" in err and "record(s))" in err
    assert "`./pants mlbuild runs`" in err and "AWS" not in err and "python -m" not in err
    code, _, err = _run(capsys, "inspect", "--lineage-dir", tmp_path, PIPELINE)  # a pipeline address: its runs
    assert code == 2 and "is a pipeline address" in err and f"`./pants mlbuild runs {PIPELINE}`" in err
    monkeypatch.setenv("AWS_REGION", "eu-west-1")  # still no AWS detour for what can't be a job name
    code, _, err = _run(capsys, "inspect", "--lineage-dir", tmp_path, PIPELINE)
    assert code == 2 and "AWS" not in err
    code, _, err = _run(capsys, "inspect", "--lineage-dir", tmp_path, "f" * 12)  # an unknown hex prefix
    assert (
        code == 2 and "no lineage record mentions" in err and "`./pants mlbuild runs`" in err and "python -m" not in err
    )
    code, out, _ = _run(capsys, "runs", "--lineage-dir", tmp_path)  # what the message suggests works without a pipeline
    assert code == 0 and "accuracy" in out
