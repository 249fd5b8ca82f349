#!/usr/bin/env bash
# Runs each libFuzzer target for a bounded time (default 60 s each) from its seed corpus:
# tests/data/messages for message decoding, tests/data/config for worker.yaml.
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
build="$repo/build-fuzz"
seconds="${1:-60}"

CC=clang cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DAW_FUZZ=ON >/dev/null
cmake --build "$build" -j"$(nproc)" --target fuzz_message fuzz_config

run() { # target seed-dir...
	local target="$1"
	shift
	local work="$build/corpus-$target"
	mkdir -p "$work"
	echo "==> $target for ${seconds}s"
	# New inputs go to $work (first corpus dir); the seeds in the repository stay as they are.
	ASAN_OPTIONS="detect_leaks=1" "$build/tests/fuzz/$target" -max_total_time="$seconds" \
		-timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 "$work" "$@" 2>&1 |
		grep -E "^(#[0-9]+.*(DONE|INITED)|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==ERROR|SUMMARY)" || true
	# grep hides the fuzzer's chatter; its exit code is the verdict.
	return "${PIPESTATUS[0]}"
}

run fuzz_message "$repo/tests/data/messages"
run fuzz_config "$repo/tests/data/config/good" "$repo/tests/data/config/bad"
echo "==> fuzzing found nothing"
