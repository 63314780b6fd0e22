"""The batch-transform agent against a real HTTP server (stdlib, in a thread) running the app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlbuild.runtime.errors import UserError
from mlbuild.serving.app import InvocationsApp
from mlbuild.serving.predictor import Predictor, serving_context
from mlbuild.serving.testing import SumModel, fake_pipeline, thread_server
from mlbuild.serving.transform import MB, TransformConfig, TransformError, batches, run_transform


class Recording:
    """The app, plus the request bodies it was sent."""

    def __init__(self, app: InvocationsApp) -> None:
        self.app, self.bodies = app, []  # type: ignore[var-annotated]

    def __call__(self, environ: dict, start_response: Any) -> Any:
        if environ.get("PATH_INFO") == "/invocations":
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            self.bodies.append(body)
            import io

            environ = {**environ, "wsgi.input": io.BytesIO(body)}
        return self.app(environ, start_response)


def make_app(tmp_path: Path, max_payload_mb: int = 6) -> Recording:
    pipeline = fake_pipeline()
    return Recording(
        InvocationsApp(Predictor(pipeline, serving_context(pipeline, tmp_path, tmp_path), SumModel()), max_payload_mb)
    )


def write_inputs(root: Path) -> Path:
    (root / "in" / "part").mkdir(parents=True)
    (root / "in" / "a.csv").write_text("1,2,3\n4,5,6\n\n7,8,9")  # a blank line and no final newline
    (root / "in" / "part" / "b.csv").write_text("0,0,1\n")
    return root / "in"


def test_multirecord_line_transform_writes_dot_out_files_in_input_order(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    with thread_server(app) as url:
        result = run_transform(url, write_inputs(tmp_path), tmp_path / "out")
    assert (tmp_path / "out" / "a.csv.out").read_text() == "6.0\n15.0\n24.0\n"
    assert (tmp_path / "out" / "part" / "b.csv.out").read_text() == "1.0\n"
    assert result.records == 4 and [f.requests for f in result.files] == [1, 1]
    assert app.bodies[0] == b"1,2,3\n4,5,6\n7,8,9\n"
    assert not [p for p in (tmp_path / "out").rglob("*") if p.name.endswith(".tmp")]


def test_single_record_sends_one_line_per_request(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    with thread_server(app) as url:
        run_transform(
            url,
            write_inputs(tmp_path),
            tmp_path / "out",
            TransformConfig(batch_strategy="SingleRecord", max_concurrent_transforms=3),
        )
    assert sorted(app.bodies) == sorted([b"1,2,3\n", b"4,5,6\n", b"7,8,9\n", b"0,0,1\n"])
    assert (tmp_path / "out" / "a.csv.out").read_text() == "6.0\n15.0\n24.0\n"  # order kept with 3 in flight


def test_multirecord_packs_whole_lines_up_to_max_payload() -> None:
    line = b"1," * (300 * 1024) + b"1\n"  # ~600 KB a record
    parts = list(batches(line * 5, TransformConfig(max_payload_mb=1), "f.csv"))
    assert [p.records for p in parts] == [1, 1, 1, 1, 1]
    parts = list(batches(line * 5, TransformConfig(max_payload_mb=2), "f.csv"))
    assert [p.records for p in parts] == [3, 2] and [(p.first_line, p.last_line) for p in parts] == [(1, 3), (4, 5)]
    assert all(len(p.body) <= 2 * MB for p in parts)


def test_split_type_none_sends_the_whole_file_and_assemble_none_concatenates(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    with thread_server(app) as url:
        run_transform(
            url,
            write_inputs(tmp_path),
            tmp_path / "out",
            TransformConfig(split_type="None", assemble_with="None", accept="application/json"),
        )
    assert json.loads((tmp_path / "out" / "a.csv.out").read_text()) == {"predictions": [6.0, 15.0, 24.0]}
    assert app.bodies[0] == b"1,2,3\n4,5,6\n\n7,8,9"


def test_a_record_over_max_payload_names_the_file_and_line() -> None:
    with pytest.raises(TransformError, match=r"f\.csv: line 2 is \d+ bytes, over MaxPayloadInMB 1"):
        list(batches(b"1,2,3\n" + b"9" * (MB + 1) + b"\n", TransformConfig(max_payload_mb=1), "f.csv"))


def test_a_refused_request_fails_the_transform_naming_the_lines_and_leaves_no_out_file(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.csv").write_text("1,2,3\n1,2\n")
    with thread_server(make_app(tmp_path)) as url:
        with pytest.raises(
            TransformError, match=r"bad\.csv: lines 1-2: the server answered 400: CSV row 2 has 2 columns"
        ):
            run_transform(url, tmp_path / "in", tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize(
    "config, message",
    [
        (TransformConfig(split_type="RecordIO"), "SplitType 'RecordIO'"),
        (TransformConfig(batch_strategy="All"), "BatchStrategy"),
        (TransformConfig(max_payload_mb=101), "MaxPayloadInMB 101"),
        (TransformConfig(assemble_with="Json"), "AssembleWith"),
    ],
)
def test_invalid_settings_are_refused_before_anything_is_sent(
    tmp_path: Path, config: TransformConfig, message: str
) -> None:
    with pytest.raises(UserError, match=message):
        run_transform("http://127.0.0.1:9", write_inputs(tmp_path), tmp_path / "out", config)


def test_a_missing_input_and_an_output_inside_the_input_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such input"):
        run_transform("http://127.0.0.1:9", tmp_path / "missing", tmp_path / "out")
    inputs = write_inputs(tmp_path)
    with pytest.raises(UserError, match="inside the input"):
        run_transform("http://127.0.0.1:9", inputs, inputs / "out")
