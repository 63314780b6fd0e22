"""The `ml_pipeline` target: an ML training pipeline as an ordinary build target."""

from __future__ import annotations

import os
import re
from typing import Optional, cast

from pants.backend.python.target_types import (
    EntryPointField,
    InterpreterConstraintsField,
    PythonResolveField,
)
from pants.core.goals.package import OutputPathField
from pants.engine.addresses import Address, AddressInput
from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    BoolField,
    Dependencies,
    IntField,
    InvalidFieldException,
    InvalidTargetException,
    SingleSourceField,
    StringField,
    StringSequenceField,
    Target,
)
from pants.util.strutil import help_text


class MLPipelineDependenciesField(Dependencies):
    help = help_text(
        """
        Addresses of code this pipeline needs beyond what Pants infers.

        The pipeline module (`pipeline`) and the mlbuild runtime are inferred, and so is
        everything they import; list only what inference cannot see, e.g.
        `dependencies=["3rdparty/python#lightgbm"]` for a plugin loaded by name.
        """
    )


class MLPipelineModuleField(EntryPointField):
    alias = "pipeline"
    default = "pipeline.py"  # type: ignore[assignment]  # NB: Pants types EntryPointField's default as None
    help = help_text(
        """
        The module holding the pipeline's stages: `load(ctx)`, optional `featurize(ctx, raw)`,
        `train(ctx, features)`, `evaluate(ctx, model, features)` and optional `save(ctx, model)`.

        A file name in this folder (`pipeline="pipeline.py"`, the default) or a full module
        name (`pipeline="pipelines.churn.pipeline"`). It must live in the same package as
        the config file, which is packaged beside it.

        Example: `ml_pipeline(name="train", pipeline="churn_model.py")`
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address):
        value = super().compute_value(raw_value, address)
        if value is not None and value.function is not None:
            raise InvalidFieldException(
                f"The `{cls.alias}` field of {address} names a function ({value.spec!r}); "
                f'it must name a module. Fix: write `{cls.alias}="{value.module}"` and define '
                "load/train/evaluate in that module."
            )
        return value


class MLPipelineConfigField(SingleSourceField):
    alias = "config"
    required = False
    default = "pipeline.yaml"
    expected_file_extensions = (".yaml", ".yml")
    help = help_text(
        """
        The pipeline's YAML config, beside the BUILD file: hyperparameters with typed defaults,
        data channels (local sample path and S3 URI), and the SageMaker job settings.
        Every key: docs/reference/pipeline-yaml.md in the repo.

        Example: `ml_pipeline(name="train", config="churn.yaml")`
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is not None and os.path.dirname(value):
            raise InvalidFieldException(
                f"The `{cls.alias}` field of {address} is {value!r}, which is not in the target's folder. "
                "Fix: move the config next to the BUILD file (it is packaged beside the pipeline module)."
            )
        return value


class MLPipelineSampleDataField(StringField):
    alias = "sample_data"
    default = "data"
    value: str
    help = help_text(
        """
        The folder of local sample data, relative to the BUILD file, with one subfolder per
        channel (`data/train/`, `data/validation/`). `pants run` trains on it; a channel's
        `local` key in the config can point elsewhere inside it.

        Example: `ml_pipeline(name="train", sample_data="sample")`
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> str:
        value = cast(str, super().compute_value(raw_value, address))  # NB: never None: it has a default
        if os.path.isabs(value) or ".." in value.split("/") or not value.strip():
            raise InvalidFieldException(
                f"The `{cls.alias}` field of {address} is {value!r}. "
                'Fix: give a folder inside the target\'s directory, such as "data".'
            )
        return os.path.normpath(value)


class MLPipelineBaseImageField(StringField):
    alias = "base_image"
    default = "//docker/debian-python3.11:base"
    value: str
    help = help_text(
        """
        The address of the `ml_base_image` target the pipeline's OCI image is built on.

        The default is mlbuild's offline Debian base with Python 3.11. Its Python version
        must match the pipeline's interpreter constraints.

        Example: `ml_pipeline(name="train", base_image="//docker/python-slim:base")`
        """
    )


def base_image_address_input(address: Address, field: MLPipelineBaseImageField) -> AddressInput:
    """The `base_image` field's address, relative to the pipeline's BUILD file."""
    return AddressInput.parse(
        field.value, relative_to=address.spec_path, description_of_origin=f"the `base_image` field of {address}"
    )


class _MegabytesField(IntField):
    """A size in MB, at least 1."""

    value: int

    @classmethod
    def compute_value(cls, raw_value: Optional[int], address: Address) -> int:
        value = cast(int, super().compute_value(raw_value, address))  # NB: never None: subclasses set a default
        if value < 1:
            raise InvalidFieldException(
                f"The `{cls.alias}` field of {address} is {value}. Fix: give a size in MB of at least 1."
            )
        return value


class MLPipelineLargeWheelField(_MegabytesField):
    alias = "layer_split_mb"
    default = 8
    help = help_text(
        """
        Third-party distributions larger than this many MB (as pex packs them) get an image
        layer of their own; the smaller ones share one. A layer's digest depends only on what
        is in it, so two pipelines with torch share its layers byte for byte, and a lock change
        that bumps numpy re-pushes numpy's layer alone. An image may have at most 100 layers:
        raise this to group more.

        Example: `ml_pipeline(name="train", layer_split_mb=32)`
        """
    )


class MLPipelineLayerMaxField(_MegabytesField):
    alias = "layer_max_mb"
    default = 1024
    help = help_text(
        """
        The most content (MB, uncompressed) one dependency layer may hold: a distribution above
        it (torch, the CUDA libraries) is split by path into several layers, each named
        `dep-<name>-<i>of<n>`, since registries and proxies refuse or time out on multi-GB
        uploads. One file larger than this is a layer of its own.

        Example: `ml_pipeline(name="train", layer_max_mb=512)`
        """
    )


class MLPipelinePexLayoutField(StringField):
    alias = "pex_layout"
    valid_choices = ("packed", "zipapp")
    default = "packed"
    value: str
    help = help_text(
        """
        How `pants package` writes the pipeline's PEX (pex's own layouts).

        `packed` (default): a folder, `dist/<path>/<name>.pex/`, run as `python <name>.pex`;
        its wheels (`.deps/`) are stored once under `dist/mlbuild/blobs/` and linked, so a
        code edit rewrites only the code and `PEX-INFO`, whatever the dependencies weigh.
        `zipapp`: one self-contained file, rebuilt whole (all wheels copied) on every code
        edit: seconds for scikit-learn, a minute and gigabytes per edit for torch.

        Example: `ml_pipeline(name="train", pex_layout="zipapp")`
        """
    )


class MLPipelineOciArchiveField(BoolField):
    alias = "oci_archive"
    default = False
    help = help_text(
        """
        Also write the image as one oci-archive, `dist/<path>/<name>.oci.tar` (what
        `skopeo copy oci-archive:` and `podman load` read).

        Off by default: the archive is every byte of the image written again on every code
        edit (3 GB for torch), while the OCI layout beside it (`<name>.oci/`) is what
        `skopeo copy oci:`, `pants publish` and `pants run --mlbuild-container` read.

        Example: `ml_pipeline(name="train", oci_archive=True)`
        """
    )


class MLPipelineRegistriesField(StringSequenceField):
    alias = "registries"
    help = help_text(
        """
        Registries `pants publish` pushes this pipeline's image to, besides the training job's
        own: `@alias` of an entry of `[mlbuild].registries` in pants.toml, or a `host[:port]`.
        Unset: every registry marked `default = true` there; `[]`: none.
        """
    )


class MLPipelineRepositoryField(StringField):
    alias = "repository"
    help = help_text(
        """
        The repository this pipeline's image is pushed to in its `registries` (unset:
        `[mlbuild].default_repository`, `{pipeline}`). Placeholders: `{name}` (target name),
        `{directory}` (the BUILD file's folder), `{pipeline}` (e.g. `churn-train`). The
        training job's ECR repository is the config's `sagemaker.image_repository` instead.
        """
    )


class MLPipelineImageTagsField(StringSequenceField):
    alias = "image_tags"
    help = help_text(
        """
        Tags for the pushes to `registries`, besides the content tag every push gets
        (`sha256-` + 16 hex digits of the manifest digest). Placeholders: `{name}`,
        `{directory}`, `{pipeline}`, `{git_sha}`, `{git_short_sha}` (the commit the build
        comes from), `{content_tag}`. Example: `image_tags=["{git_short_sha}", "stable"]`.
        """
    )


class MLPipelineSkipPushField(BoolField):
    alias = "skip_push"
    default = False
    help = help_text(
        """
        If true, `pants publish` skips this pipeline: no image is pushed anywhere and no
        training job is submitted (reported as skipped).
        """
    )


class MLPipelineTarget(Target):
    alias = "ml_pipeline"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        MLPipelineDependenciesField,
        MLPipelineModuleField,
        MLPipelineConfigField,
        MLPipelineSampleDataField,
        MLPipelineBaseImageField,
        MLPipelineLargeWheelField,
        MLPipelineLayerMaxField,
        MLPipelinePexLayoutField,
        MLPipelineOciArchiveField,
        MLPipelineRegistriesField,
        MLPipelineRepositoryField,
        MLPipelineImageTagsField,
        MLPipelineSkipPushField,
        PythonResolveField,
        InterpreterConstraintsField,
        OutputPathField,
    )
    help = help_text(
        """
        An ML training pipeline: Python stages plus a YAML config, trained the same way on a
        laptop and on SageMaker.

        `pants run` trains locally on the sample data, writing the model and metrics.json under
        `dist/mlbuild/runs/`; `pants package` builds the pipeline's PEX and a SageMaker-ready
        OCI image (`train` on PATH), both reproducible to the byte.

        Example BUILD file (in `src/python/pipelines/churn/`):

            python_sources()

            ml_pipeline(
                name="train",
                pipeline="pipeline.py",
                config="pipeline.yaml",
                sample_data="data",
            )
        """
    )


class MLBaseImageDebianLockField(SingleSourceField):
    alias = "debian_lock"
    required = False
    default = None
    expected_file_extensions = (".json",)
    help = help_text(
        """
        A Debian package lock (written by `./pants mlbuild lock-debian`) to assemble an offline,
        distroless-style base from: every .deb is downloaded from the Debian mirror, checked
        against the lock's sha256 and unpacked without running maintainer scripts.

        Example: `ml_base_image(name="base", debian_lock="packages.lock.json")`
        """
    )


class MLBaseImageReferenceField(StringField):
    alias = "image"
    help = help_text(
        """
        A base image pulled from a registry, always pinned by digest: `REGISTRY/REPO@sha256:<hex>`
        (a tag may stand before the digest for readability). Pulled once into a local cache keyed
        by digest, with docker `config.json` credentials or, for ECR, a boto3 token.
        Covers python-slim images and AWS Deep Learning Containers. Find a tag's digest with
        `./pants mlbuild resolve REGISTRY/REPO:TAG`.

        Example: `ml_base_image(name="slim", image="registry.example.com/python@sha256:…", python="/usr/local/bin/python3.11")`
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is not None and not re.search(r"@sha256:[0-9a-f]{64}$", value):
            raise InvalidFieldException(
                f"The `{cls.alias}` field of {address} is {value!r}, which is not pinned by digest. "
                "Fix: append `@sha256:<digest>`; `./pants mlbuild resolve <image>` prints it."
            )
        return value


class MLBaseImagePythonField(StringField):
    alias = "python"
    default = "/usr/bin/python3.11"
    value: str
    help = help_text(
        """
        The absolute path of the image's Python interpreter; the image's `train` launcher runs
        the pipeline's PEX with it.

        Example: `ml_base_image(name="base", debian_lock="packages.lock.json", python="/usr/bin/python3.11")`
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> str:
        value = cast(str, super().compute_value(raw_value, address))  # NB: never None: it has a default
        if not value.startswith("/"):
            raise InvalidFieldException(
                f"The `{cls.alias}` field of {address} is {value!r}. Fix: give an absolute path such as /usr/bin/python3.11."
            )
        return value


class MLBaseImageTarget(Target):
    alias = "ml_base_image"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        MLBaseImageDebianLockField,
        MLBaseImageReferenceField,
        MLBaseImagePythonField,
    )
    help = help_text(
        """
        A base image for ml_pipeline images, always pinned by content: either assembled offline
        from a committed Debian package lock (`debian_lock`), so the whole flow works with no
        container registry, or pulled from a registry by digest (`image`).

        `pants package` on it writes the base as an OCI layout and prints its digest.

            ml_base_image(
                name="base",
                debian_lock="packages.lock.json",
                python="/usr/bin/python3.11",
            )
        """
    )

    def validate(self) -> None:
        has_lock = self[MLBaseImageDebianLockField].value is not None
        has_image = self[MLBaseImageReferenceField].value is not None
        if has_lock == has_image:
            raise InvalidTargetException(
                f"The ml_base_image {self.address} sets {'both' if has_lock else 'neither'} of `debian_lock` and `image`. "
                'Fix: set exactly one: `debian_lock="packages.lock.json"` (write it with '
                '`./pants mlbuild lock-debian --output packages.lock.json`) or `image="REGISTRY/REPO@sha256:..."`.'
            )
