#!/usr/bin/env bash
# Builds kube-apiserver, kubectl, etcd and helm from the Go module proxy into a version-keyed cache.
# Idempotent: returns at once when the binaries are already there. Prints the bin dir on the last line.
set -euo pipefail
K8S=${KUBE_TESTENV_K8S:-1.37.2}
HELM=${KUBE_TESTENV_HELM:-3.21.4}
STG=v0.${K8S#1.}
MINOR=$(echo "$K8S" | cut -d. -f2)
OUT=${KUBE_TESTENV_BIN:-$HOME/.cache/permit-sync/kube-testenv/v$K8S-helm$HELM}
here=$(cd "$(dirname "$0")" && pwd)
if [ -x "$OUT/kube-apiserver" ] && [ -x "$OUT/etcd" ] && [ -x "$OUT/kubectl" ] && [ -x "$OUT/helm" ]; then
  echo "$OUT"; exit 0
fi
log() { echo "[kube-testenv] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# CI's environment may lack the login PATH; the machines install Go in /usr/local/go.
command -v go >/dev/null 2>&1 || { [ -x /usr/local/go/bin/go ] && export PATH="$PATH:/usr/local/go/bin"; } || true
command -v go >/dev/null 2>&1 || die "the 'go' command is missing (needed once to build $OUT; install Go >= 1.26.8, as the project's machines have in /usr/local/go). CI=${CI:-} fails here: the Kubernetes tests cannot run without these binaries."
mkdir -p "$OUT" || die "cannot create $OUT"
# One build at a time per cache folder (parallel test runs on one machine share it).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$OUT/.build.lock"
  flock -w 3600 9 || die "another build of $OUT held the lock for an hour"
  if [ -x "$OUT/kube-apiserver" ] && [ -x "$OUT/etcd" ] && [ -x "$OUT/kubectl" ] && [ -x "$OUT/helm" ]; then
    echo "$OUT"; exit 0
  fi
fi
start=$(date +%s)
log "building into $OUT (cold: about 7 min on 2 idle cores, ~1 GB of modules; longer when shared)"
export CGO_ENABLED=0

# The wrapper module lives in a work copy so the committed go.mod/go.sum stay the source of truth.
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
if grep -q "k8s.io/kubernetes v$K8S\b" "$here/wrapper/go.mod" 2>/dev/null; then
  cp "$here/wrapper/go.mod" "$here/wrapper/go.sum" "$W/"
else
  log "no committed wrapper for k8s v$K8S in $here/wrapper: creating one (commit it afterwards)"
fi
cd "$W"
# The committed go.mod/go.sum are complete: build from them as they are (readonly), so a fresh
# machine builds exactly the committed graph or fails loudly. Only a new wrapper may change.
export GOFLAGS=-mod=readonly
if [ ! -f go.mod ]; then
  export GOFLAGS=-mod=mod
  log "creating wrapper module for k8s v$K8S"
  go mod init kubetestenv.local/tools >/dev/null 2>&1
  KMOD=$(go mod download -json "k8s.io/kubernetes@v$K8S" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  GODEBUG_LINE=$(grep '^godebug' "$KMOD" || true)
  for m in $(sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/.*#\1#p' "$KMOD"); do
    go mod edit -replace="$m=$m@$STG"
  done
  go mod edit -require="k8s.io/kubernetes@v$K8S" \
    -tool=k8s.io/kubernetes/cmd/kube-apiserver -tool=k8s.io/kubernetes/cmd/kubectl
  [ -n "$GODEBUG_LINE" ] && echo "$GODEBUG_LINE" >> go.mod
  go mod tidy
  ETCDV=$(go list -m -f '{{.Version}}' go.etcd.io/etcd/client/v3)
  log "etcd version from k8s graph: $ETCDV"
  go get -tool "go.etcd.io/etcd/server/v3@$ETCDV"
  go mod tidy
  mkdir -p "$here/wrapper"
  cp go.mod go.sum "$here/wrapper/"
fi
V=k8s.io/component-base/version
LDF="-s -w -X $V.gitVersion=v$K8S -X $V.gitMajor=1 -X $V.gitMinor=$MINOR -X $V.gitTreeState=clean -X $V.buildDate=1970-01-01T00:00:00Z"
if [ ! -x "$OUT/etcd" ]; then
  log "building etcd"; go build -trimpath -ldflags "-s -w" -o "$OUT/etcd.tmp" go.etcd.io/etcd/server/v3 && mv "$OUT/etcd.tmp" "$OUT/etcd"
fi
if [ ! -x "$OUT/kube-apiserver" ]; then
  log "building kube-apiserver v$K8S (slow: several minutes on 2 cores)"
  go build -trimpath -ldflags "$LDF" -o "$OUT/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver && mv "$OUT/kube-apiserver.tmp" "$OUT/kube-apiserver"
fi
if [ ! -x "$OUT/kubectl" ]; then
  log "building kubectl"
  go build -trimpath -ldflags "$LDF -X k8s.io/client-go/pkg/version.gitVersion=v$K8S" -o "$OUT/kubectl.tmp" k8s.io/kubernetes/cmd/kubectl && mv "$OUT/kubectl.tmp" "$OUT/kubectl"
fi
if [ ! -x "$OUT/helm" ]; then
  log "building helm v$HELM"
  H=$(mktemp -d)
  HV=helm.sh/helm/v3
  GOBIN="$H" GOFLAGS= go install -trimpath -ldflags "-s -w -X $HV/internal/version.version=v$HELM -X $HV/pkg/chartutil.k8sVersionMajor=1 -X $HV/pkg/chartutil.k8sVersionMinor=$MINOR -X $HV/pkg/lint/rules.k8sVersionMajor=1 -X $HV/pkg/lint/rules.k8sVersionMinor=$MINOR" "$HV/cmd/helm@v$HELM"
  mv "$H/helm" "$OUT/helm"; rm -rf "$H"
fi
# sed, not head: head may close the pipe early and pipefail would turn SIGPIPE into a failure.
"$OUT/kube-apiserver" --version >&2; "$OUT/etcd" --version 2>&1 | sed -n 1p >&2; "$OUT/helm" version --short >&2
"$OUT/kube-apiserver" --version | grep -qx "Kubernetes v$K8S" || die "kube-apiserver in $OUT is not v$K8S"
log "built in $(( $(date +%s) - start ))s"
echo "$OUT"
