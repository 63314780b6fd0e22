"""The mlbuild tool PEX: mlbuild's own plain-Python modules, run by rules as Processes.

It is built from a target (`[mlbuild].tool_target`, `src/python/mlbuild:tool`): the modules the
rules start with `python -m` and, by dependency inference, everything they import.

Image assembly, the Debian base, the container runner, registry pushes and SageMaker calls
all live in modules that never import Pants. Rules run them in a sandboxed Process, so
their results are cached on disk and their bytes never pass through the Pants process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

from pants.backend.python.util_rules.pex import Pex, PexRequest, VenvPex
from pants.backend.python.util_rules.pex_environment import PexEnvironment
from pants.backend.python.util_rules.pex_from_targets import PexFromTargetsRequest
from pants.engine.addresses import Address, AddressInput
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import WrappedTarget, WrappedTargetRequest

from mlbuild_pants.subsystem import MLBuildSubsystem

# NB: mlbuild has no releases: its version is the digest of the library sources the tool was
# built from (a PEP 440 local version), so provenance names exactly the code that built it.
VERSION_PREFIX = "0.dev0+src."


@dataclass(frozen=True)
class MLBuildTool:
    """For Processes: a venv, fast to start."""

    pex: VenvPex
    version: str


@dataclass(frozen=True)
class MLBuildToolPex:
    """For `pants run`/`publish`: a zipapp PEX, run as `python mlbuild_tool.pex -m <module>`."""

    pex: Pex


@dataclass(frozen=True)
class MLBuildToolPexRequest:
    pass


# NB: a zipapp PEX unpacks its wheels into PEX_ROOT and Python then writes .pyc files there.
# Without this it would be the account's ~/.pex; the build's cache is Pants' `pex_root`
# named cache, which must only ever be written by builds (bytecode a run wrote there entered
# the next build's PEX). So PEXes run by hand through `pants run`/`publish` get a cache of
# their own that no build reads.
RUN_PEX_ROOT_CACHE = "mlbuild_run_pex_root"


def tool_pex_environment(pex_env: PexEnvironment) -> Dict[str, str]:
    """The environment a zipapp PEX needs when `pants run`/`publish` starts it on the host."""
    return {"PEX_ROOT": str(pex_env.named_caches_dir / RUN_PEX_ROOT_CACHE)}


@dataclass(frozen=True)
class _ToolRequest:
    request: PexRequest
    version: str


@rule
async def mlbuild_tool_request(mlbuild: MLBuildSubsystem) -> _ToolRequest:
    """The tool PEX's request, from the `[mlbuild].tool_target` target and what it depends on.

    NB: the library's sources come through the engine (not from this plugin's own folder), so an
    edit to them rebuilds the tool without restarting pantsd, and the plugin imports none of them.
    """
    origin = "the option `[mlbuild].tool_target`"
    address = await Get(Address, AddressInput, AddressInput.parse(mlbuild.tool_target, description_of_origin=origin))
    # NB: resolved here so that a missing target is reported with the option that names it.
    await Get(WrappedTarget, WrappedTargetRequest(address, description_of_origin=origin))
    request = await Get(
        PexRequest,
        PexFromTargetsRequest(
            [address],
            output_filename="mlbuild_tool.pex",
            internal_only=True,
            description="Building the mlbuild tool PEX",
        ),
    )
    assert request.sources is not None
    return _ToolRequest(request, version=VERSION_PREFIX + request.sources.fingerprint[:16])


@dataclass(frozen=True)
class MLBuildToolRequest:
    """For rules that need the tool only on some paths (a rule parameter is always computed)."""


@rule
async def mlbuild_tool_on_request(_: MLBuildToolRequest, tool: MLBuildTool) -> MLBuildTool:
    return tool


@rule(desc="Building the mlbuild tool")
async def build_mlbuild_tool(request: _ToolRequest) -> MLBuildTool:
    return MLBuildTool(await Get(VenvPex, PexRequest, request.request), request.version)


@rule(desc="Building the mlbuild tool PEX")
async def build_mlbuild_tool_pex(_: MLBuildToolPexRequest, request: _ToolRequest) -> MLBuildToolPex:
    return MLBuildToolPex(await Get(Pex, PexRequest, request.request))


def rules():
    return collect_rules()
