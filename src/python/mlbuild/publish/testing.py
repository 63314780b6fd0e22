"""Test helpers for the AWS publish backend: a real registry on loopback and what it saw.

(moto, for ECR and SageMaker, is `mlbuild.sagemaker.moto_server`.) `serve_registry()` runs CNCF distribution
(Debian's `docker-registry`) with htpasswd auth and keeps its access log, so a test can
see which blobs were really uploaded (`uploaded_digests`) rather than trusting mlbuild's
own count. `registry_tags` / `manifest_exists` check what a failed publish left behind.

`fake_run_image` stands in for the local backend's container run, for tests of the job's claim
and reuse rather than of bubblewrap.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

from mlbuild.container_run.outcome import read_outcome
from mlbuild.registry import local_server
from mlbuild.runtime import contract, local_run

# `"PUT /v2/<repo>/blobs/uploads/<uuid>?...digest=sha256%3A... HTTP/1.1" 201` in gorilla's combined log format
_UPLOAD_LINE = re.compile(r'"PUT (?P<path>/v2/\S+/blobs/uploads/\S+) HTTP/[\d.]+" (?P<status>\d{3}) ')


@dataclass(frozen=True)
class Registry:
    host: str  # 127.0.0.1:PORT
    username: str
    password: str
    access_log: Path

    @property
    def creds(self) -> str:
        return f"{self.username}:{self.password}"

    def log_size(self) -> int:
        return self.access_log.stat().st_size

    def uploaded_digests(self, since: int = 0) -> List[str]:
        """Digests of blob uploads the registry completed (201) after byte `since` of its access log."""
        with open(self.access_log, "rb") as f:
            f.seek(since)
            text = f.read().decode(errors="replace")
        found = []
        for m in _UPLOAD_LINE.finditer(text):
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(m["path"]).query)
            if m["status"] == "201" and "digest" in query:
                found.append(query["digest"][0])
        return found


def _get(registry: Registry, path: str, method: str = "GET") -> Tuple[int, bytes]:
    auth = "Basic " + base64.b64encode(registry.creds.encode()).decode()
    accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
    request = urllib.request.Request(
        f"http://{registry.host}{path}", method=method, headers={"Authorization": auth, "Accept": accept}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def registry_tags(registry: Registry, repository: str) -> List[str]:
    """The repository's tags; [] when it does not exist (the registry's 404 NAME_UNKNOWN)."""
    status, body = _get(registry, f"/v2/{repository}/tags/list")
    if status == 404:
        return []
    assert status == 200, (status, body)
    return sorted(json.loads(body).get("tags") or [])


def manifest_exists(registry: Registry, repository: str, reference: str) -> bool:
    status, _ = _get(registry, f"/v2/{repository}/manifests/{reference}", method="HEAD")
    return status == 200


@contextmanager
def serve_registry(root: Path, username: str, password: str) -> Iterator[Registry]:
    """`docker-registry serve` on a free loopback port with one bcrypt htpasswd user."""
    root.mkdir(parents=True, exist_ok=True)
    with local_server.serve_registry(
        root, local_server.write_htpasswd(root / "htpasswd", username, password)
    ) as running:
        yield Registry(running.host, username, password, running.access_log)


def ecr_basic_credentials(region: str = "us-east-1", account: Optional[str] = None) -> Tuple[str, str]:
    """(user, password) that boto3's ECR GetAuthorizationToken returns (from moto, via AWS_ENDPOINT_URL)."""
    import boto3

    kwargs = {"registryIds": [account]} if account else {}
    data = boto3.client("ecr", region_name=region).get_authorization_token(**kwargs)["authorizationData"][0]
    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    return user, password


def fake_run_image(trainings: Path):
    """A stand-in for `container_run.runner.run_image` (patch it into `publish.local`): stages a
    real run folder (local_run), "trains" for half a second and appends its pid to `trainings`."""

    def run_image(plan):
        overrides = plan.overrides
        staging = local_run.prepare_run(plan.config, plan.address, Path(plan.data_dir), Path(plan.runs_dir), overrides)
        with open(trainings, "a") as f:  # NB: O_APPEND: one whole line per training
            f.write(f"{os.getpid()}\n")
        time.sleep(0.5)  # NB: long enough that every other publish starts while this one trains
        (staging / contract.MODEL_DIR).mkdir()
        (staging / contract.MODEL_DIR / "model.txt").write_text(f"scale={overrides.get('scale', '2.0')}\n")
        (staging / contract.METRICS_FILE).write_text(json.dumps({"score": 1.5}))
        return read_outcome(local_run.finish_run(staging, succeeded=True), 0)

    return run_image
