#!/usr/bin/env bash
# Runs fuzz targets with the bounds fuzz/README.md states, at most two at a time (the machines
# this project runs on have two cores), each into its corpus under fuzz/corpus/<target>/ and
# with its log in fuzz/logs/<target>.log.
#
#   fuzz/run.sh [SECONDS] [TARGET...]   # default: 600 seconds, every target
set -euo pipefail

cd "$(dirname "$0")"
seconds=${1:-600}
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
mkdir -p logs

# The largest input libFuzzer makes for a target: archives need room for a few entries, the
# text parsers far less (their limits are a few KiB).
max_len() {
    case $1 in
        readonly_tar | archive_import) echo 65536 ;;
        index | successors) echo 16384 ;;
        *) echo 4096 ;;
    esac
}

run() {
    local target=$1
    mkdir -p "corpus/$target"
    # readonly_tar writes each input to a temporary file: keep those in memory.
    TMPDIR=/dev/shm cargo +nightly fuzz run -O "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=512 -malloc_limit_mb=256 \
        -max_len="$(max_len "$target")" -print_final_stats=1 >"logs/$target.log" 2>&1
}

cargo +nightly fuzz build -O
status=0
for ((i = 0; i < ${#targets[@]}; i += 2)); do
    pids=()
    for target in "${targets[@]:i:2}"; do
        echo "fuzzing $target for ${seconds}s" >&2
        run "$target" &
        pids+=("$!")
    done
    for pid in "${pids[@]}"; do
        wait "$pid" || status=1
    done
done
exit "$status"
