"""The one report renderer: specific cells, escaping, the missing mark, the JSON keys."""

from __future__ import annotations

import json

from mlbuild.job_report import MISSING, REPORT_KEYS, JobReport, render_markdown

LOCAL = JobReport(
    "local", "churn-train-1", "Completed", "oci:/s/churn@sha256:aa", pipeline_address="p:train",
    metrics={"auc": 0.851234567, "rows": 100}, model={"uri": "/j/model.tar.gz", "sha256": "ff"},
    run_dir="/runs/1", logs="/runs/1/output/train.log", previous_metrics={"auc": 0.8, "loss": 0.5},
)  # fmt: skip


def test_metric_cells_use_one_format_and_one_missing_mark() -> None:
    text = render_markdown(LOCAL)
    assert "| Metric | this run | previous | change |" in text
    assert "| `auc` | 0.851235 | 0.8 | +0.0512346 (+6.40%) |" in text
    assert f"| `rows` | 100 | {MISSING} | {MISSING} |" in text
    assert f"| `loss` | {MISSING} | 0.5 | {MISSING} |" in text
    assert "| Model | `/j/model.tar.gz` (sha256 `ff`) |" in text
    assert "| Logs | [`/runs/1/output/train.log`](file:///runs/1/output/train.log) |" in text


def test_table_cells_are_escaped_the_same_way_everywhere() -> None:
    report = LOCAL.replace(image_uri="a|b", billing="x\ny", metrics={"m|1": 1.0}, previous_label="main|x")
    text = render_markdown(report)
    assert "| Image | `a\\|b` |" in text and "| Billing | x y |" in text
    assert "| `m\\|1` | 1 |" in text and "| Metric | this run | main\\|x | change |" in text


def test_a_failure_reason_is_fenced_longer_than_its_own_backticks() -> None:
    text = render_markdown(LOCAL.replace(status="Failed", failure_reason="boom ``` | bad"))
    assert "**Failed**" in text and "````\nboom ``` | bad\n````" in text


def test_without_a_previous_run_the_report_says_why() -> None:
    text = render_markdown(
        LOCAL.replace(previous_metrics=None, previous_note="no previous run recorded: no lineage store")
    )
    assert "_No previous run recorded: no lineage store: nothing to compare with._" in text
    assert "| `auc` | 0.851235 | n/a | n/a |" in text
    assert "_No previous run recorded: nothing to compare with._" in render_markdown(
        LOCAL.replace(previous_metrics=None)
    )


def test_the_json_has_one_name_for_each_fact() -> None:
    data = json.loads(LOCAL.replace(metrics={"auc": float("nan")}).to_json())
    assert sorted(data) == list(REPORT_KEYS)
    assert not {"final_metrics", "model_artifact", "artifact_sha256", "created", "log_url"} & set(data)
    assert data["metrics"] == {"auc": "nan"}  # NB: JSON has no NaN
    assert data["versus_previous"][0] == {"metric": "auc", "previous": 0.8, "current": "nan", "change": "nan"}
