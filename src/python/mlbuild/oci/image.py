"""An image (config + layers + manifest annotations) and the pure transforms over it.

Transforms return new Images and never touch disk, like go-containerregistry's `mutate`.
The JSON forms are canonical (sorted keys, no whitespace), so equal images have equal
digests. https://github.com/opencontainers/image-spec/blob/v1.1.0/config.md
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

from mlbuild.oci.descriptor import LINUX_AMD64, OCI_CONFIG, OCI_MANIFEST, Descriptor, Platform
from mlbuild.oci.determinism import CREATED
from mlbuild.oci.digest import digest_of
from mlbuild.oci.layer import Layer

# Docker's PATH when an image sets none: https://github.com/moby/moby/blob/v24.0.0/oci/defaults.go#L14
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def empty_config(platform: Platform = LINUX_AMD64) -> dict[str, Any]:
    return {
        **platform.to_json(),
        "created": CREATED,
        "config": {"Env": [f"PATH={DEFAULT_PATH}"]},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    }


@dataclass(frozen=True)
class Image:
    config: Mapping[str, Any] = field(default_factory=empty_config)  # the full config JSON
    layers: tuple[Layer, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)  # manifest annotations

    @property
    def platform(self) -> Platform:
        return Platform(str(self.config.get("os", "")), str(self.config.get("architecture", "")))

    @property
    def runtime_config(self) -> Mapping[str, Any]:
        return self.config.get("config") or {}

    def env(self) -> dict[str, str]:
        pairs = (item.split("=", 1) for item in self.runtime_config.get("Env") or [])
        return {p[0]: (p[1] if len(p) > 1 else "") for p in pairs}

    def config_bytes(self) -> bytes:
        return canonical_json(self.config)

    def config_descriptor(self) -> Descriptor:
        data = self.config_bytes()
        return Descriptor(OCI_CONFIG, digest_of(data), len(data))

    def manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": self.config_descriptor().to_json(),
            "layers": [layer.descriptor.to_json() for layer in self.layers],
        }
        if self.annotations:
            out["annotations"] = dict(sorted(self.annotations.items()))
        return out

    def manifest_bytes(self) -> bytes:
        return canonical_json(self.manifest())

    def manifest_descriptor(self) -> Descriptor:
        data = self.manifest_bytes()
        return Descriptor(OCI_MANIFEST, digest_of(data), len(data), platform=self.platform)


def add_layer(image: Image, layer: Layer, created_by: str = "mlbuild") -> Image:
    config = copy.deepcopy(dict(image.config))
    rootfs = config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    rootfs["diff_ids"] = [*rootfs.get("diff_ids", []), layer.diff_id]
    config["history"] = [*config.get("history", []), {"created": CREATED, "created_by": created_by}]
    return replace(image, config=config, layers=(*image.layers, layer))


def set_config(
    image: Image,
    *,
    entrypoint: Sequence[str] | None = None,
    cmd: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    workdir: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> Image:
    """Entrypoint/Cmd/WorkingDir replace; Env and Labels merge key by key (new keys sorted)."""
    config = copy.deepcopy(dict(image.config))
    runtime = config.setdefault("config", {})
    if entrypoint is not None:
        runtime["Entrypoint"] = list(entrypoint)
    if cmd is not None:
        runtime["Cmd"] = list(cmd)
    if workdir is not None:
        runtime["WorkingDir"] = workdir
    if env:
        merged = {**image.env(), **{k: env[k] for k in sorted(env)}}
        runtime["Env"] = [f"{k}={v}" for k, v in merged.items()]
    if labels:
        runtime["Labels"] = dict(sorted({**(runtime.get("Labels") or {}), **labels}.items()))
    return replace(image, config=config)


def set_annotations(image: Image, annotations: Mapping[str, str]) -> Image:
    return replace(image, annotations={**image.annotations, **annotations})


# Fields that record where and when a base image was built, not what it contains.
_VOLATILE_CONFIG_KEYS = ("container", "container_config", "docker_version")


def canonical(image: Image) -> Image:
    """Pin the timestamps and drop build-host fields (cf. go-containerregistry `mutate.Canonical`)."""
    config = copy.deepcopy(dict(image.config))
    config["created"] = CREATED
    for key in _VOLATILE_CONFIG_KEYS:
        config.pop(key, None)
    config.get("config", {}).pop("Hostname", None)
    config["history"] = [{**h, "created": CREATED} for h in config.get("history", [])]
    return replace(image, config=config)
