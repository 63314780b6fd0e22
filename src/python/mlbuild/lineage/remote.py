"""Lineage that lives beside the artifacts, for a clone that has no local records.

    s3_records(uri)     every `<id>.json` record under an S3 prefix, each checked against its name
    job_records(name)   DescribeTrainingJob -> `<S3OutputPath>/<job>/mlbuild-lineage/` -> s3_records
    hash_records(hex)   SageMaker Search on the PEX / image tags -> each job's job_records
    image_records(ref)  an image's labels and its provenance referrer -> its package record

An AWS publish puts its records next to the model (publish/aws.py), and every image carries
its labels and provenance (pants-plugins/mlbuild_pants/package.py), so each of these needs only the job name
or the image reference. Records are content-addressed, so fetching is copying: a record
whose bytes don't hash to its name is refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from mlbuild import console
from mlbuild.lineage import collect, provenance
from mlbuild.lineage.errors import NotFoundError, UserError
from mlbuild.lineage.record import Record, make_record
from mlbuild.oci.descriptor import INDEX_TYPES
from mlbuild.oci.digest import digest_of
from mlbuild.oci.referrer import IN_TOTO_MEDIA_TYPE
from mlbuild.registry.pull import resolve_digest
from mlbuild.registry.reference import parse_reference
from mlbuild.registry.referrers import find_referrers
from mlbuild.registry.session import connect
from mlbuild.sagemaker.tags import IMAGE_DIGEST, PEX_SHA256, PIPELINE_ADDRESS, decode_value

RECORDS_FOLDER = "mlbuild-lineage"
MAX_RECORD = 1024 * 1024
MAX_CONFIG = 4 * 1024 * 1024  # NB: image configs are kilobytes
_RECORD_KEY = re.compile(r"(?:^|/)([0-9a-f]{64})\.json$")


def s3_key(output_path: str, job_name: str, record_id: str) -> tuple[str, str]:
    """(bucket, key) of a job's record: `<output_path>/<job>/mlbuild-lineage/<id>.json`."""
    bucket, _, prefix = output_path[len("s3://") :].partition("/")
    return bucket, "/".join(p for p in (prefix.rstrip("/"), job_name, RECORDS_FOLDER, f"{record_id}.json") if p)


def s3_records(uri: str, s3: Any) -> List[Record]:
    """Every record under `s3://bucket/prefix`, oldest first."""
    from botocore.exceptions import BotoCoreError, ClientError

    if not uri.startswith("s3://"):
        raise UserError(f"{uri}: expected an s3://bucket/prefix URI.")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    records = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                match = _RECORD_KEY.search(item["Key"])
                if not match:
                    continue
                if int(item.get("Size", 0)) > MAX_RECORD:
                    raise UserError(
                        f"s3://{bucket}/{item['Key']}: {item['Size']} bytes; lineage records are kilobytes, so this is not one."
                    )
                data = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                if hashlib.sha256(data).hexdigest() != match.group(1):
                    raise UserError(
                        f"s3://{bucket}/{item['Key']}: contents do not hash to the name; not a record mlbuild wrote."
                    )
                records.append(Record.from_bytes(data))
    except (BotoCoreError, ClientError) as e:
        raise UserError(f"reading {uri}: {e}. Fix: check the URI, the AWS credentials and region.") from e
    return sorted(records, key=lambda r: (r.created, r.id))


def job_name_of(text: str) -> str:
    """A job name, or the name inside `arn:aws:sagemaker:<region>:<account>:training-job/<name>`."""
    return text.split(":training-job/", 1)[1] if text.startswith("arn:") and ":training-job/" in text else text


def job_records(name: str, sagemaker: Any, s3: Any) -> List[Record]:
    """The records an AWS publish left beside the job's model (`name` may be the job's ARN)."""
    from botocore.exceptions import BotoCoreError, ClientError

    name = job_name_of(name)
    try:
        job = sagemaker.describe_training_job(TrainingJobName=name)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("ValidationException", "ResourceNotFound"):
            raise NotFoundError(f"no SageMaker training job named {name!r} in {sagemaker.meta.region_name}.") from e
        raise UserError(f"DescribeTrainingJob {name}: {e}") from e
    except BotoCoreError as e:
        raise UserError(f"DescribeTrainingJob {name}: {e}. Fix: check the AWS credentials and region.") from e
    output = str(job.get("OutputDataConfig", {}).get("S3OutputPath") or "")
    if not output.startswith("s3://"):
        return []
    bucket, key = s3_key(output, name, "x")
    records = s3_records(f"s3://{bucket}/{key.rsplit('/', 1)[0]}/", s3)
    ended = ended_record(job, records, sagemaker)
    return records + [ended] if ended else records


TERMINAL = ("Completed", "Failed", "Stopped")


def ended_record(job: Mapping[str, Any], records: List[Record], sagemaker: Any) -> Optional[Record]:
    """A publish record of how the job ended, when the published one(s) only saw it start.

    `pants publish` without --wait records the job InProgress; SageMaker knows the rest. The
    record's time is the job's end, so every clone derives the same one.
    """
    status = job.get("TrainingJobStatus")
    published = [r for r in records if r.kind == "publish" and r.get("job.name") == job["TrainingJobName"]]
    if status not in TERMINAL or not job.get("TrainingEndTime") or any(r.status == status for r in published):
        return None
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        tags = sagemaker.list_tags(ResourceArn=job["TrainingJobArn"]).get("Tags", [])
    except (BotoCoreError, ClientError) as e:
        raise UserError(
            f"ListTags {job['TrainingJobName']}: {e}. Fix: allow sagemaker:ListTags, or pass --local-only."
        ) from e
    known = {t["Key"]: t.get("Value", "") for t in tags}
    pipeline = known.get(PIPELINE_ADDRESS) or (published[0].pipeline if published else None)
    if not pipeline:
        return None
    image = str(job.get("AlgorithmSpecification", {}).get("TrainingImage") or "")
    model = str(job.get("ModelArtifacts", {}).get("S3ModelArtifacts") or "")
    metrics = {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", []) if "MetricName" in m}
    return make_record(
        "publish",
        decode_value(pipeline),
        job["TrainingEndTime"],
        pex={"sha256": decode_value(known[PEX_SHA256])} if known.get(PEX_SHA256) else None,
        image={"ref": image, "manifest_digest": image.rsplit("@", 1)[1]} if "@" in image else None,
        job={
            "name": job["TrainingJobName"],
            "arn": job["TrainingJobArn"],
            "status": status,
            "region": sagemaker.meta.region_name,
            "start": job.get("TrainingStartTime"),
            "end": job["TrainingEndTime"],
        },
        model={"uri": model} if model else None,
        metrics=metrics or None,
        parents=[r.id for r in published] or None,
    )


# NB: the tags `publish` puts on every job (mlbuild.sagemaker.tags); values are exact strings.
SEARCHABLE_TAGS = ((PEX_SHA256, ""), (IMAGE_DIGEST, "sha256:"))


def hash_records(hex_digest: str, sagemaker: Any, s3: Any) -> List[Record]:
    """The records of every training job tagged with this PEX sha256 or image digest (a full hash)."""
    from botocore.exceptions import BotoCoreError, ClientError

    names: List[str] = []
    try:
        for tag, prefix in SEARCHABLE_TAGS:
            expression = {"Filters": [{"Name": f"Tags.{tag}", "Operator": "Equals", "Value": prefix + hex_digest}]}
            for page in sagemaker.get_paginator("search").paginate(Resource="TrainingJob", SearchExpression=expression):
                names += [r["TrainingJob"]["TrainingJobName"] for r in page.get("Results", []) if "TrainingJob" in r]
    except (BotoCoreError, ClientError) as e:
        raise UserError(
            f"SageMaker Search for {hex_digest[:12]}: {e}. Fix: check the AWS credentials and region."
        ) from e
    records = {r.id: r for name in dict.fromkeys(names) for r in job_records(name, sagemaker, s3)}
    return sorted(records.values(), key=lambda r: (r.created, r.id))


def image_records(reference: str, environ: Optional[Mapping[str, str]] = None, **connect_kwargs: Any) -> List[Record]:
    """The package record of an image in a registry, from its labels and its provenance.

    `created` is the image config's (pinned at build), so every clone derives the same record.
    Each provenance statement is checked to be about this image before it is used; the
    statements are unsigned, so they are evidence of what the builder said, not proof.
    """
    if environ is not None:
        connect_kwargs["env"] = environ
    # NB: registry errors are MLBuildErrors that already name the registry, repository and fix.
    ref = parse_reference(reference)
    client = connect(ref, push=False, **connect_kwargs)
    digest = ref.digest or resolve_digest(str(ref), **connect_kwargs)
    manifest, digest = _image_manifest(client, reference, digest)
    try:
        config_digest = str(manifest["config"]["digest"])
        config = _json(client.read_small_blob(config_digest, MAX_CONFIG), f"{reference}: image config {config_digest}")
        labels = dict((config.get("config") or {}).get("Labels") or {})
        layers = [str(layer["digest"]) for layer in manifest.get("layers", [])]
    except (KeyError, TypeError, AttributeError) as e:
        raise UserError(f"{reference}: not an image manifest and config mlbuild can read ({e!r}).") from e
    if not labels.get(collect.PIPELINE_LABEL):
        raise NotFoundError(
            f"{reference}: the image has no `{collect.PIPELINE_LABEL}` label; it was not built by mlbuild."
        )
    build = collect.ImageBuild(
        summary_path=Path(reference),
        ref=f"{ref.repo_uri}@{digest}",
        manifest_digest=digest,
        config_digest=config_digest,
        layers=layers,
        diff_ids=list((config.get("rootfs") or {}).get("diff_ids") or []),
        labels=labels,
    )
    statements = []
    for referrer in find_referrers(client, digest, IN_TOTO_MEDIA_TYPE):
        statement = _json(referrer.payload, f"{reference}: provenance {referrer.descriptor.digest}")
        provenance.verify_statement(statement, digest)
        statements.append((referrer, statement))
    attached, config_path, config_sha = None, None, None
    if len(statements) == 1:
        referrer, statement = statements[0]
        attached = {
            "digest": referrer.descriptor.digest,
            "statement_sha256": hashlib.sha256(referrer.payload).hexdigest(),
            "subject": digest,
        }
        # NB: the PEX is built beside the image, not into it: the statement names it.
        build = dataclasses.replace(build, pex=provenance.byproduct_sha256(statement, "pex"))
    elif statements:
        # NB: e.g. rebuilt by another mlbuild version; which one is "the" provenance is not ours to pick.
        listed = ", ".join(r.descriptor.digest for r, _ in statements)
        console.say(f"{reference} has {len(statements)} provenance statements ({listed}); recording none of them.")
    configs = {json.dumps(_external_config(s), sort_keys=True) for _, s in statements}
    if len(configs) == 1:
        config_path, config_sha = _external_config(statements[0][1]).get("path"), _external_config(
            statements[0][1]
        ).get("sha256")
    created = config.get("created") or "1970-01-01T00:00:00Z"
    return [collect.package_record(build, None, config_path, config_sha, created=created, provenance=attached)]


def _image_manifest(client: Any, reference: str, digest: str) -> tuple:
    """(manifest, its digest); an index is resolved to its linux/amd64 image, as SageMaker runs it."""
    data, _, _ = client.get_manifest(digest)
    if digest_of(data) != digest:
        raise UserError(f"{reference}: the registry's manifest does not hash to {digest}.")
    manifest = _json(data, f"{reference}: manifest {digest}")
    if manifest.get("mediaType") not in INDEX_TYPES and "manifests" not in manifest:
        return manifest, digest
    for entry in manifest.get("manifests") or []:
        platform = entry.get("platform") or {}
        if (platform.get("os"), platform.get("architecture")) == ("linux", "amd64"):
            return _image_manifest(client, reference, str(entry["digest"]))
    raise UserError(
        f"{reference}: an image index without a linux/amd64 image. Fix: give the digest of the image itself."
    )


def _external_config(statement: Mapping[str, Any]) -> Dict[str, Any]:
    external = ((statement.get("predicate") or {}).get("buildDefinition") or {}).get("externalParameters") or {}
    config = external.get("config") if isinstance(external, Mapping) else None
    return dict(config) if isinstance(config, Mapping) else {}


def _json(data: bytes, what: str) -> Any:
    try:
        value = json.loads(data)
    except ValueError as e:
        raise UserError(f"{what}: not JSON ({e}).") from e
    if not isinstance(value, dict):
        raise UserError(f"{what}: expected a JSON object.")
    return value
