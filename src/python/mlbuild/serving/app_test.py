"""The WSGI app: /ping, /invocations and every refusal, called as a WSGI server calls it."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import pytest

from mlbuild.runtime.pipeline import RecordError
from mlbuild.serving.app import InvocationsApp
from mlbuild.serving.predictor import Predictor, serving_context
from mlbuild.serving.testing import SumModel, fake_pipeline


def call(
    app: InvocationsApp,
    method: str,
    path: str,
    body: bytes = b"",
    headers: Optional[Dict[str, str]] = None,
    length: Optional[str] = "auto",
) -> Tuple[int, Dict[str, str], bytes]:
    environ: Dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": path, "wsgi.input": io.BytesIO(body)}
    if length == "auto":
        environ["CONTENT_LENGTH"] = str(len(body))
    elif length is not None:
        environ["CONTENT_LENGTH"] = length
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE",) else f"HTTP_{key}"] = value
    seen: Dict[str, Any] = {}

    def start_response(status: str, response_headers: list) -> None:
        seen["status"], seen["headers"] = int(status.split()[0]), dict(response_headers)

    data = b"".join(app(environ, start_response))
    assert int(seen["headers"]["Content-Length"]) == len(data)
    return seen["status"], seen["headers"], data


def make_app(tmp_path: Path, max_payload_mb: int = 6, **stages: Any) -> InvocationsApp:
    pipeline = fake_pipeline(**stages)
    ctx = serving_context(pipeline, tmp_path, tmp_path / "model")
    return InvocationsApp(Predictor(pipeline, ctx, SumModel()), max_payload_mb=max_payload_mb, workers=2)


def test_ping_is_200_and_unknown_paths_404(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    assert call(app, "GET", "/ping")[0] == 200
    assert call(app, "GET", "/nope")[0] == 404
    status, headers, _ = call(app, "GET", "/invocations")
    assert (status, headers["Allow"]) == (405, "POST")
    params = json.loads(call(app, "GET", "/execution-parameters")[2])
    assert params == {"MaxConcurrentTransforms": 2, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}


def test_csv_in_csv_out_with_the_default_predict(tmp_path: Path) -> None:
    status, headers, body = call(
        make_app(tmp_path), "POST", "/invocations", b"1,2,3\n4,5,6.5\n", {"Content-Type": "text/csv"}
    )
    assert (status, headers["Content-Type"], body) == (200, "text/csv", b"6.0\n15.5\n")


def test_accept_chooses_the_response_type(tmp_path: Path) -> None:
    status, headers, body = call(
        make_app(tmp_path),
        "POST",
        "/invocations",
        b"1,2,3\n",
        {"Content-Type": "text/csv", "Accept": "application/json"},
    )
    assert (status, headers["Content-Type"], json.loads(body)) == (200, "application/json", {"predictions": [6.0]})
    status, _, body = call(
        make_app(tmp_path), "POST", "/invocations", b"[1,2,3]\n[1,1,1]\n", {"Content-Type": "application/jsonlines"}
    )
    assert (status, body) == (200, b"6.0\n3.0\n")


@pytest.mark.parametrize(
    "body, headers, status, message",
    [
        (b"1,2\n", {"Content-Type": "text/csv"}, 400, b"must have 3 columns"),
        (b"1,2,3\n4,5\n", {"Content-Type": "text/csv"}, 400, b"CSV row 2 has 2 columns"),
        (b"1,x,3\n", {"Content-Type": "text/csv"}, 400, b"must be numbers"),
        (b"[1,2", {"Content-Type": "application/json"}, 400, b"malformed JSON"),
        (b"1,2,3\n", {"Content-Type": "application/x-npy"}, 415, b"this server takes text/csv"),
        (b"1,2,3\n", {}, 415, b"no Content-Type"),
        (b"1,2,3\n", {"Content-Type": "text/csv", "Accept": "text/html"}, 406, b"Accept 'text/html'"),
    ],
)
def test_bad_requests_get_a_clear_4xx(
    tmp_path: Path, body: bytes, headers: Dict[str, str], status: int, message: bytes
) -> None:
    got_status, got_headers, got_body = call(make_app(tmp_path), "POST", "/invocations", body, headers)
    assert got_status == status and message in got_body and got_headers["Content-Type"].startswith("text/plain")


def test_an_oversized_payload_is_a_413_before_the_body_is_read(tmp_path: Path) -> None:
    app = make_app(tmp_path, max_payload_mb=1)
    status, _, body = call(app, "POST", "/invocations", b"", {"Content-Type": "text/csv"}, length=str(2 * 1024 * 1024))
    assert status == 413 and b"over the 1 MB limit" in body and b"Fix:" in body
    chunked = b"1,2,3\n" * (1024 * 1024 // 6 + 1)  # no Content-Length: read up to the limit, then refuse
    assert call(app, "POST", "/invocations", chunked, {"Content-Type": "text/csv"}, length=None)[0] == 413


def test_a_failing_predict_is_a_500_logged_in_full_with_no_traceback_in_the_body(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def predict(ctx: Any, model: Any, records: Any) -> Any:
        return {"x": 1}["secret-key"]

    with caplog.at_level(logging.ERROR, logger="mlbuild.serving"):
        status, _, body = call(
            make_app(tmp_path, predict=predict), "POST", "/invocations", b"1,2,3\n", {"Content-Type": "text/csv"}
        )
    assert status == 500
    assert b"stage predict() raised KeyError" in body and b"Traceback" not in body and b"secret-key" not in body
    assert "Traceback" in caplog.text and "secret-key" in caplog.text


def test_a_predict_that_returns_the_wrong_count_is_a_500(tmp_path: Path) -> None:
    status, _, body = call(
        make_app(tmp_path, predict=lambda ctx, model, records: [1]),
        "POST",
        "/invocations",
        b"1,2,3\n1,2,3\n",
        {"Content-Type": "text/csv"},
    )
    assert status == 500 and b"returned 1 predictions for 2 records" in body


def test_a_record_error_from_the_pipelines_predict_is_a_400_with_its_message(tmp_path: Path) -> None:
    def predict(ctx: Any, model: Any, records: Any) -> Any:
        raise RecordError("column 2 must be a date")

    status, _, body = call(
        make_app(tmp_path, predict=predict), "POST", "/invocations", b"1,2,3\n", {"Content-Type": "text/csv"}
    )
    assert (status, body) == (400, b"column 2 must be a date\n")


def test_the_pipelines_predict_gets_the_ctx_with_hyperparameter_defaults(tmp_path: Path) -> None:
    def predict(ctx: Any, model: Any, records: Any) -> Any:
        return [ctx.hp["threshold"] for _ in records]

    status, _, body = call(
        make_app(tmp_path, predict=predict), "POST", "/invocations", b"1,2,3\n", {"Content-Type": "text/csv"}
    )
    assert (status, body) == (200, b"0.5\n")
