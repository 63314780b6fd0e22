"""The import graph of the library: which package may import which."""

import ast
from pathlib import Path
from typing import Dict, Set

LIBRARY = Path(__file__).parent

PENDING_CYCLES: set = set()


def _package(path: Path) -> str:
    rel = path.relative_to(LIBRARY)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> Set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m.startswith("mlbuild.")}


def _graph() -> Dict[str, Set[str]]:
    graph: Dict[str, Set[str]] = {}
    for path in LIBRARY.rglob("*.py"):
        if path.name.endswith("_test.py") or path.name in ("conftest.py", "testing.py"):
            continue
        package = _package(path)
        graph.setdefault(package, set()).update(m.split(".")[1] for m in _imports(path) if m.split(".")[1] != package)
    # NB: a sandbox without the library would make every check pass; refuse it.
    assert {"runtime", "lineage", "publish", "sagemaker", "oci", "registry"} <= set(graph), sorted(graph)
    return graph


def _reaches(graph: Dict[str, Set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return False


def test_no_package_cycles() -> None:
    graph = _graph()
    cycles = {frozenset({a, b}) for a in graph for b in graph[a] if _reaches(graph, b, a)}
    assert cycles - PENDING_CYCLES == set()


def test_the_runtime_reaches_no_host_side_package() -> None:
    graph = _graph()
    for host_side in ("lineage", "publish", "sagemaker", "registry", "container_run", "replay"):
        assert not _reaches(graph, "runtime", host_side), host_side


def test_the_names_module_imports_nothing_from_mlbuild() -> None:
    assert _imports(LIBRARY / "names.py") == set()


def test_publish_calls_sagemaker_as_a_library_not_through_its_cli() -> None:
    for path in (LIBRARY / "publish").glob("*.py"):
        if path.name.endswith("_test.py"):
            continue  # NB: a test may drive both CLIs
        assert "mlbuild.sagemaker.cli" not in _imports(path), path.name
