#!/usr/bin/env bash
# How much the ./pants launcher adds to a call, side by side with running the bootstrapped
# Pants venv directly (the peer: what a scie-pants install would exec). Same run, same machine.
# With pantsd warm it also compares the native client the launcher execs against the Python
# client (the venv's `pants`), and the floor: a bare `true`.
#   bash bench/launcher.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-10}"
./pants --version >/dev/null  # bootstrap outside the measurement
venv="${MLBUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mlbuild}/pants-2.17.1"
time_it() {  # prints the mean wall time in ms of N runs of "$@"
  local start end
  start=$(date +%s%N)
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1; done
  end=$(date +%s%N)
  echo $(( (end - start) / n / 1000000 ))
}
# NB: `--version` with pantsd off measures startup, not the daemon.
direct=$(time_it "$venv/bin/pants" --no-pantsd --version)
launcher=$(time_it ./pants --no-pantsd --version)
# The launcher's own work, without Pants: everything up to the final exec.
script_only=$(time_it bash -c 'sed "s|^\( *\)exec .*|\1exit 0|" pants > /tmp/mlbuild-launcher-noexec && bash /tmp/mlbuild-launcher-noexec')
# pantsd warm: one call starts it, then the clients only talk to it.
./pants --version >/dev/null
warm_launcher=$(time_it ./pants --version)
warm_python=$(time_it env MLBUILD_NATIVE_CLIENT=0 ./pants --version)
floor=$(time_it true)
echo "runs: $n"
echo "venv pants --version (peer):      ${direct} ms"
echo "./pants --version (launcher):     ${launcher} ms"
echo "launcher alone (no Pants):        ${script_only} ms"
echo "ratio launcher/peer:              $(python3 -c "print(f'{$launcher/$direct:.3f}')")"
echo "pantsd warm, ./pants (native):    ${warm_launcher} ms"
echo "pantsd warm, Python client:       ${warm_python} ms"
echo "floor (true):                     ${floor} ms"
echo "ratio native/Python, warm:        $(python3 -c "print(f'{$warm_launcher/max($warm_python,1):.3f}')")"
