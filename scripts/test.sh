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

step "SDK contract tests: the official Python (permit) and Node (permitio) SDKs against the local Permit"
# Outside CI a machine without Python or Node skips this stage loudly; under CI=true it fails.
sdk_tools_ok=true
missing() {
  if [ "${CI:-}" = "true" ]; then echo "error: $1 is required for the SDK contract tests" >&2; exit 1; fi
  echo "SKIPPED: $1 not found, SDK contract tests not run"; sdk_tools_ok=false
}
for tool in python3 node npm; do command -v "$tool" >/dev/null 2>&1 || missing "$tool"; done
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  missing "python3 venv/pip (Debian: apt-get install python3-venv)"
fi
if [ "$sdk_tools_ok" = true ]; then
  cargo build --locked
  export PERMIT_SYNC_BIN="$PWD/target/debug/permit-sync"
  venv=tests/sdk/python/.venv
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/sdk/python/requirements.txt
  (cd tests/sdk/python && .venv/bin/python -m pytest -q -p no:cacheprovider)
  (cd tests/sdk/node && npm ci --no-audit --no-fund --loglevel=error && npm test)
fi
