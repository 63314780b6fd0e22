"""SageMaker resource tags: mlbuild's provenance tags and their encoding.

SageMaker tags allow keys of 1-128 and values of 0-256 characters from
`[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]` (letters, spaces, digits and `_.:/=+-@`), at most 50 tags.
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_Tag.html

Encoding (reversible, see `decode_value`): every character outside that set, and `+`
itself, becomes `+XX` per UTF-8 byte (upper-case hex), so `//src:train#gpu` is stored as
`//src:train+23gpu`. A value still longer than 256 characters keeps its first 239
characters and ends in `=` plus 16 hex of the sha256 of the whole original value; such a
value is not decodable, only comparable.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Dict, List, Mapping

MAX_KEY = 128
MAX_VALUE = 256
MAX_TAGS = 50
_SAFE_PUNCTUATION = set("_.:/=-@")

PIPELINE_ADDRESS = "mlbuild:pipeline-address"
GIT_SHA = "mlbuild:git-sha"
PEX_SHA256 = "mlbuild:pex-sha256"
IMAGE_DIGEST = "mlbuild:image-digest"


def _safe(ch: str) -> bool:
    # NB: \p{L}, \p{Z}, \p{N} are Unicode general categories; Python's `re` lacks \p{...}.
    return ch in _SAFE_PUNCTUATION or unicodedata.category(ch)[0] in "LZN"


def encode_value(value: str) -> str:
    out = []
    for ch in value:
        out.append(ch if _safe(ch) else "".join(f"+{b:02X}" for b in ch.encode("utf-8")))
    encoded = "".join(out)
    if len(encoded) > MAX_VALUE:
        digest = hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]
        encoded = encoded[: MAX_VALUE - 17] + "=" + digest
    return encoded


def decode_value(encoded: str) -> str:
    return re.sub(
        r"(?:\+[0-9A-F]{2})+",
        lambda m: bytes.fromhex(m.group(0).replace("+", "")).decode("utf-8", "replace"),
        encoded,
    )


def provenance_tags(pipeline_address: str, git_sha: str, pex_sha256: str, image_digest: str) -> List[Dict[str, str]]:
    values = {
        PIPELINE_ADDRESS: pipeline_address,
        GIT_SHA: git_sha,
        PEX_SHA256: pex_sha256,
        IMAGE_DIGEST: image_digest,
    }
    return [{"Key": key, "Value": encode_value(value)} for key, value in values.items()]


def tags_to_dict(tags: List[Mapping[str, str]]) -> Dict[str, str]:
    return {t["Key"]: decode_value(t.get("Value", "")) for t in tags}
