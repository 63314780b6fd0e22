"""The job's image by digest, never rebuilt: from the local OCI store, or pulled into the cache.

    oci:<store>/<repo>@sha256:D   the local backend's store: read in place
    <registry>/<repo>@sha256:D    pulled once into <cache>/replay/images/<hex of D>/ (blobs
                                  verified by digest, shared through <cache>/replay/blobs/);
                                  a later replay finds the layout there and downloads nothing

Also the pipeline config the job ran with, read from the image's own app layer (the repo's
copy may have changed since).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Optional, TextIO

from mlbuild.names import image_entries, ref_name
from mlbuild.oci.digest import hex_of
from mlbuild.oci.image import Image
from mlbuild.oci.layer_reader import iter_layer, read_member
from mlbuild.oci.layout import INDEX_FILE, read_index, read_layout
from mlbuild.registry.pull import pull_to_layout
from mlbuild.registry.reference import parse_reference
from mlbuild.runtime.errors import PlatformError, UserError
from mlbuild.runtime.pipeline import CONFIG_ENV_VAR, MODULE_ENV_VAR
from mlbuild.stale_temps import make_temp_dir, remove_stale_temps, remove_tree

LOCAL_STORE_SCHEME = "oci:"
PULLED_REF = "replay"
# NB: where the image keeps the pipeline's code; the same value as pants-plugins'
# mlbuild_pants/image.py APP_DIR (the plugin cannot be imported from here).
APP_DIR = "opt/mlbuild/app"


@dataclass(frozen=True)
class JobImage:
    layout_dir: Path
    ref: Optional[str]
    image: Image
    pulled: bool  # False: found in the local store or the cache, nothing downloaded
    fetched_bytes: int = 0


def local_store_image(image_uri: str, digest: str) -> JobImage:
    """`oci:<store>/<repo>@D`: the image in the local backend's OCI store."""
    path = Path(image_uri[len(LOCAL_STORE_SCHEME) :].rsplit("@", 1)[0])
    store = next((p for p in (path, *path.parents) if (p / INDEX_FILE).is_file()), None)
    if store is None:
        raise UserError(
            f"image {image_uri}: the local image store {path.parent} is gone. "
            "Fix: publish the pipeline again from the job's revision (it rebuilds the same digest)."
        )
    ref = next(
        (ref_name(m) for m in image_entries(read_index(store), None) if m.get("digest") == digest and ref_name(m)),
        None,
    )
    if ref is None:
        raise UserError(
            f"image {digest} is no longer in the local image store {store}. "
            "Fix: publish the pipeline again from the job's revision (it rebuilds the same digest)."
        )
    return JobImage(store, ref, read_layout(store, ref), pulled=False)


def pulled_image(image_uri: str, cache_dir: Path, progress: Optional[TextIO] = sys.stderr) -> JobImage:
    """`<registry>/<repo>@D` as a layout in the cache: pulled the first time, then reused."""
    ref = parse_reference(image_uri)
    if not ref.digest:
        raise UserError(f"image {image_uri}: not pinned by digest. Fix: replay a job whose image is repo@sha256:….")
    images = Path(cache_dir) / "replay" / "images"
    final = images / hex_of(ref.digest)
    if (final / INDEX_FILE).is_file():
        return JobImage(final, PULLED_REF, read_layout(final, PULLED_REF), pulled=False)
    images.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(images)
    # NB: pulled into a private temp folder and renamed, so a killed pull leaves no layout
    # that a later replay would take for complete.
    tmp = make_temp_dir(images, f".{final.name}.incomplete")
    try:
        result = pull_to_layout(
            image_uri,
            tmp,
            Path(cache_dir) / "replay" / "blobs",
            ref_name=PULLED_REF,
            allow_insecure_http=ref.is_loopback,
            progress=progress,
        )
        if result.digest != ref.digest:
            raise PlatformError(
                f"image {image_uri}: the registry served manifest {result.digest}. Fix: report this registry."
            )
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / INDEX_FILE).is_file():
                raise  # NB: else another replay published the same image first
    finally:
        if tmp.exists():
            remove_tree(tmp)
    return JobImage(final, PULLED_REF, read_layout(final, PULLED_REF), pulled=True, fetched_bytes=result.fetched_bytes)


def job_image(image_uri: str, digest: str, cache_dir: Path, progress: Optional[TextIO] = sys.stderr) -> JobImage:
    if image_uri.startswith(LOCAL_STORE_SCHEME):
        return local_store_image(image_uri, digest)
    return pulled_image(image_uri, cache_dir, progress)


def config_path_in_image(image: Image) -> str:
    """`opt/mlbuild/app/<package path>/<config>`: where the runtime reads the config in the image."""
    env = image.env()
    module = env.get(MODULE_ENV_VAR)
    if not module or "." not in module:
        raise UserError(
            f"image: {MODULE_ENV_VAR} is not set in its config, so it was not built by an ml_pipeline target. "
            "Fix: replay a job of an mlbuild pipeline image."
        )
    package = module.rpartition(".")[0].replace(".", "/")
    return str(PurePosixPath(APP_DIR, package, env.get(CONFIG_ENV_VAR) or "pipeline.yaml"))


def config_from_image(image: Image) -> bytes:
    """The pipeline config packaged in the image (the last layer holding it wins)."""
    wanted = config_path_in_image(image)
    for layer in reversed(image.layers):
        for member, tar in iter_layer(layer):
            if member.isfile() and member.name.lstrip("./").lstrip("/") == wanted:
                return b"".join(read_member(layer, tar, member))
    raise UserError(f"image: no /{wanted} in any layer. Fix: replay a job of an mlbuild pipeline image.")
