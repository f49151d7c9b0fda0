#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan, in build-fuzz/) and runs
# each for a bounded time on its seeds: the committed corpus and regression
# inputs, and seeds built from pcaps/ by make_corpus.py. Fails when any target
# finds a crash, leak, timeout, out-of-memory or sanitizer report; the input
# that did it is left in build-fuzz/fuzz-work/<target>/ (see README.md).
#
#   tests/fuzz/run.sh [TARGET...]       # default: every target
#   L7TAP_FUZZ_SECONDS=600 tests/fuzz/run.sh http2
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${L7TAP_FUZZ_SECONDS:-60}
build=${L7TAP_FUZZ_BUILD:-build-fuzz}
targets=("$@")
((${#targets[@]})) ||
  targets=(pcap reassembly http1 http2 tls frame_walk pod_list plaintext proc_text config redaction
    route go_binary tls_events trace_config function_targets record_policy hpack defrag)

CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DL7TAP_FUZZ=ON -DL7TAP_BUILD_TESTS=OFF -DL7TAP_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target "${targets[@]/#/fuzz_}"

seeds=$build/fuzz-seeds
rm -rf "$seeds"
python3 tests/fuzz/make_corpus.py "$seeds"

# Leaks are failures too; a leak report needs the process to exit normally.
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

failed=()
for t in "${targets[@]}"; do
  work=$build/fuzz-work/$t
  mkdir -p "$work/corpus"
  dict=()
  case $t in
    http1) dict=(-dict=tests/fuzz/http1.dict) ;;
    http2 | frame_walk) dict=(-dict=tests/fuzz/http2.dict) ;;
    pod_list) dict=(-dict=tests/fuzz/pod_list.dict) ;;
    config) dict=(-dict=tests/fuzz/config.dict) ;;
    trace_config) dict=(-dict=tests/fuzz/trace_config.dict) ;;
    redaction) dict=(-dict=tests/fuzz/redaction.dict) ;;
    route) dict=(-dict=tests/fuzz/route.dict) ;;
  esac
  dirs=("$work/corpus")
  # make_corpus.py seeds only the targets fed from pcaps/.
  for d in "$seeds/$t" tests/fuzz/corpus/"$t" tests/fuzz/regressions/"$t"; do
    [[ -d $d ]] && dirs+=("$d")
  done
  echo "-- fuzz_$t for ${seconds}s"
  # New inputs go to the first directory (kept between local runs); the
  # others are read only.
  if "$build/tests/fuzz/fuzz_$t" "${dict[@]}" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 \
    -artifact_prefix="$work/" "${dirs[@]}" >"$work/log" 2>&1; then
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$work/log" |
      tr '\n' ' '
    echo
  else
    failed+=("$t")
    echo "fuzz_$t FAILED (log: $work/log):"
    grep -E 'ERROR|SUMMARY|Test unit written|runtime error' "$work/log" | head -20 || true
    tail -40 "$work/log"
  fi
done

# The plain closing line CI reads: targets that ran clean, targets that failed.
echo "fuzz: $((${#targets[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
if ((${#failed[@]})); then
  echo "fuzz: failed: ${failed[*]} (${seconds}s each)" >&2
  exit 1
fi
