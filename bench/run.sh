#!/usr/bin/env bash
# Prints the load figures of bench/load.rs: finds (or installs) PostgreSQL
# and NATS the way tests/run.sh does, builds in release mode, and runs
# every phase (each bounded; BENCH_SECONDS, default 10).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
eval "$(ANNALS_ONLY_SETUP=1 bash tests/run.sh)"
cargo bench --bench load
