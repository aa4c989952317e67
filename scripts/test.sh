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
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "Kubernetes test environment (kube-apiserver, etcd, kubectl, helm; built once, then cached)"
# Built from the Go module proxy into a version-keyed cache (README: Kubernetes test environment).
# Under CI=true a failed build fails the run; elsewhere the Kubernetes tests skip with a note.
if kube_bin=$(tests/kube-testenv/build.sh | tail -n 1) && [ -n "$kube_bin" ]; then
  export KUBE_TESTENV_BIN="$kube_bin"
  echo "KUBE_TESTENV_BIN=$KUBE_TESTENV_BIN"
elif [ "${CI:-}" = true ]; then
  echo "error: tests/kube-testenv/build.sh failed; under CI=true the Kubernetes tests must run" >&2
  exit 1
else
  echo "warning: tests/kube-testenv/build.sh failed; the Kubernetes tests will skip" >&2
fi

step "actionlint (checks examples/github-actions; built once from the Go module proxy)"
ACTIONLINT_DIR="$HOME/.cache/permit-sync/actionlint-v1.7.12"
if [ ! -x "$ACTIONLINT_DIR/actionlint" ]; then
  if ! PATH="$PATH:/usr/local/go/bin" GOBIN="$ACTIONLINT_DIR" CGO_ENABLED=0 \
    go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12; then
    if [ "${CI:-}" = true ]; then echo "error: cannot build actionlint under CI=true" >&2; exit 1; fi
    echo "warning: actionlint could not be built; its test will skip" >&2
  fi
fi

step "tests"
cargo test --locked --workspace --all-targets --no-fail-fast 2>&1 | tee target/test-output.txt

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
  # Python: the newest 2.x release of `permit` (what many apps pin) and 3.x, each in its own venv.
  for sdk in 3.x:requirements.txt:.venv 2.x:requirements-2.x.txt:.venv-2.x; do
    IFS=: read -r version requirements venv <<<"$sdk"
    echo "-- Python permit $version"
    [ -x "tests/sdk/python/$venv/bin/python" ] || python3 -m venv "tests/sdk/python/$venv"
    "tests/sdk/python/$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
      -r "tests/sdk/python/$requirements"
    (cd tests/sdk/python && "$venv/bin/python" -m pytest -q -p no:cacheprovider)
  done
  # Node: `permitio` 2.x (contract.test.mjs) and the previous major 1.x, installed under the npm
  # alias `permitio-v1` (contract-v1.test.mjs); `npm test` runs both files.
  (cd tests/sdk/node && npm ci --no-audit --no-fund --loglevel=error && npm test)
fi
