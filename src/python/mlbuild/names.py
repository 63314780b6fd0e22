"""Every name mlbuild shares between modules, processes and images, defined once.

Like sagemaker-training-toolkit's `params.py`: environment variables, image labels and
annotations, layer names, output paths and exit codes live here, and every other module
imports them. Two lookups that were spelled several ways sit here too, because they are
about names: the AWS region a call uses, and which index.json entry of an OCI layout is the
image with a given ref.

NB: this module imports nothing from mlbuild, so every layer (runtime, oci, registry, the
tools) may import it without a cycle, and it ships in the image with the runtime. The Pants
plugin cannot import it (Pants runs its own Python); `pants-plugins/mlbuild_pants/names.py`
mirrors the names it needs and `names_test.py` checks the copy against this file.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

# --- environment variables --------------------------------------------------------------

# The /opt/ml base a `train` run uses (default /opt/ml); a local run points it at its run folder.
ML_BASE_DIR_ENV = "MLBUILD_ML_BASE_DIR"
# Which pipeline the runtime runs; the PEX bakes them into PEX-INFO (`--inject-env`).
PIPELINE_MODULE_ENV = "MLBUILD_PIPELINE_MODULE"
PIPELINE_CONFIG_ENV = "MLBUILD_PIPELINE_CONFIG"
PIPELINE_ADDRESS_ENV = "MLBUILD_PIPELINE_ADDRESS"
# The lineage store, and the inbox `pants package` writes its records to.
LINEAGE_DIR_ENV = "MLBUILD_LINEAGE_DIR"
LINEAGE_INBOX_ENV = "MLBUILD_LINEAGE_INBOX"
# The git revision a build or run records.
SOURCE_REVISION_ENV = "MLBUILD_SOURCE_REVISION"  # `<sha>`, `<sha>-dirty` or `unknown`
# Registries and pushes.
ECR_REGISTRY_ENV = "MLBUILD_ECR_REGISTRY"  # a stand-in host for the ECR registry
INSECURE_REGISTRIES_ENV = "MLBUILD_INSECURE_REGISTRIES"  # hosts allowed over plain HTTP
UPLOAD_JOURNAL_ENV = "MLBUILD_UPLOAD_JOURNAL"
# Layer unpacking limits (oci/layer_rules.py).
UNPACK_MAX_BYTES_ENV = "MLBUILD_UNPACK_MAX_BYTES"
UNPACK_MAX_ENTRIES_ENV = "MLBUILD_UNPACK_MAX_ENTRIES"
UNPACK_MAX_FILE_BYTES_ENV = "MLBUILD_UNPACK_MAX_FILE_BYTES"
UNPACK_KEEP_SPECIAL_MODES_ENV = "MLBUILD_UNPACK_KEEP_SPECIAL_MODES"
# Tests: a missing system tool fails instead of skipping (CI sets it).
REQUIRE_TOOLS_ENV = "MLBUILD_REQUIRE_TOOLS"

# Standard AWS variables mlbuild reads itself (boto3 reads the rest).
AWS_REGION_ENV = "AWS_REGION"
AWS_DEFAULT_REGION_ENV = "AWS_DEFAULT_REGION"

# --- image labels and annotations ------------------------------------------------------

LABEL_PREFIX = "org.mlbuild"
PIPELINE_ADDRESS_LABEL = f"{LABEL_PREFIX}.pipeline.address"
PEX_SHA256_LABEL = f"{LABEL_PREFIX}.pex.sha256"
LOCKFILE_PATH_LABEL = f"{LABEL_PREFIX}.lockfile.path"
LOCKFILE_SHA256_LABEL = f"{LABEL_PREFIX}.lockfile.sha256"
DEBIAN_LOCK_LABEL = f"{LABEL_PREFIX}.debian.lock.sha256"  # label and annotation of the base image
LAYER_NAME_ANNOTATION = f"{LABEL_PREFIX}.layer.name"
LAYER_COMPRESSOR_ANNOTATION = f"{LABEL_PREFIX}.layer.compressor"
# https://github.com/opencontainers/image-spec/blob/v1.1.0/annotations.md
OCI_REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
OCI_TITLE_LABEL = "org.opencontainers.image.title"
OCI_REVISION_LABEL = "org.opencontainers.image.revision"
OCI_BASE_NAME_LABEL = "org.opencontainers.image.base.name"
OCI_BASE_DIGEST_LABEL = "org.opencontainers.image.base.digest"

# --- layer names ------------------------------------------------------------------------

DEBIAN_LAYER = "debian"  # the base image's one layer
APP_LAYER = "app"  # the pipeline image's top layer: code, config and `train`

# --- output paths (relative to the build root; `dist` is Pants' dist dir) ---------------

DIST_LINEAGE_SUBDIR = "mlbuild/lineage"  # under dist/: where `pants package` leaves records
DIST_RUNS_SUBDIR = "mlbuild/runs"  # under dist/: local run folders
DIST_PUBLISH_SUBDIR = "mlbuild/publish"  # under dist/: publish reports
DIST_SHARED_BLOBS_SUBDIR = "mlbuild/blobs"  # under dist/: large outputs stored once, linked (shared_blobs.py)
LINEAGE_STORE_DIR = ".mlbuild/lineage"  # the store, which takes in the dist/ inbox
LOCAL_PUBLISH_DIR = ".mlbuild/local"  # the local publish backend: image store and jobs
HOSTS_RECORD = "output/hosts.json"  # in a multi-host run folder: instance count, each host's shards

# --- exit codes: one table for every mlbuild command ------------------------------------

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USER_ERROR = 2
EXIT_PLATFORM_ERROR = 3
EXIT_JOB_CONFLICT = 4
EXIT_JOB_FAILED = 5
EXIT_JOB_STILL_RUNNING = 6
EXIT_NOT_VERIFIED = 7
EXIT_INTERRUPTED = 130

EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_UNEXPECTED: "unexpected mlbuild error",
    EXIT_USER_ERROR: "user error: bad config, arguments, data, record or hash; or the pipeline raised",
    EXIT_PLATFORM_ERROR: "platform error: mlbuild, the machine, a store or an AWS call failed",
    EXIT_JOB_CONFLICT: "conflict: a different job already has the derived name; nothing submitted",
    EXIT_JOB_FAILED: "the training job ended Failed or Stopped",
    EXIT_JOB_STILL_RUNNING: "gave up waiting; the job is still running",
    EXIT_NOT_VERIFIED: "verification failed: the provenance does not describe that digest, or a rebuild differs",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}


def exit_codes_epilog(codes: Iterable[int]) -> str:
    """`exit codes: 0 success; 2 ...` for a command's --help, from the one table."""
    return "exit codes: " + "; ".join(f"{code} {EXIT_CODES[code]}" for code in codes)


# --- lookups ----------------------------------------------------------------------------


def aws_region(configured: Optional[str], environ: Mapping[str, str]) -> Optional[str]:
    """The region an AWS call uses: the config's (or --region), else AWS_REGION, else
    AWS_DEFAULT_REGION, else None. `mlbuild.sagemaker.aws.resolve_region` adds the checks."""
    return configured or environ.get(AWS_REGION_ENV) or environ.get(AWS_DEFAULT_REGION_ENV) or None


def ref_name(entry: Mapping[str, Any]) -> Optional[str]:
    """The ref name an index.json entry carries, if any."""
    return (entry.get("annotations") or {}).get(OCI_REF_NAME_ANNOTATION)


def image_entries(index: Mapping[str, Any], ref: Optional[str]) -> list:
    """The index.json entries that are the image `ref` (every image when `ref` is None).

    NB: entries with an `artifactType` are referrers (the provenance), never images, even
    when a tool gave them a ref name. The caller decides what zero or several matches mean.
    """
    images = [m for m in index.get("manifests", []) if not m.get("artifactType")]
    return [m for m in images if ref is None or ref_name(m) == ref]
