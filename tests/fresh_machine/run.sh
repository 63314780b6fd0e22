#!/usr/bin/env bash
# Fresh-machine test: the README's first command on a clean Debian 12.
#
# The CI machines have pyenv's CPython 3.9, so the launcher's Debian route (python3.9 from
# bullseye, a venv without ensurepip) never runs there. This builds a clean Debian 12 root laid
# out like the official debian:bookworm image (deb822 sources with a commented
# snapshot.debian.org line, no /etc/apt/sources.list; git, ca-certificates and python3 3.11;
# no Python 3.9, no pyenv, no pip), clones the repo's committed HEAD into it, and under
# bubblewrap (network shared, empty environment):
#   1. as a non-root user, `./pants --version` must exit non-zero with one instruction (the
#      root commands, or MLBUILD_PYTHON39) and no apt output, and must change nothing;
#   2. as root, the README's first `./pants` command must train churn and write its metrics;
#   3. the same command again (warm caches), for the timing.
# Needs root (mmdebstrap --mode=root, bwrap as root) and the Debian mirror and PyPI.
# Not a Pants test: run it directly (CI: .ci/run). Builds from scratch each time (~35 s).
#
# Env: MLBUILD_FRESH_MIRROR (default http://deb.debian.org/debian),
#      MLBUILD_FRESH_KEEP=1 keeps the work folder (printed) for a look afterwards.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
MIRROR="${MLBUILD_FRESH_MIRROR:-http://deb.debian.org/debian}"
# The registries here are reached through a TLS proxy whose CA only this machine's bundle has;
# the root gets that bundle in place of its own, and the same variables that name it here.
HOST_BUNDLE="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}"

note() { echo "fresh-machine: $*" >&2; }
fail() {
  echo "fresh-machine: FAIL: $*" >&2
  exit 1
}

TIMINGS=()
STEP_START=$SECONDS
step() {
  STEP_START=$SECONDS
  note "--- $* ---"
}
took() { TIMINGS+=("$(printf '%-48s %4d s' "$1" $((SECONDS - STEP_START)))"); }

[[ "$(id -u)" == "0" ]] || fail "run as root (mmdebstrap --mode=root, and bwrap to enter the root)"
missing=()
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
command -v bwrap >/dev/null || missing+=(bubblewrap)
if ((${#missing[@]})); then
  note "installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || fail "could not install ${missing[*]}"
fi
[[ -f "$HOST_BUNDLE" ]] || fail "no CA bundle at $HOST_BUNDLE"

WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/mlbuild-fresh.XXXXXX")"
ROOT="$WORK/root"
cleanup() {
  local rc=$?
  if ((${#TIMINGS[@]})); then
    note "timings:"
    printf '    %s\n' "${TIMINGS[@]}" >&2
    grep -h 'pants launcher: python3.9 installed in' "$WORK/first.log" 2>/dev/null | sed 's/^/    /' >&2 || true
    note "total $SECONDS s"
  fi
  if [[ "${MLBUILD_FRESH_KEEP:-0}" == "1" ]]; then
    note "kept $WORK (root: $ROOT)"
  else
    rm -rf --one-file-system "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT

# Run a shell command in the root as USER (root, or a uid: setpriv drops to it, so it is a real
# unprivileged user, not a user namespace's), with HOME: its own pid namespace (pantsd dies with
# the command), the host's network and /sys (read-only), a fresh /dev, /proc and /tmp, and an
# empty environment but for the basics.
in_root() {
  local user="$1" home="$2" cmd="$3"
  local envs=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 TERM=dumb HOME="$home")
  [[ -n "${SSL_CERT_FILE:-}" ]] && envs+=(SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt)
  [[ -n "${REQUESTS_CA_BUNDLE:-}" ]] && envs+=(REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt)
  local as=()
  [[ "$user" != root ]] && as=(/usr/bin/setpriv --reuid="$user" --regid="$user" --clear-groups)
  bwrap --bind "$ROOT" / --dev /dev --proc /proc --ro-bind /sys /sys --perms 1777 --tmpfs /tmp \
    --share-net --unshare-pid --unshare-ipc --unshare-uts --die-with-parent --chdir /work/repo \
    "${as[@]}" /usr/bin/env -i "${envs[@]}" /bin/bash -c "$cmd"
}

# --- 1. a clean Debian 12 root ----------------------------------------------------------
step "mmdebstrap bookworm (minbase + git, ca-certificates, python3) from $MIRROR"
mmdebstrap --variant=minbase --include=git,ca-certificates,python3 --mode=root \
  bookworm "$ROOT" "$MIRROR" >"$WORK/mmdebstrap.log" 2>&1 \
  || { tail -n 20 "$WORK/mmdebstrap.log" >&2; fail "mmdebstrap failed (log above)"; }
took "mmdebstrap"

step "lay the root out like debian:bookworm, copy the CA bundle, clone the repo"
rm -f "$ROOT/etc/apt/sources.list"
mkdir -p "$ROOT/etc/apt/sources.list.d"
cat >"$ROOT/etc/apt/sources.list.d/debian.sources" <<'EOF'
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
# http://snapshot.debian.org/archive/debian-security/20250520T000000Z
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
if [[ "$MIRROR" != http://deb.debian.org/debian ]]; then
  sed -i "s|^URIs: http://deb.debian.org/debian$|URIs: ${MIRROR%/}|" "$ROOT/etc/apt/sources.list.d/debian.sources"
fi
install -m 0644 "$HOST_BUNDLE" "$ROOT/etc/ssl/certs/ca-certificates.crt"
rm -f "$ROOT/etc/resolv.conf"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
chroot "$ROOT" useradd --create-home --uid 1000 --user-group --shell /bin/bash newcomer
for absent in /usr/bin/python3.9 /usr/local/bin/python3.9 /root/.pyenv /etc/apt/sources.list; do
  [[ ! -e "$ROOT$absent" ]] || fail "the fresh root unexpectedly has $absent"
done
# Only committed files: what a user who clones gets.
git -C "$REPO" diff --quiet HEAD 2>/dev/null \
  || note "NB: $REPO has uncommitted changes; this tests its HEAD ($(git -C "$REPO" rev-parse --short HEAD))"
git clone --quiet "$REPO" "$ROOT/work/repo"
took "layout + git clone"

# --- 2. non-root, no Python 3.9: one instruction, no apt, nothing changed ---------------
step "as a non-root user (uid 1000): ./pants --version"
set +e
in_root 1000 /home/newcomer 'cd /work/repo && ./pants --version' >"$WORK/nonroot.log" 2>&1
rc=$?
set -e
sed 's/^/    | /' "$WORK/nonroot.log" >&2
((rc != 0)) || fail "non-root: ./pants exited 0 without a Python 3.9"
grep -q 'apt-get install' "$WORK/nonroot.log" || fail "non-root: the message does not say what to install as root"
grep -q 'MLBUILD_PYTHON39' "$WORK/nonroot.log" || fail "non-root: the message does not mention MLBUILD_PYTHON39"
if grep -qE '^(Hit|Get|Ign|Err):|^Reading package lists|^Building dependency tree|^(E|W): ' "$WORK/nonroot.log"; then
  fail "non-root: apt output in the message"
fi
lines=$(wc -l <"$WORK/nonroot.log")
((lines <= 20)) || fail "non-root: $lines lines of output; expected one short instruction"
[[ ! -e "$ROOT/etc/apt/sources.list.d/mlbuild-bullseye.list" && ! -e "$ROOT/usr/bin/python3.9" ]] \
  || fail "non-root: the launcher changed the system"
took "non-root instruction (exit $rc)"

# --- 3. as root: the README's first command ---------------------------------------------
first="$(grep -m1 -E '^\./pants ' "$ROOT/work/repo/README.md" | sed -E 's/[[:space:]]+#.*$//')"
[[ -n "$first" ]] || fail "no './pants …' line in README.md"
step "as root: $first"
set +e
in_root root /root "cd /work/repo && $first" 2>&1 | tee "$WORK/first.log" | sed 's/^/    | /' >&2
rc=${PIPESTATUS[0]}
set -e
((rc == 0)) || fail "'$first' exited $rc in the fresh root (output above)"
run_dir="$(sed -n 's/^mlbuild: run complete: \([^ ]*\).*/\1/p' "$WORK/first.log" | tail -n1)"
[[ -n "$run_dir" ]] || fail "'$first' did not print 'mlbuild: run complete: <run folder>'"
metrics="$ROOT/work/repo/$run_dir/model/metrics.json"
[[ -f "$metrics" ]] || fail "no metrics file at $run_dir/model/metrics.json"
python3 - "$metrics" <<'EOF' || fail "the churn metrics are missing or not numbers: $metrics"
import json, math, sys
m = json.load(open(sys.argv[1]))
for key in ("validation:auc", "validation:accuracy"):
    assert isinstance(m[key], (int, float)) and math.isfinite(m[key]), key
print("fresh-machine: churn metrics:", json.dumps(m, sort_keys=True), file=sys.stderr)
EOF
[[ -x "$ROOT/usr/bin/python3.9" ]] || fail "the launcher did not install /usr/bin/python3.9"
took "README first command, cold (as root)"

step "as root, again (warm caches): $first"
in_root root /root "cd /work/repo && $first" >"$WORK/second.log" 2>&1 \
  || { sed 's/^/    | /' "$WORK/second.log" >&2; fail "the second '$first' failed"; }
# An identical run (same PEX, hyperparameters and data) is reused, not trained again.
grep -qE '^mlbuild: (run complete|an identical run already finished)' "$WORK/second.log" \
  || { sed 's/^/    | /' "$WORK/second.log" >&2; fail "the second '$first' printed neither a new run folder nor the identical earlier run"; }
sed 's/^/    | /' "$WORK/second.log" >&2
took "README first command, warm"

note "PASS"
