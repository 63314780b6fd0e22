"""Bytecode compiled at build time, so a new container imports without compiling.

A fresh container has no `__pycache__`: every start would compile numpy, scipy and
scikit-learn again (over a second on SageMaker, on every host of every job). The image
instead ships `.pyc` files made from the locked sources:

  * "unchecked-hash" pycs (PEP 552): valid by construction (they come from the exact source
    bytes beside them), never compared with a file's mtime, never rewritten; the `source
    hash` field still names the source they were made from;
  * compiled with the image's own file names (`co_filename` = the path in the image), so
    tracebacks name the files a user can open in the container;
  * only by a builder whose interpreter has the image Python's cache tag: the magic number
    of another minor version would make them dead weight (refused, not skipped).

The same holds for every `.py` an image ships: the Debian base's standard library (Debian
compiles it in a post-install script, which an offline rootfs build never runs) and the
pipeline's own code in the top layer. Bytecode that a *run* left behind is never taken
(layer.py drops it from every input); this module is the only source of `.pyc` files in a
layer.
"""

from __future__ import annotations

import importlib.util
import posixpath
import sys
from importlib import _bootstrap_external

from mlbuild.oci.errors import SpecError


def require_cache_tag(tag: str, where: str, fix: str = "or leave `bytecode` out") -> None:
    """Refuse to compile for an interpreter whose bytecode this builder cannot write."""
    ours = sys.implementation.cache_tag
    if tag != ours:
        raise SpecError(
            f"{where}: bytecode for {tag!r} requested, but the builder runs {ours!r}. "
            f"Fix: build with the image's Python minor version, {fix}."
        )


def pyc_path(source_path: str, tag: str) -> str:
    """'a/b/mod.py' -> 'a/b/__pycache__/mod.<tag>.pyc' (the name the import system looks for)."""
    folder, name = posixpath.split(source_path)
    return posixpath.join(folder, "__pycache__", f"{name[: -len('.py')]}.{tag}.pyc")


def compile_source(image_path: str, source: bytes) -> bytes | None:
    """The unchecked-hash pyc of `source` as it would be imported from `/image_path`.

    None for a file Python cannot compile (packages ship templates and Python 2 leftovers
    that are never imported; compileall skips them the same way).
    """
    try:
        code = compile(source, "/" + image_path, "exec", dont_inherit=True, optimize=0)
    except (SyntaxError, ValueError):
        return None
    return bytes(_bootstrap_external._code_to_hash_pyc(code, importlib.util.source_hash(source), checked=False))  # type: ignore[attr-defined]  # NB: private, so not in typeshed
