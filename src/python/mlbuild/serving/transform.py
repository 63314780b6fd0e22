"""The batch-transform agent: input objects -> POST /invocations -> `<input>.out`, as SageMaker does.

For each input file (a folder's files, sorted, as an S3 prefix lists them):

    SplitType None         the whole file is one request
    SplitType Line         records are lines; empty lines are skipped
      BatchStrategy SingleRecord   one record per request
      BatchStrategy MultiRecord    as many whole records per request as fit in MaxPayloadInMB
    AssembleWith Line      the responses joined, each ending in a newline
    AssembleWith None      the responses' bytes concatenated

The output for `<dir>/a/b.csv` is `<output>/a/b.csv.out`, written to a temporary name and
renamed when the whole file is done, so a failed transform never leaves a `.out` that looks
complete. A record larger than MaxPayloadInMB, or a non-200 answer, stops the transform with an
error naming the input file and its lines. Requests go out up to MaxConcurrentTransforms at a
time, and responses are assembled in input order.
https://docs.aws.amazon.com/sagemaker/latest/dg/batch-transform.html
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTransformJob.html
"""

from __future__ import annotations

import concurrent.futures
import http.client
import os
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple

from mlbuild.runtime.errors import MLBuildError, UserError
from mlbuild.serving.content_types import CSV

MB = 1024 * 1024
SPLIT_TYPES = ("Line", "None")
BATCH_STRATEGIES = ("MultiRecord", "SingleRecord")
ASSEMBLE_WITH = ("Line", "None")
MAX_PAYLOAD_MB_LIMIT = 100  # CreateTransformJob's bound
OUTPUT_SUFFIX = ".out"
INVOCATION_TIMEOUT_SECONDS = 600.0  # ModelClientConfig.InvocationsTimeoutInSeconds' default
CONNECTION_ATTEMPTS = 3


class TransformError(MLBuildError):
    """A request failed or an input cannot be sent; names the input file and its lines."""

    exit_code = 5


@dataclass(frozen=True)
class TransformConfig:
    """CreateTransformJob's TransformInput/TransformOutput fields, with SageMaker's defaults."""

    content_type: str = CSV
    accept: Optional[str] = None  # default: the server answers in the content type
    split_type: str = "Line"
    batch_strategy: str = "MultiRecord"
    max_payload_mb: int = 6
    assemble_with: str = "Line"
    max_concurrent_transforms: int = 1

    def validate(self) -> "TransformConfig":
        for name, value, allowed in (
            ("SplitType", self.split_type, SPLIT_TYPES),
            ("BatchStrategy", self.batch_strategy, BATCH_STRATEGIES),
            ("AssembleWith", self.assemble_with, ASSEMBLE_WITH),
        ):
            if value not in allowed:
                raise UserError(f"transform {name} {value!r}: expected one of {', '.join(allowed)}.")
        if not 1 <= self.max_payload_mb <= MAX_PAYLOAD_MB_LIMIT:
            raise UserError(f"transform MaxPayloadInMB {self.max_payload_mb}: expected 1 to {MAX_PAYLOAD_MB_LIMIT}.")
        if self.max_concurrent_transforms < 1:
            raise UserError(f"transform MaxConcurrentTransforms {self.max_concurrent_transforms}: expected 1 or more.")
        return self


@dataclass(frozen=True)
class FileResult:
    input: Path
    output: Path
    records: int
    requests: int


@dataclass(frozen=True)
class TransformResult:
    files: Tuple[FileResult, ...] = field(default_factory=tuple)
    seconds: float = 0.0

    @property
    def records(self) -> int:
        return sum(f.records for f in self.files)


@dataclass(frozen=True)
class Batch:
    body: bytes
    first_line: int
    last_line: int
    records: int


def input_files(input_path: Path) -> List[Tuple[Path, str]]:
    """(file, path relative to the input) for a file or every file under a folder, sorted."""
    input_path = Path(input_path)
    if input_path.is_file():
        return [(input_path, input_path.name)]
    if not input_path.is_dir():
        raise UserError(f"{input_path}: no such input file or folder. Fix: name the data to transform.")
    found = sorted((p, p.relative_to(input_path).as_posix()) for p in input_path.rglob("*") if p.is_file())
    if not found:
        raise UserError(f"{input_path}: no files to transform.")
    return found


def batches(data: bytes, config: TransformConfig, source: str) -> Iterator[Batch]:
    """The request bodies for one input file's bytes."""
    limit = config.max_payload_mb * MB
    if config.split_type == "None":
        if len(data) > limit:
            raise TransformError(
                f"{source}: {len(data)} bytes, over MaxPayloadInMB {config.max_payload_mb} with SplitType None. Fix: SplitType Line, or a larger MaxPayloadInMB."
            )
        yield Batch(data, 1, data.count(b"\n") + 1, 1)
        return
    pending: List[bytes] = []
    size, first, previous = 0, 0, 0
    for number, line in enumerate(data.splitlines(keepends=True), 1):
        if not line.strip():
            continue
        if not line.endswith((b"\n", b"\r")):
            line += b"\n"
        if len(line) > limit:
            raise TransformError(
                f"{source}: line {number} is {len(line)} bytes, over MaxPayloadInMB {config.max_payload_mb}. Fix: a larger MaxPayloadInMB."
            )
        if pending and (config.batch_strategy == "SingleRecord" or size + len(line) > limit):
            yield Batch(b"".join(pending), first, previous, len(pending))
            pending, size = [], 0
        if not pending:
            first = number
        pending.append(line)
        size += len(line)
        previous = number
    if pending:
        yield Batch(b"".join(pending), first, previous, len(pending))


class InvocationsClient:
    """POST /invocations over one keep-alive connection per thread."""

    def __init__(self, url: str, config: TransformConfig, timeout: float = INVOCATION_TIMEOUT_SECONDS) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise UserError(f"server URL {url!r}: expected http://HOST:PORT.")
        self.host, self.port = parsed.hostname, parsed.port or 80
        self.path = parsed.path.rstrip("/") + "/invocations"
        self.headers = {"Content-Type": config.content_type}
        if config.accept:
            self.headers["Accept"] = config.accept
        self.timeout = timeout
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return conn

    def invoke(self, body: bytes) -> Tuple[int, bytes]:
        for attempt in range(CONNECTION_ATTEMPTS):
            conn = self._connection()
            try:
                conn.request("POST", self.path, body=body, headers=self.headers)
                response = conn.getresponse()
                return response.status, response.read()
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine) as e:
                # NB: a sync worker closes the connection after each answer; a request on a
                # closed keep-alive connection fails here and is sent again on a new one.
                conn.close()
                self._local.conn = None
                if attempt == CONNECTION_ATTEMPTS - 1:
                    raise TransformError(f"cannot reach the server at {self.host}:{self.port}: {e}") from None
        raise AssertionError("unreachable")


def wait_until_ready(url: str, timeout: float = 60.0) -> None:
    """GET /ping until 200, as the transform agent does before sending records."""
    deadline = time.monotonic() + timeout
    parsed = urllib.parse.urlsplit(url)
    last = ""
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port or 80, timeout=5)
            conn.request("GET", parsed.path.rstrip("/") + "/ping")
            status = conn.getresponse().status
            conn.close()
            if status == 200:
                return
            last = f"/ping answered {status}"
        except OSError as e:
            last = str(e)
        time.sleep(0.1)
    raise TransformError(f"the server at {url} was not ready after {timeout:.0f}s ({last}).")


def transform_file(
    client: InvocationsClient,
    path: Path,
    output: Path,
    config: TransformConfig,
    source: str,
    pool: concurrent.futures.Executor,
) -> FileResult:
    parts = list(batches(path.read_bytes(), config, source))
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as out:
            for batch, (status, body) in zip(parts, pool.map(lambda b: client.invoke(b.body), parts)):
                if status != 200:
                    first_line = body.decode(errors="replace").strip().splitlines()[:1]
                    raise TransformError(
                        f"{source}: lines {batch.first_line}-{batch.last_line}: the server answered {status}: "
                        f"{first_line[0] if first_line else '(empty body)'}"
                    )
                out.write(body)
                if config.assemble_with == "Line" and body and not body.endswith(b"\n"):
                    out.write(b"\n")
        os.replace(temporary, output)
    finally:
        if temporary.exists():
            temporary.unlink()
    return FileResult(path, output, sum(b.records for b in parts), len(parts))


def run_transform(
    url: str,
    input_path: Path,
    output_dir: Path,
    config: TransformConfig = TransformConfig(),
    log: Callable[[str], None] = lambda line: None,
) -> TransformResult:
    """Transform every input file through the server at `url`; outputs under `output_dir`."""
    config.validate()
    files = input_files(Path(input_path))
    output_dir = Path(output_dir)
    if Path(input_path).is_dir() and output_dir.resolve().is_relative_to(Path(input_path).resolve()):
        raise UserError(f"{output_dir}: the output folder is inside the input {input_path}. Fix: write it elsewhere.")
    client = InvocationsClient(url, config)
    wait_until_ready(url)
    started = time.monotonic()
    results = []
    with concurrent.futures.ThreadPoolExecutor(config.max_concurrent_transforms) as pool:
        for path, rel in files:
            result = transform_file(client, path, output_dir / (rel + OUTPUT_SUFFIX), config, str(path), pool)
            log(f"{rel}: {result.records} records in {result.requests} requests -> {result.output}")
            results.append(result)
    return TransformResult(tuple(results), time.monotonic() - started)
