"""The mlbuild tool PEX: mlbuild's own plain-Python modules, run by rules as Processes.

Image assembly, the Debian base, the container runner, registry pushes and SageMaker calls
all live in modules that never import Pants. Rules run them in a sandboxed Process, so
their results are cached on disk and their bytes never pass through the Pants process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import List

from pants.backend.python.subsystems.setup import PythonSetup
from pants.backend.python.util_rules.interpreter_constraints import InterpreterConstraints
from pants.backend.python.util_rules.pex import Pex, PexRequest, VenvPex
from pants.backend.python.util_rules.pex_requirements import PexRequirements, Resolve
from pants.engine.fs import CreateDigest, Digest, FileContent
from pants.engine.rules import Get, collect_rules, rule

import mlbuild

# NB: paths relative to the directory holding the `mlbuild` package (the source root).
TOOL_SOURCES = (
    "mlbuild/__init__.py",
    "mlbuild/base_image.py",
    "mlbuild/oci",
    "mlbuild/debian",
    "mlbuild/runtime",
    "mlbuild/container_run",
    "mlbuild/registry",
    "mlbuild/sagemaker",
    "mlbuild/publish",
    "mlbuild/lineage",
)
TOOL_REQUIREMENTS = ("isal", "PyYAML", "boto3")


@dataclass(frozen=True)
class MLBuildTool:
    """For Processes: a venv, fast to start."""

    pex: VenvPex


@dataclass(frozen=True)
class MLBuildToolPex:
    """For `pants run`/`publish`: a zipapp PEX, run as `python mlbuild_tool.pex -m <module>`."""

    pex: Pex


@dataclass(frozen=True)
class MLBuildToolPexRequest:
    pass


@dataclass(frozen=True)
class _ToolRequest:
    request: PexRequest


def tool_files(source_root: Path) -> List[FileContent]:
    files = []
    for entry in TOOL_SOURCES:
        path = source_root / entry
        paths = sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.exists() else []
        for source in paths:
            if source.name.endswith("_test.py") or source.name == "conftest.py":
                continue
            files.append(FileContent(str(source.relative_to(source_root)), source.read_bytes()))
    return files


@rule
async def mlbuild_tool_request(python_setup: PythonSetup) -> _ToolRequest:
    source_root = Path(os.path.dirname(mlbuild.__file__)).parent
    sources = await Get(Digest, CreateDigest(tool_files(source_root)))
    return _ToolRequest(
        PexRequest(
            output_filename="mlbuild_tool.pex",
            internal_only=True,
            requirements=PexRequirements(
                TOOL_REQUIREMENTS,
                from_superset=Resolve(python_setup.default_resolve, use_entire_lockfile=False),
                description_of_origin="the mlbuild tool PEX",
            ),
            interpreter_constraints=InterpreterConstraints(python_setup.interpreter_constraints),
            sources=sources,
            description="Building the mlbuild tool PEX",
        )
    )


@rule(desc="Building the mlbuild tool")
async def build_mlbuild_tool(request: _ToolRequest) -> MLBuildTool:
    return MLBuildTool(await Get(VenvPex, PexRequest, request.request))


@rule(desc="Building the mlbuild tool PEX")
async def build_mlbuild_tool_pex(_: MLBuildToolPexRequest, request: _ToolRequest) -> MLBuildToolPex:
    return MLBuildToolPex(await Get(Pex, PexRequest, request.request))


def rules():
    return collect_rules()
