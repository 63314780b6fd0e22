"""Where `pants publish` pushes an ml_pipeline's image besides its training job, and with which tags.

The Pants docker backend's model: `[mlbuild].registries` in pants.toml names registries by
alias (`address`, `default`, `extra_image_tags`); a target's `registries` field picks some
(`@alias` or a plain address; unset: every registry marked `default`), its `repository`
and `image_tags` fields (unset: `[mlbuild].default_repository`, no extra tags) are
interpolated with the placeholders below. Every push also gets the image's content tag
(`sha256-<16 hex of the manifest digest>`), so what a tag names is never ambiguous.

Precedence, narrowest first: target fields, then `[mlbuild]` options; `pipeline.yaml` alone
configures the training job (backend, ECR repository, instances), which these never change.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

PLACEHOLDERS = ("name", "directory", "pipeline", "git_sha", "git_short_sha", "content_tag")
CONTENT_TAG_HEX = 16  # = mlbuild.registry.push.CONTENT_TAG_HEX (publish_registries_test.py sees one content tag)
# NB: the OCI distribution spec's rules for a repository path and a tag.
REPOSITORY = re.compile(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$")
TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
ADDRESS = re.compile(r"^[a-zA-Z0-9.-]+(:[0-9]+)?$")
ENTRY_KEYS = {"address", "default", "extra_image_tags"}


class RegistryConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Registry:
    alias: Optional[str]
    address: str
    default: bool = False
    extra_image_tags: Tuple[str, ...] = ()


@dataclass(frozen=True)
class Push:
    """One registry push: `address/repository` with the content tag and `tags`."""

    registry: Registry
    repository: str
    tags: Tuple[str, ...]

    @property
    def destination(self) -> str:
        return f"{self.registry.address}/{self.repository}"

    def references(self, manifest_digest: str) -> Tuple[str, ...]:
        return (f"{self.destination}@{manifest_digest}", *(f"{self.destination}:{tag}" for tag in self.tags))


def content_tag(manifest_digest: str) -> str:
    return "sha256-" + manifest_digest.split(":", 1)[-1][:CONTENT_TAG_HEX]


def parse_registries(option: Mapping[str, Any]) -> Dict[str, Registry]:
    """`[mlbuild].registries` checked: every entry an object with a valid `address`."""
    where = "[mlbuild].registries in pants.toml"
    example = 'Fix: e.g. registries = {ci = {address = "registry.example.com:5000", default = true}}.'
    parsed = {}
    for alias, entry in option.items():
        if not isinstance(entry, Mapping):
            raise RegistryConfigError(f"{where}: `{alias}` is {entry!r}, not a table. {example}")
        unknown = sorted(set(entry) - ENTRY_KEYS)
        if unknown:
            raise RegistryConfigError(
                f"{where}: `{alias}` has unknown keys {unknown}; known: {sorted(ENTRY_KEYS)}. {example}"
            )
        address = entry.get("address")
        if not isinstance(address, str) or not ADDRESS.match(address):
            raise RegistryConfigError(
                f"{where}: `{alias}.address` is {address!r}; give `host[:port]` (no scheme, no path). {example}"
            )
        tags = entry.get("extra_image_tags", [])
        if not isinstance(tags, (list, tuple)) or not all(isinstance(t, str) for t in tags):
            raise RegistryConfigError(
                f'{where}: `{alias}.extra_image_tags` is {tags!r}; give a list of tags, e.g. ["latest"].'
            )
        default = entry.get("default", False)
        if not isinstance(default, bool):
            raise RegistryConfigError(f"{where}: `{alias}.default` is {default!r}; give true or false.")
        parsed[alias] = Registry(alias, address, default, tuple(tags))
    return parsed


def interpolate(template: str, values: Mapping[str, str], what: str) -> str:
    """`{placeholder}` substitution that names the field and the known placeholders on a miss."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as e:
        raise RegistryConfigError(
            f"{what} is {template!r}: {e}. Fix: write placeholders as {{name}}, braces doubled to escape."
        ) from None
    unknown = [name for name in fields if name not in values]
    if unknown:
        raise RegistryConfigError(
            f"{what} is {template!r}: unknown placeholder {{{unknown[0]}}}. Known: "
            + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
            + "."
        )
    return template.format(**values)


def plan_pushes(
    *,
    registries: Mapping[str, Registry],
    chosen: Optional[Sequence[str]],
    repository_template: str,
    tag_templates: Sequence[str],
    values: Mapping[str, str],
    field_owner: str,
) -> Tuple[Push, ...]:
    """The pushes of one target, with every name checked against the OCI rules."""
    if chosen is None:
        targets = [r for r in registries.values() if r.default]
    else:
        targets = []
        for item in chosen:
            if item.startswith("@"):
                if item[1:] not in registries:
                    known = ", ".join(f"@{a}" for a in sorted(registries)) or "none are configured"
                    raise RegistryConfigError(
                        f"The `registries` field of {field_owner} names {item}, which is not in [mlbuild].registries "
                        f"(known: {known}). Fix: add it to pants.toml or correct the alias."
                    )
                targets.append(registries[item[1:]])
            elif ADDRESS.match(item):
                targets.append(Registry(None, item))
            else:
                raise RegistryConfigError(
                    f"The `registries` field of {field_owner} has {item!r}: give `@alias` from [mlbuild].registries or `host[:port]`."
                )
    repository = interpolate(repository_template, values, f"The repository of {field_owner}")
    if not REPOSITORY.match(repository):
        raise RegistryConfigError(
            f"The repository of {field_owner} is {repository!r} after interpolation, which is not a valid OCI repository name "
            "(lowercase letters, digits, and . _ - / between them). Fix: set the `repository` field."
        )
    pushes = []
    for registry in dict.fromkeys(targets):
        tags = []
        for template in (*tag_templates, *registry.extra_image_tags):
            tag = interpolate(template, values, f"The image tag {template!r} of {field_owner}")
            if not TAG.match(tag):
                raise RegistryConfigError(
                    f"The image tag {template!r} of {field_owner} gives {tag!r}, not a valid tag ([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})."
                )
            tags.append(tag)
        pushes.append(Push(registry, repository, tuple(dict.fromkeys([values["content_tag"], *tags]))))
    return tuple(pushes)


def placeholder_values(spec_path: str, target_name: str, revision: str, manifest_digest: str) -> Dict[str, str]:
    """The values of PLACEHOLDERS for one target and build."""
    directory = spec_path.rstrip("/").rsplit("/", 1)[-1]
    # = mlbuild.sagemaker.job_name.pipeline_name_from_address (names_test.py checks it)
    pipeline = "-".join(p for p in (directory, target_name if target_name != directory else "") if p)
    commit, dirty, _ = revision.partition("-dirty")
    short = revision if revision == "unknown" else commit[:7] + ("-dirty" if dirty else "")
    return {
        "name": target_name,
        "directory": directory,
        "pipeline": pipeline,
        "git_sha": revision,
        "git_short_sha": short,
        "content_tag": content_tag(manifest_digest),
    }


# NB: a registry probes every candidate with a HEAD per blob it lacks: a bound keeps a
# monorepo's push from fanning out into thousands of requests.
MAX_MOUNT_SOURCES = 20


def mount_sources(own_repository: str, sibling_templates: Sequence[Tuple[str, Mapping[str, str]]]) -> Tuple[str, ...]:
    """Repositories of sibling pipelines (same resolve, so likely the same big layers) to mount from.

    A pipeline's first push to its own repository would upload every layer again, torch's 3 GB
    included, although a sibling's repository in the same registry holds them: the registry
    mounts a blob across repositories instead (`POST ?mount=&from=`, OCI distribution spec).
    A sibling whose repository template does not interpolate is skipped (never an error here).
    """
    found = []
    for template, values in sibling_templates:
        try:
            repository = interpolate(template, values, "a sibling's repository")
        except RegistryConfigError:
            continue
        if REPOSITORY.match(repository) and repository != own_repository:
            found.append(repository)
    return tuple(sorted(set(found)))[:MAX_MOUNT_SOURCES]
