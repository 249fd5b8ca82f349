#!/usr/bin/env bash
# The second command of the README, and what CI runs (.ci/run): installs what is missing,
# builds, and runs every test (unit tests, then the integration tests against the real
# PostgreSQL and a real Apache Kafka broker per test), first in a debug build, then again under
# AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer), then the libFuzzer targets
# for a bounded time.
#
#   scripts/test.sh            both builds
#   scripts/test.sh --quick    the debug build only
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
jobs="$(nproc)"

"$here/install-deps.sh"
# Apache Kafka's jars from Maven Central, once (cached): a failure shows here, in one line.
"$here/kafka.sh" fetch

export AW_IT_PG_RUN="$repo/.run/it-pg"
stop_pg() { AW_RUN_DIR="$AW_IT_PG_RUN" AW_PG_PORT="${AW_IT_PG_PORT:-25442}" "$here/pg.sh" stop >/dev/null 2>&1 || true; }
trap stop_pg EXIT

run_suite() { # build-dir cmake-args...
	local dir="$1"
	shift
	echo "==> build $dir ($*)"
	cmake -S "$repo" -B "$dir" "$@" >/dev/null
	cmake --build "$dir" -j"$jobs"
	echo "==> tests in $dir"
	(cd "$dir" && ctest --output-on-failure --no-tests=error)
}

run_suite "$repo/build" -DCMAKE_BUILD_TYPE=Debug
if [[ "${1:-}" != "--quick" ]]; then
	# halt_on_error: any report fails the test; detect_leaks: the debug build frees everything.
	export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=1"
	export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
	run_suite "$repo/build-asan" -DCMAKE_BUILD_TYPE=Debug -DAW_SANITIZE=ON
	# Message decoding and config parsing under libFuzzer, a minute each.
	"$here/fuzz.sh" 60
fi
echo "==> all tests passed"
