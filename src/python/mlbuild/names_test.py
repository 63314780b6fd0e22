import ast
from pathlib import Path

from mlbuild import names

LIBRARY = Path(names.__file__).parent

# NB: modules that still define their own copy of a shared name instead of importing it
# from mlbuild.names; remove a line when its module does.
PENDING: dict = {}


def _shared_names() -> set:
    values = {getattr(names, n) for n in dir(names) if n.isupper() and isinstance(getattr(names, n), str)}
    return {v for v in values if v.startswith(("MLBUILD_", "org."))}


def _definitions(path: Path) -> set:
    """The string constants a module assigns at module level (`X = "..."`, or inside a dict/tuple)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            for sub in ast.walk(node.value):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                    found.add(sub.value)
    return found


def test_every_shared_name_is_defined_only_in_the_names_module() -> None:
    shared = _shared_names()
    repeats = {}
    paths = sorted(LIBRARY.rglob("*.py"))
    assert len(paths) > 100  # NB: the sandbox holds the whole library (BUILD: library_text)
    for path in paths:
        rel = path.relative_to(LIBRARY).as_posix()
        if rel == "names.py" or rel.endswith(("_test.py", "conftest.py")):
            continue
        again = (_definitions(path) & shared) - PENDING.get(rel, set())
        if again:
            repeats[rel] = sorted(again)
    assert repeats == {}, f"define these in mlbuild/names.py and import them: {repeats}"


def test_the_pending_copies_still_match_the_names_module() -> None:
    # NB: until they import it, a copy that drifts would split one name in two.
    for rel, values in PENDING.items():
        assert values <= _definitions(LIBRARY / rel), rel


def test_exit_codes_are_one_meaning_each() -> None:
    codes = [getattr(names, n) for n in dir(names) if n.startswith("EXIT_") and isinstance(getattr(names, n), int)]
    assert len(codes) == len(set(codes)) == len(names.EXIT_CODES)
    assert names.EXIT_JOB_CONFLICT != names.EXIT_NOT_VERIFIED


def test_aws_region_prefers_the_config_then_aws_region_then_the_default() -> None:
    env = {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-west-2"}
    assert names.aws_region("ap-south-1", env) == "ap-south-1"
    assert names.aws_region(None, env) == "eu-west-1"
    assert names.aws_region(None, {"AWS_DEFAULT_REGION": "us-west-2"}) == "us-west-2"
    assert names.aws_region("", {}) is None


def test_image_entries_skip_referrers_and_match_the_ref() -> None:
    image = {"digest": "sha256:a", "annotations": {names.OCI_REF_NAME_ANNOTATION: "train"}}
    other = {"digest": "sha256:b", "annotations": {names.OCI_REF_NAME_ANNOTATION: "deps"}}
    provenance = {
        "digest": "sha256:c",
        "artifactType": "application/vnd.in-toto+json",
        "annotations": {names.OCI_REF_NAME_ANNOTATION: "train"},
    }
    index = {"manifests": [image, other, provenance]}
    assert names.image_entries(index, "train") == [image]
    assert names.image_entries(index, None) == [image, other]
    assert names.image_entries(index, "missing") == []
    assert names.ref_name(other) == "deps" and names.ref_name({}) is None
