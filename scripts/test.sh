#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, then runs them.
# Under CI=true nothing is skipped: a missing component fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
cargo --version

step "format and lints"
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings

step "tests"
cargo test --locked --all-targets 2>&1 | tee target/test-output.txt
