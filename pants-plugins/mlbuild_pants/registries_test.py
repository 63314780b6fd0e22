import pytest  # pants: no-infer-dep (Pants' own pytest runs these; the pants-plugins resolve has it only through testutil)

from mlbuild_pants.registries import (
    Registry,
    RegistryConfigError,
    content_tag,
    interpolate,
    parse_registries,
    plan_pushes,
)

DIGEST = "sha256:" + "ab" * 32
VALUES = {
    "name": "train",
    "directory": "churn",
    "pipeline": "churn-train",
    "git_sha": "0123456789abcdef0123456789abcdef01234567",
    "git_short_sha": "0123456",
    "content_tag": content_tag(DIGEST),
}
OPTION = {
    "ci": {"address": "127.0.0.1:5000", "default": True, "extra_image_tags": ["latest"]},
    "team": {"address": "registry.example.com"},
}


def plan(chosen=None, repository="ml/{directory}", tags=("{git_short_sha}",), option=OPTION):
    return plan_pushes(
        registries=parse_registries(option),
        chosen=chosen,
        repository_template=repository,
        tag_templates=tags,
        values=VALUES,
        field_owner="src/p:train",
    )


def test_default_registries_get_the_content_tag_target_tags_and_extra_tags() -> None:
    (push,) = plan()
    assert push.registry == Registry("ci", "127.0.0.1:5000", True, ("latest",))
    assert push.destination == "127.0.0.1:5000/ml/churn"
    assert push.tags == ("sha256-" + "ab" * 8, "0123456", "latest")
    assert push.references(DIGEST) == (
        f"127.0.0.1:5000/ml/churn@{DIGEST}",
        "127.0.0.1:5000/ml/churn:sha256-abababababababab",
        "127.0.0.1:5000/ml/churn:0123456",
        "127.0.0.1:5000/ml/churn:latest",
    )


def test_field_picks_aliases_and_plain_addresses_once_each() -> None:
    pushes = plan(chosen=["@team", "@ci", "other.io:443", "@team"], repository="{pipeline}", tags=())
    assert [p.destination for p in pushes] == [
        "registry.example.com/churn-train",
        "127.0.0.1:5000/churn-train",
        "other.io:443/churn-train",
    ]
    assert pushes[0].tags == ("sha256-abababababababab",)
    assert plan(chosen=[]) == ()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"chosen": ["@nope"]}, r"names @nope, which is not in \[mlbuild\].registries \(known: @ci, @team\)"),
        ({"chosen": ["https://x.io/v2"]}, "give `@alias`"),
        ({"repository": "{team}/x"}, r"unknown placeholder \{team\}. Known: \{name\}"),
        ({"repository": "{directory"}, "braces doubled"),
        ({"repository": "ML/{directory}"}, "not a valid OCI repository name"),
        ({"tags": ("bad tag",)}, "not a valid tag"),
        ({"option": {"x": "127.0.0.1:5000"}}, "not a table"),
        ({"option": {"x": {"address": "http://h:5000"}}}, "no scheme"),
        ({"option": {"x": {"address": "h", "tags": []}}}, r"unknown keys \['tags'\]"),
        ({"option": {"x": {"address": "h", "default": "yes"}}}, "true or false"),
        ({"option": {"x": {"address": "h", "extra_image_tags": "latest"}}}, "list of tags"),
    ],
)
def test_bad_configuration_names_the_place_and_the_fix(kwargs, message) -> None:
    with pytest.raises(RegistryConfigError, match=message):
        plan(**kwargs)


def test_interpolate_keeps_escaped_braces() -> None:
    assert interpolate("{{x}}-{name}", VALUES, "t") == "{x}-train"


def test_placeholder_values_from_the_address_and_revision() -> None:
    from mlbuild_pants.registries import placeholder_values

    values = placeholder_values("src/python/pipelines/churn", "train", "0123456789abcdef-dirty", DIGEST)
    assert values == {
        "name": "train",
        "directory": "churn",
        "pipeline": "churn-train",
        "git_sha": "0123456789abcdef-dirty",
        "git_short_sha": "0123456-dirty",
        "content_tag": "sha256-abababababababab",
    }
    assert placeholder_values("a/iris", "iris", "unknown", DIGEST)["pipeline"] == "iris"
    assert placeholder_values("a/iris", "iris", "unknown", DIGEST)["git_short_sha"] == "unknown"


def test_mount_sources_are_the_siblings_repositories_without_its_own_and_bounded() -> None:
    from mlbuild_pants.registries import MAX_MOUNT_SOURCES, mount_sources

    values = lambda pipeline: {"pipeline": pipeline, "name": "train", "directory": pipeline}
    siblings = [
        ("{pipeline}", values("mlp2")),
        ("{pipeline}", values("mlp")),
        ("team/{directory}", values("mlp3")),
        ("{unknown}", values("x")),
        ("{pipeline}", values("mlp2")),
    ]
    # Its own repository is not a source; a template that does not interpolate is skipped; sorted, once each.
    assert mount_sources("mlp", siblings) == ("mlp2", "team/mlp3")
    many = [("p{name}", {"name": str(i)}) for i in range(3 * MAX_MOUNT_SOURCES)]
    assert len(mount_sources("mlp", many)) == MAX_MOUNT_SOURCES
