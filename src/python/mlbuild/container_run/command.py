"""What `docker run IMAGE train` runs, resolved against the unpacked rootfs on the host.

Docker's rule: arguments after the image name replace `Cmd`, so the process is
`Entrypoint + ["train"]` when the image has an Entrypoint, else `["train"]`. A program
name without `/` is looked up on the image's PATH (Docker's default PATH when the image
sets none), like execvp does inside the container.

NB: bwrap execs its command with execvp *after* `--clearenv`/`--setenv`, so a bare name
would be searched on the image's PATH too (checked with bwrap 0.8), but a miss only says
"bwrap: execvp train: No such file or directory". Resolving here gives an error that names
the image's PATH and the fix, and checks a script's `#!` interpreter exists (distroless
bases have no /bin/sh); the sandbox then gets an absolute path.
"""

from __future__ import annotations

import posixpath
from typing import Any, Mapping, Sequence

from mlbuild.container_run.errors import ImageCommandError
from mlbuild.container_run.rootfs_view import find, is_executable_file, read_head
from mlbuild.oci.image import DEFAULT_PATH

TRAIN = "train"


def docker_argv(runtime_config: Mapping[str, Any], args: Sequence[str] = (TRAIN,)) -> list[str]:
    """The argv of `docker run IMAGE *args`: Entrypoint + args, or args alone (Cmd is replaced)."""
    entrypoint = list(runtime_config.get("Entrypoint") or [])
    argv = [*entrypoint, *args]
    if not argv:
        raise ImageCommandError("the image has no Entrypoint and no command was given.")
    return argv


def search_candidates(program: str, path_env: str | None, workdir: str) -> list[str]:
    """Where execvp would look for `program`, as absolute container paths, in order."""
    if "/" in program:
        return [posixpath.normpath(posixpath.join(workdir or "/", program))]
    # NB: relative PATH entries depend on the cwd and empty ones mean the cwd; Docker
    # images practically never use them, and skipping them keeps the lookup unambiguous.
    dirs = [d for d in (DEFAULT_PATH if path_env is None else path_env).split(":") if d.startswith("/")]
    return [posixpath.join(posixpath.normpath(d), program) for d in dirs]


def resolve_command(
    rootfs: Any, argv: Sequence[str], path_env: str | None, workdir: str = "/", verb: str = TRAIN
) -> list[str]:
    """`argv` (what `docker run IMAGE <verb>` runs) with its program made absolute, after
    checking it can be executed in `rootfs`."""
    program = argv[0]
    candidates = search_candidates(program, path_env, workdir)
    not_executable = []
    for candidate in candidates:
        rel, node = find(rootfs, candidate)
        if is_executable_file(node):
            _check_interpreter(rootfs, candidate, rel, workdir, verb)
            return [candidate, *argv[1:]]
        if node is not None and node.kind == "file":
            not_executable.append(f"{candidate} (mode {node.mode:04o})")
    where = candidates[0] if "/" in program else f"the image's PATH ({path_env or DEFAULT_PATH})"
    found = f" Found, but not executable: {', '.join(not_executable)}." if not_executable else ""
    raise ImageCommandError(
        f"`docker run IMAGE {verb}` would run {list(argv)}, but there is no executable `{program}` on {where}.{found} "
        f"Fix: add an executable (mode 0755) `{verb}` to the image, e.g. /usr/local/bin/{verb}, or fix its Entrypoint/PATH."
    )


def _check_interpreter(rootfs: Any, program: str, rel: str, workdir: str, verb: str) -> None:
    try:
        head = read_head(rootfs, rel)
    except OSError:
        return  # NB: unreadable here need not mean unrunnable there; let exec decide.
    if not head.startswith(b"#!"):
        return
    words = head[2:].split(b"\n", 1)[0].split()
    if not words:
        raise ImageCommandError(f"{program} starts with `#!` but names no interpreter.")
    interpreter = words[0].decode(errors="replace")
    path = posixpath.normpath(posixpath.join(workdir or "/", interpreter))
    if not is_executable_file(find(rootfs, path)[1]):
        raise ImageCommandError(
            f"{program} starts with `#!{interpreter}`, but {path} is not an executable file in the image "
            f"(a distroless base has no /bin/sh). Fix: point the `#!` line at an interpreter the image has, "
            f"e.g. #!/usr/bin/python3.11, or make `{verb}` a binary or a PEX run by one."
        )
