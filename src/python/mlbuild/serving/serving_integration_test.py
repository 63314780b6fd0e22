"""`serve` for real: on loopback serving churn and iris models trained from the sample data.

The predictions over HTTP (and through the batch transform) must equal calling the pipeline's
`predict` in-process on the same records.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from mlbuild.serving.cli import main
from mlbuild.serving.local_server import ServerStartError, local_server, stop, wait_for_port
from mlbuild.serving.predictor import Predictor
from mlbuild.serving.testing import REPO_SRC, pipeline_environ, train_real


def post(url: str, body: bytes, headers: Dict[str, str]) -> Tuple[int, bytes]:
    request = urllib.request.Request(f"{url}/invocations", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def records_without_label(path: Path, label: str) -> List[List[str]]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [[value for key, value in row.items() if key != label] for row in rows]


def as_csv(rows: List[List[str]]) -> bytes:
    return "".join(",".join(row) + "\n" for row in rows).encode()


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory) -> Tuple[Predictor, Path]:
    pipeline, run_dir = train_real("churn", tmp_path_factory.mktemp("runs"))
    return Predictor.load(pipeline, run_dir, run_dir / "model"), run_dir


def environ(name: str, **extra: str) -> Dict[str, str]:
    return {**os.environ, **pipeline_environ(name), **extra}


def test_churn_over_http_equals_predict_in_process_and_bad_inputs_are_clear(churn: Tuple[Predictor, Path]) -> None:
    predictor, run_dir = churn
    records = records_without_label(REPO_SRC / "pipelines/churn/data/validation/churn.csv", "churned")
    expected = predictor.predict(records)
    with local_server(run_dir / "model", workers=2, environ=environ("churn", SAGEMAKER_MAX_PAYLOAD_IN_MB="1")) as url:
        with urllib.request.urlopen(f"{url}/ping", timeout=10) as ping:
            assert ping.status == 200
        status, body = post(url, as_csv(records), {"Content-Type": "text/csv"})
        assert status == 200
        assert [float(line) for line in body.decode().splitlines()] == expected  # repr round-trips floats exactly
        status, body = post(
            url,
            json.dumps({"instances": records[:3]}).encode(),
            {"Content-Type": "application/json", "Accept": "application/jsonlines"},
        )
        assert (status, [json.loads(line) for line in body.decode().splitlines()]) == (200, expected[:3])

        assert post(url, as_csv([r[:-1] for r in records[:2]]), {"Content-Type": "text/csv"}) == (
            400,
            b"record 1 has 9 columns; expected 10: customer_id,tenure_months,contract,monthly_charges,total_charges,"
            b"internet_service,support_calls,paperless_billing,payment_method,senior_citizen (the data's columns without churned).\n",
        )
        status, body = post(url, b"C1,x,two-year,1,1,fiber,1,1,mailed-check,0\n", {"Content-Type": "text/csv"})
        assert status == 400 and b"must be numbers" in body
        assert post(url, b'C1,"12\n', {"Content-Type": "text/csv"})[0] == 400
        assert post(url, as_csv(records[:1]), {"Content-Type": "image/png"})[0] == 415
        assert post(url, as_csv(records[:1]), {"Content-Type": "text/csv", "Accept": "image/png"})[0] == 406
        status, body = post(url, as_csv(records) * 20, {"Content-Type": "text/csv"})
        assert status == 413 and b"over the 1 MB limit" in body


def test_local_batch_transform_of_the_validation_channel_matches_predict(
    churn: Tuple[Predictor, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    predictor, run_dir = churn
    records = records_without_label(REPO_SRC / "pipelines/churn/data/validation/churn.csv", "churned")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "churn.csv").write_bytes(as_csv(records))
    for name, value in pipeline_environ("churn").items():
        monkeypatch.setenv(name, value)
    with tarfile.open(tmp_path / "model.tar.gz", "w:gz") as tar:  # NB: as a training job leaves the model
        for path in sorted((run_dir / "model").iterdir()):
            tar.add(path, arcname=path.name)
    code = main(
        [
            "transform",
            str(tmp_path / "in"),
            "--output",
            str(tmp_path / "out"),
            "--model-dir",
            str(tmp_path / "model.tar.gz"),
            "--workers",
            "2",
            "--batch-strategy",
            "SingleRecord",
            "--max-concurrent-transforms",
            "4",
        ]
    )
    assert code == 0
    lines = (tmp_path / "out" / "churn.csv.out").read_text().splitlines()
    assert [float(line) for line in lines] == predictor.predict(records)


def test_iris_predicts_species_with_the_default_stages(tmp_path: Path) -> None:
    pipeline, run_dir = train_real("iris", tmp_path / "runs")
    records = records_without_label(REPO_SRC / "pipelines/iris/data/validation/iris.csv", "species")
    expected = Predictor.load(pipeline, run_dir, run_dir / "model").predict(records)
    assert set(expected) <= {"setosa", "versicolor", "virginica"}
    with local_server(run_dir / "model", environ=environ("iris")) as url:
        status, body = post(url, as_csv(records), {"Content-Type": "text/csv", "Accept": "application/json"})
        assert (status, json.loads(body)) == (200, {"predictions": expected})
        status, body = post(url, b"1,2,3\n", {"Content-Type": "text/csv"})
        assert (status, body) == (
            400,
            b"each record must have 4 columns (the training columns without the label), got 3.\n",
        )


def test_serve_without_a_model_stays_up_and_its_ping_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    log = tmp_path / "serve.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlbuild.serving", "--bind", "127.0.0.1:0", "--port-file", str(tmp_path / "port")],
            env={**environ("iris", MLBUILD_ML_BASE_DIR=str(tmp_path)), "PYTHONPATH": os.pathsep.join(sys.path)},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{wait_for_port(tmp_path / 'port', proc, log)}"
        with pytest.raises(urllib.error.HTTPError) as ping:
            urllib.request.urlopen(f"{url}/ping", timeout=30)
        assert ping.value.code == 500
        assert (
            ping.value.read().decode()
            == f"the model failed to load: {tmp_path}/model/model.pkl: no model to load (it has nothing). "
            "Fix: serve the model folder of a finished training run (its model/ or an unpacked model.tar.gz), "
            "or define load_model(ctx, model_dir) in the pipeline to read what its save() writes.\n"
        )
        assert post(url, b"1,2,3,4\n", {"Content-Type": "text/csv"})[0] == 500
    finally:
        stop(proc)
    output = log.read_text()
    assert proc.returncode == 0 and f"{tmp_path}/model/model.pkl: no model to load (it has nothing)" in output
    assert "Traceback" not in output, output


def test_a_server_that_cannot_start_is_reported_with_the_end_of_its_log(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    with pytest.raises(
        ServerStartError,
        match=r"serve is up but GET /ping answered 500: the model failed to load: .*model\.pkl: no model to load",
    ):
        with local_server(tmp_path / "model", environ=environ("iris")):
            pass
