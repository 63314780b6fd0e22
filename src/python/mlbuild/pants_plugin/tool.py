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
from pants.backend.python.util_rules.pex import PexRequest, VenvPex
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
)
TOOL_REQUIREMENTS = ("isal", "PyYAML", "boto3")


@dataclass(frozen=True)
class MLBuildTool:
    pex: VenvPex


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


@rule(desc="Building the mlbuild tool PEX")
async def build_mlbuild_tool(python_setup: PythonSetup) -> MLBuildTool:
    source_root = Path(os.path.dirname(mlbuild.__file__)).parent
    sources = await Get(Digest, CreateDigest(tool_files(source_root)))
    pex = await Get(
        VenvPex,
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
        ),
    )
    return MLBuildTool(pex)


def rules():
    return collect_rules()
