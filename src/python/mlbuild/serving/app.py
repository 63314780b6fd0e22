"""The WSGI app of SageMaker's hosting contract: /ping and /invocations.

    GET  /ping                   200 once the model is loaded (the app is built with it)
    POST /invocations            records in (Content-Type), predictions out (Accept)
    GET  /execution-parameters   what batch transform may ask for (MaxPayloadInMB, ...)

When the model failed to load, `LoadFailedApp` serves instead: every request, /ping included,
is a 500 naming the failure, so SageMaker's health check fails with the reason in its answer.

Bad requests get a one-line text/plain answer saying what is wrong and the fix: 400 (malformed
body, wrong column count), 405, 406 (unsupported Accept), 413 (over the payload limit, refused
before the body is read), 415 (unsupported Content-Type). A failing `predict` is a 500 whose
body names the stage and the pipeline's line; the traceback goes to the server log only.
https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable, Iterable, List, Optional, Tuple

from mlbuild.runtime.pipeline import RecordError
from mlbuild.serving.content_types import RequestError, negotiate, parse_records, request_type, serialise
from mlbuild.serving.predictor import PredictFailed, Predictor

log = logging.getLogger("mlbuild.serving")

# NB: SageMaker real-time endpoints take at most 6 MB per request; batch transform sets
# SAGEMAKER_MAX_PAYLOAD_IN_MB in the container to the job's MaxPayloadInMB (up to 100).
DEFAULT_MAX_PAYLOAD_MB = 6
MAX_PAYLOAD_ENV_VAR = "SAGEMAKER_MAX_PAYLOAD_IN_MB"
MB = 1024 * 1024

StartResponse = Callable[[str, List[Tuple[str, str]]], Any]
REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    411: "Length Required",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
}


class PayloadTooLarge(RequestError):
    status = 413


class InvocationsApp:
    """A WSGI callable serving one loaded `Predictor`."""

    def __init__(self, predictor: Predictor, max_payload_mb: int = DEFAULT_MAX_PAYLOAD_MB, workers: int = 1) -> None:
        self.predictor = predictor
        self.max_payload_mb = max_payload_mb
        self.workers = workers

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if path == "/invocations":
            if method != "POST":
                return _answer(
                    start_response, 405, "POST /invocations with records in the body.\n", [("Allow", "POST")]
                )
            return self._invocations(environ, start_response)
        if path == "/ping":
            return _answer(start_response, 200, "", [])
        if path == "/execution-parameters":
            body = json.dumps(
                {
                    "MaxConcurrentTransforms": self.workers,
                    "BatchStrategy": "MULTI_RECORD",
                    "MaxPayloadInMB": self.max_payload_mb,
                }
            )
            return _answer(start_response, 200, body, [], "application/json")
        return _answer(start_response, 404, f"no {path}: this server has GET /ping and POST /invocations.\n", [])

    def _invocations(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        try:
            content_type = request_type(environ.get("CONTENT_TYPE"))
            accept = negotiate(environ.get("HTTP_ACCEPT"), content_type)
            records = parse_records(self._body(environ), content_type)
            predictions = self.predictor.predict(records)
            body = serialise(predictions, accept)
        except RequestError as e:
            log.warning("POST /invocations: %d %s", e.status, e)
            return _answer(start_response, e.status, f"{e}\n", [])
        except RecordError as e:
            log.warning("POST /invocations: 400 %s", e)
            return _answer(start_response, 400, f"{e}\n", [])
        except PredictFailed as e:
            log.error("POST /invocations: 500 %s", e)
            return _answer(start_response, 500, f"{e}\n", [])
        except Exception as e:  # NB: mlbuild's own bug: logged in full, never shown to the client
            log.exception("POST /invocations: 500 internal error")
            return _answer(start_response, 500, f"internal error ({type(e).__name__}); see the server log\n", [])
        return _answer(start_response, 200, body, [], accept)

    def _body(self, environ: dict) -> bytes:
        limit = self.max_payload_mb * MB
        length: Optional[str] = environ.get("CONTENT_LENGTH")
        stream = environ["wsgi.input"]
        if length:
            try:
                size = int(length)
            except ValueError:
                raise RequestError(f"Content-Length {length!r} is not a number.") from None
            if size > limit:
                raise PayloadTooLarge(_too_large(size, self.max_payload_mb))
            return stream.read(size)
        body = stream.read(limit + 1)  # NB: chunked: read one byte past the limit to see it is over
        if len(body) > limit:
            raise PayloadTooLarge(_too_large(None, self.max_payload_mb))
        return body


class LoadFailedApp:
    """The WSGI callable that serves when no model could be loaded: a 500 for every request,
    saying why (`reason`: the exception's line)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        return _answer(start_response, 500, f"the model failed to load: {self.reason}\n", [])


def _too_large(size: Optional[int], limit_mb: int) -> str:
    got = f"{size} bytes" if size is not None else "the body"
    return (
        f"payload too large: {got} over the {limit_mb} MB limit ({MAX_PAYLOAD_ENV_VAR} or --max-payload-mb). "
        f"Fix: send fewer records per request (batch transform: a smaller MaxPayloadInMB)."
    )


def _answer(
    start_response: StartResponse,
    status: int,
    body: Any,
    headers: List[Tuple[str, str]],
    content_type: str = "text/plain; charset=utf-8",
) -> List[bytes]:
    data = body.encode() if isinstance(body, str) else body
    start_response(
        f"{status} {REASONS.get(status, '')}",
        [("Content-Type", content_type), ("Content-Length", str(len(data))), *headers],
    )
    return [data]
