#!/usr/bin/env bash
# The benchmark of issue 4: the worker against the ceilings of the same machine, same run.
#
#   tests/bench/run.sh [--count N] [--mix clean|errors|both] [--workers "1 2"] [--batch-size B]
#                      [--no-latency] [--no-connect] [--baseline REF] [--out DIR] [--keep]
#   tests/bench/run.sh --rss-check [--batch-size B] [--out DIR] [--keep]
#
# A benchmark, not a test: it prints figures and never fails on a time. It exits 1 when the
# correctness check fails (a request lost, doubled, or in the wrong place), 2 on bad usage.
# See tests/bench/README.md for what each figure means and the caveats.
#
# It starts its own PostgreSQL (scripts/pg.sh, run dir DIR/pg, port $AW_BENCH_PG_PORT or
# 55470) and, for every measured run, a fresh Apache Kafka broker on loopback (scripts/kafka.sh,
# KRaft, one node, run dir DIR/<run>/kafka) and a fresh database, so runs share nothing but the server process.
# Binaries come from $AW_BUILD_DIR (default <repo>/build-rel, a RelWithDebInfo build).
#
# Each run is preceded by the COPY ceiling: the stream's good rows loaded with COPY into a
# fresh database of the same schema, one session per worker. After a clean-mix run has
# measured the worker's capacity C, the same workers run live while a producer paces fresh
# streams at 50% and then 90% of C, for the end-to-end latency (--no-latency skips it).
#
# --baseline REF also measures the worker of git revision REF (HEAD~1, a commit id), built
# once into DIR/baseline/<commit>, in the same invocation: each configuration runs with this
# tree's worker, then with REF's, each on its own fresh broker and database, with the same
# input (this tree's aw-gen stream and aw-kafka), and the table compares them.
#
# When tests/bench/connect_sink.sh exists (Kafka Connect with a JDBC sink, the peer a user
# would pick instead) and --no-connect is not given, it runs after the workers on the clean
# stream, then paced at 50% and 90% of its own capacity, each time on a fresh broker and
# database, and the table gets a Connect row.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
source "$here/cpu_ticks.sh"
build="${AW_BUILD_DIR:-$repo/build-rel}"
out_dir="${AW_BENCH_DIR:-$repo/.run/bench}"
pg_port="${AW_BENCH_PG_PORT:-55470}"
connect_sink="$here/connect_sink.sh"

count=200000
mix_opt=both
workers_list="1 2"
batch=""
keep=0
rss_check=0
latency=1
connect=1
baseline_ref=""
seed=4242
tenant=7b3d0c1e-5a5a-4b4b-9c9c-00000000be7c
paced_secs=20 # the length of each paced phase (at most: a phase sends no more than N)
paced_pcts="50 90"
# PostgreSQL CPU per 1,000 requests before issue 4 (clean mix, one worker: 0.239 s in the
# README's figures); the issue's target is half of it.
pg_cpu_ref=0.24

usage() {
	sed -n '3,6p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

while (($# > 0)); do
	case "$1" in
	--count) count="${2:?}" && shift ;;
	--mix) mix_opt="${2:?}" && shift ;;
	--workers) workers_list="${2:?}" && shift ;;
	--batch-size) batch="${2:?}" && shift ;;
	--no-latency) latency=0 ;;
	--no-connect) connect=0 ;;
	--out) out_dir="${2:?}" && shift ;;
	--baseline) baseline_ref="${2:?}" && shift ;;
	--keep) keep=1 ;;
	--rss-check) rss_check=1 ;;
	-h | --help) usage ;;
	*) echo "run.sh: unknown argument '$1'" >&2 && usage ;;
	esac
	shift
done

case "$mix_opt" in
clean) mixes="clean" ;;
errors) mixes="errors" ;;
both) mixes="clean errors" ;;
*) echo "run.sh: --mix must be clean, errors or both" >&2 && exit 2 ;;
esac
[[ "$count" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --count must be a positive integer" >&2 && exit 2; }
for w in $workers_list; do
	[[ "$w" =~ ^[1-9][0-9]?$ ]] || { echo "run.sh: --workers takes numbers, e.g. \"1 2\"" >&2 && exit 2; }
done
if [[ -z "$batch" ]]; then
	# The default of the shipped config; 100 if the key is absent.
	batch="$(awk '$1 == "batch_size:" { print $2; exit }' "$repo/worker.yaml")"
	batch="${batch:-100}"
fi
if ! [[ "$batch" =~ ^[0-9]+$ ]] || ((batch < 1 || batch > 1000)); then
	echo "run.sh: --batch-size must be 1..1000" >&2
	exit 2
fi
if ((rss_check)); then
	[[ -z "$baseline_ref" ]] || { echo "run.sh: --baseline does not combine with --rss-check" >&2 && exit 2; }
	mixes="clean"
	workers_list="1"
	latency=0
	connect=0
fi
base_sha=""
base_short=""
if [[ -n "$baseline_ref" ]]; then
	base_sha="$(git -C "$repo" rev-parse --verify --quiet "$baseline_ref^{commit}")" ||
		{ echo "run.sh: --baseline: '$baseline_ref' is not a commit of $repo" >&2 && exit 2; }
	base_short="$(git -C "$repo" rev-parse --short "$base_sha")"
fi

WORKER="$build/worker/worker"
AWK="$build/tools/aw-kafka"
GEN="$build/tools/aw-gen"
# An optimised build of the current tree (a no-op when it is up to date).
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
[[ -x /usr/bin/time ]] || { echo "run.sh: needs /usr/bin/time (Debian package 'time')" >&2 && exit 2; }
command -v jq >/dev/null || { echo "run.sh: needs jq" >&2 && exit 2; }

pg_bindir="${AW_PG_BINDIR:-$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)}"
PSQL="$pg_bindir/psql"
[[ -x "$PSQL" ]] || { echo "run.sh: no psql under /usr/lib/postgresql/*/bin" >&2 && exit 2; }

mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"

# build_baseline SHA: sets base_worker, the worker of revision SHA built like $build
# (RelWithDebInfo), once: it is kept in DIR/baseline/SHA and reused by later invocations, a
# commit's source never changing. Only the worker is built: the tools and the stream stay
# this tree's, so both workers read byte-identical input.
build_baseline() {
	local sha="$1" dir="$out_dir/baseline/$1"
	base_worker="$dir/worker"
	base_how="built by an earlier run"
	[[ -x "$base_worker" ]] && return 0
	base_how="built now"
	rm -rf "$dir"
	mkdir -p "$dir/src"
	# git archive rather than a worktree: the repository (maybe someone else's checkout) is
	# only read, and removing DIR leaves nothing behind in its .git.
	git -C "$repo" archive --format=tar "$sha" | tar -x -C "$dir/src"
	if ! { cmake -S "$dir/src" -B "$dir/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
		cmake --build "$dir/build" --target worker -j"$(nproc)"; } >"$dir/build.log" 2>&1; then
		echo "run.sh: --baseline: building $sha failed; see $dir/build.log" >&2
		tail -n 20 "$dir/build.log" >&2
		exit 1
	fi
	# Put in place last, so an interrupted build is not taken for a cached one.
	cp "$dir/build/worker/worker" "$dir/worker.tmp"
	mv "$dir/worker.tmp" "$base_worker"
}
base_worker=""
if [[ -n "$base_sha" ]]; then
	build_baseline "$base_sha"
fi
pg_run="$out_dir/pg"
export PGHOST=127.0.0.1 PGPORT="$pg_port" PGUSER=postgres
clk_tck="$(getconf CLK_TCK)"

# ---- helpers -------------------------------------------------------------------------------

say() { printf '# %s\n' "$*"; }
now_ns() { date +%s%N; }
secs_since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
calc() { awk "BEGIN { $1 }"; }
num() { [[ "${1:-}" =~ ^[0-9]+(\.[0-9]+)?$ ]]; }
# ratio A B: A / B to two decimals, or - when either is not measured or B is 0
ratio() {
	if num "${1:-}" && num "${2:-}" && calc "exit !($2 > 0)"; then
		calc "printf \"%.2f\", $1 / $2"
	else
		echo -
	fi
}
# verdict FIGURE OP TARGET: met, not met, or not measured
verdict() {
	if ! num "${1:-}"; then
		echo "not measured"
	elif calc "exit !($1 $2 $3)"; then
		echo met
	else
		echo "not met"
	fi
}

pg() { AW_RUN_DIR="$pg_run" AW_PG_PORT="$pg_port" "$repo/scripts/pg.sh" "$@"; }
current_broker_dir=""
broker() { AW_RUN_DIR="$current_broker_dir" "$repo/scripts/kafka.sh" "$@"; }

# fresh_broker DIR: stops the current broker and starts a new one (run dir DIR/kafka, so a
# fresh topic and consumer groups); exports KAFKA_BROKERS, sets broker_pid.
fresh_broker() {
	if [[ -n "$current_broker_dir" ]]; then broker stop >/dev/null 2>&1 || true; fi
	current_broker_dir="$1"
	broker start >"$1/broker-start.log"
	KAFKA_BROKERS="$(<"$1/kafka/kafka.addr")"
	export KAFKA_BROKERS
	broker_pid="$(<"$1/kafka/kafka.pid")"
}

sql() { # DB SQL -> unaligned, tab-separated rows
	"$PSQL" -X -A -t -q -F $'\t' -v ON_ERROR_STOP=1 -d "$1" -c "$2"
}

# A database left by the previous run goes before the next measurement: its autovacuum
# would otherwise be counted in the next run's PostgreSQL CPU.
drop_db() {
	"$PSQL" -X -q -v ON_ERROR_STOP=1 -d postgres \
		-c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null
}
fresh_db() {
	drop_db "$1"
	"$PSQL" -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $1" >/dev/null
}
conninfo() { echo "postgresql://postgres@127.0.0.1:$pg_port/$1"; }

# Keys under kafka: that a worker of another revision may not know (a --baseline build is
# older than this tree), and unknown keys are errors (README, Configuration): each is written
# only for a binary whose check-config accepts it; a worker without the key runs as it does.
optional_kafka_lines=(
	"  transaction_interval_ms: 100" # SPEC 6's value
)
declare -A kafka_extra # kafka_extra[BIN]: the optional kafka: lines BIN accepts

# probe_config_keys BIN: fills kafka_extra[BIN], one check-config per optional key (no server
# is contacted: check-config only parses).
probe_config_keys() {
	local bin="$1" line accepted="" probe="$out_dir/probe-config.yaml"
	for line in "${optional_kafka_lines[@]}"; do
		kafka_extra[$bin]="$accepted$line"$'\n'
		write_config "$probe" probe probe "$bin"
		if "$bin" check-config --config "$probe" >/dev/null 2>&1; then
			accepted="${kafka_extra[$bin]}"
		fi
	done
	kafka_extra[$bin]="$accepted"
	rm -f "$probe"
}

# write_config FILE DB GROUP [BIN]: the config of worker BIN (default $WORKER) for one run
# (brokers from $KAFKA_BROKERS).
write_config() {
	cat >"$1" <<-YAML
		kafka:
		  brokers: "\${KAFKA_BROKERS:-127.0.0.1:9}"
		  group_id: $3
	YAML
	printf '%s' "${kafka_extra[${4:-$WORKER}]:-}" >>"$1"
	cat >>"$1" <<-YAML
		  properties:
		    session.timeout.ms: "6000"
		    heartbeat.interval.ms: "500"
		postgres:
		  conninfo: "$(conninfo "$2")"
		  batch_size: $batch
		log:
		  level: warn
		  format: json
	YAML
}

# prepare_db DB DIR [BIN]: fresh database, migrated by worker BIN (default $WORKER: each
# worker creates its own revision's schema), with the tenant aw-gen's streams name (they
# name no folder).
prepare_db() {
	local bin="${3:-$WORKER}"
	fresh_db "$1"
	write_config "$2/migrate.yaml" "$1" unused "$bin"
	"$bin" migrate --config "$2/migrate.yaml" 2>"$2/migrate.log" ||
		{ cat "$2/migrate.log" >&2 && return 1; }
	sql "$1" "INSERT INTO tenants (id, name) VALUES ('$tenant', 'bench tenant')" >/dev/null
}

# The PostgreSQL server's CPU so far (tests/bench/cpu_ticks.sh).
pg_server_ticks() { pg_cpu_ticks "$(head -n 1 "$pg_data/postmaster.pid")"; }
# timev FILE FIELD: a field of /usr/bin/time -v output
timev() { awk -F': ' -v f="$2" 'index($0, f) { print $2; exit }' "$1"; }
# time_cpu FILE...: user+sys seconds summed over /usr/bin/time -v outputs
time_cpu() {
	local f cpu=0
	for f in "$@"; do
		cpu="$(calc "printf \"%.2f\", $cpu + $(timev "$f" "User time (seconds)") + $(timev "$f" "System time (seconds)")")"
	done
	echo "$cpu"
}

# start_workers BIN NW DIR TAG [ARG...]: NW workers of BIN at once (so the group forms once),
# `run --config DIR/worker.yaml ARG...`, each under /usr/bin/time -v (CPU, peak RSS) and a
# timeout; files DIR/time-TAG-I.txt and DIR/worker-TAG-I.log; pids in worker_pids.
start_workers() {
	local bin="$1" nw="$2" dir="$3" tag="$4" i
	shift 4
	worker_pids=()
	for ((i = 1; i <= nw; i++)); do
		/usr/bin/time -v -o "$dir/time-$tag-$i.txt" \
			timeout -k 10 "$worker_limit" "$bin" run --config "$dir/worker.yaml" "$@" \
			2>"$dir/worker-$tag-$i.log" &
		worker_pids+=($!)
	done
}
# wait_workers: waits for them all; fails with the last non-zero exit status.
wait_workers() {
	local pid rc=0
	for pid in "${worker_pids[@]}"; do wait "$pid" || rc=$?; done
	worker_pids=()
	return "$rc"
}
# stop_workers: a graceful stop (SIGTERM), then wait_workers. /usr/bin/time -> timeout ->
# worker: TERM the timeout, which passes it on.
stop_workers() {
	local pid
	for pid in "${worker_pids[@]}"; do pkill -TERM -P "$pid" 2>/dev/null || true; done
	wait_workers
}

cleanup() {
	local rc=$?
	stop_workers || true
	if ((keep)); then
		echo "# --keep: PostgreSQL (port $pg_port, AW_RUN_DIR=$pg_run) and the last broker" \
			"(AW_RUN_DIR=$current_broker_dir) are still running; stop them with:"
		echo "#   AW_RUN_DIR=$current_broker_dir $repo/scripts/kafka.sh stop;" \
			"AW_RUN_DIR=$pg_run AW_PG_PORT=$pg_port $repo/scripts/pg.sh stop"
	else
		[[ -z "$current_broker_dir" ]] || broker stop >/dev/null 2>&1 || true
		pg stop >/dev/null 2>&1 || true
	fi
	exit "$rc"
}
worker_pids=()
trap cleanup EXIT
trap 'exit 130' INT TERM

# gen_stream MIX N [SEED] -> sets stream, manifest: aw-gen's requests and what each must become
gen_stream() {
	local s="${3:-$seed}"
	stream="$out_dir/stream-$1-$2-$s.jsonl"
	manifest="$out_dir/manifest-$1-$2-$s.txt"
	if [[ -s "$stream" && -s "$manifest" && "$(wc -l <"$manifest")" -eq "$2" ]]; then
		return 0 # deterministic for a seed: reuse
	fi
	local mixargs=()
	[[ "$1" == errors ]] && mixargs=(--duplicates 5 --fk 1 --check 1 --malformed 1)
	"$GEN" --count "$2" --tenant "$tenant" --seed "$s" "${mixargs[@]}" \
		--manifest "$manifest" >"$stream"
}

# produce FILE [ARG...]: the stream onto the input topic (aw-kafka produce --envelope ARG...)
produce() {
	local file="$1"
	shift
	"$AWK" produce --envelope --topic assets.create --file "$file" "$@"
}

# dump_input FILE: request_id, Kafka timestamp (CreateTime), partition, offset of every
# record on the input topic, as TSV
dump_input() {
	"$AWK" dump --topic assets.create |
		jq -r '((.value // "") | (fromjson? // {}) | if type == "object" then .request_id // "" else "" end) as $r
			| select($r | type == "string" and . != "") | [$r, .timestamp, .partition, .offset] | @tsv' >"$1"
}

# ---- the COPY ceiling ----------------------------------------------------------------------

# copy_input DIR NW: from $stream and $manifest, the rows the stream must leave in the
# database as COPY input (CSV), split over NW sessions: DIR/assets-I.csv and
# DIR/requests-I.csv, I = 0..NW-1. Only requests the manifest marks "ok"; the first of a
# content creates its asset, later ones (duplicates) only get an asset_requests row that
# links to it. An asset and every request linking to it go to the same session, so no
# session references another's uncommitted asset. The creating request's id serves as the
# asset's id: made client-side, unique, and random like the worker's gen_random_uuid().
copy_input() {
	local dir="$1" nw="$2" i
	mkdir -p "$dir"
	for ((i = 0; i < nw; i++)); do : >"$dir/assets-$i.csv" && : >"$dir/requests-$i.csv"; done
	jq -r 'select((.value | type) == "object" and (.value.request_id | type) == "string") | .value
		| [.request_id, (.tenant_id | tostring), (.content_sha256 | tostring),
		   ([.tenant_id, .folder_id, .name, .content_sha256, .size_bytes, .mime_type,
		     .storage_uri, (if .metadata == null then null else .metadata | tojson end)] | @csv)]
		| join("\t")' "$stream" |
		awk -F'\t' -v nw="$nw" -v dir="$dir" '
			NR == FNR { split($0, m, " "); if (m[2] == "ok") ok[m[1]] = 1; next }
			!($1 in ok) { next }
			{
				key = $2 SUBSEP $3
				if (key in asset) {
					outcome = "duplicate"
				} else {
					outcome = "created"
					asset[key] = $1
					part[key] = n++ % nw
					print $1 "," substr($0, length($1 $2 $3) + 4) >(dir "/assets-" part[key] ".csv")
				}
				print $1 "," asset[key] "," outcome ",assets.create,0," FNR - 1 >(dir "/requests-" part[key] ".csv")
			}' "$manifest" -
}

# copy_ceiling RUN NW BIN: the database's physical limit for the stream of RUN: its good rows
# COPYed into a fresh database with the schema (migrated by BIN), NW concurrent psql sessions,
# each `\copy assets` then `\copy asset_requests` (each its own transaction, as a user loading
# files does). Sets R[RUN,copy_*]: requests per second, PostgreSQL CPU s per 1,000 requests,
# cores busy with others.
copy_ceiling() {
	local run="$1" nw="$2" bin="$3" dir="$out_dir/$1/copy" i rc=0 t0 c0 s0 wall pgc busy client pids=()
	copy_input "$dir" "$nw"
	R[$run,copy_requests]="$(cat "$dir"/requests-*.csv | wc -l)"
	R[$run,copy_assets]="$(cat "$dir"/assets-*.csv | wc -l)"
	prepare_db bench_copy "$dir" "$bin"
	c0="$(pg_server_ticks)"
	s0="$(sys_busy_ticks)"
	t0="$(now_ns)"
	for ((i = 0; i < nw; i++)); do
		/usr/bin/time -v -o "$dir/time-$i.txt" "$PSQL" -X -q -v ON_ERROR_STOP=1 -d bench_copy \
			-c "\\copy assets (id, tenant_id, folder_id, name, content_sha256, size_bytes, mime_type, storage_uri, metadata) FROM '$dir/assets-$i.csv' WITH (FORMAT csv)" \
			-c "\\copy asset_requests (request_id, asset_id, outcome, source_topic, source_partition, source_offset) FROM '$dir/requests-$i.csv' WITH (FORMAT csv)" \
			>"$dir/copy-$i.log" 2>&1 &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || rc=$?; done
	wall="$(secs_since "$t0")"
	sleep 0.3 # let the postmaster reap the sessions' backends, so their CPU is counted
	pgc="$(pg_server_ticks)"
	busy="$(sys_busy_ticks)"
	if ((rc != 0)); then
		echo "run.sh: COPY failed; see $dir/copy-*.log" >&2
		cat "$dir"/copy-*.log >&2
		return 1
	fi
	client="$(time_cpu "$dir"/time-*.txt)"
	R[$run,copy_s]="$wall"
	R[$run,copy_rps]="$(calc "printf \"%.0f\", ${R[$run,copy_requests]} / $wall")"
	R[$run,copy_pg_per_k]="$(calc "printf \"%.3f\", ($pgc - $c0) / $clk_tck / (${R[$run,copy_requests]} / 1000)")"
	R[$run,copy_other]="$(calc "o = (($busy - $s0) - ($pgc - $c0)) / $clk_tck - $client; printf \"%.2f\", (o > 0 ? o / ($wall + 0.3) : 0)")"
	# Gone before the run: its autovacuum must not be counted as the worker's.
	drop_db bench_copy
	say "COPY before $run: $nw session(s), ${R[$run,copy_requests]} requests and ${R[$run,copy_assets]} assets" \
		"in $wall s -> ${R[$run,copy_rps]} req/s (PostgreSQL CPU ${R[$run,copy_pg_per_k]} s per 1,000," \
		"psql $client s; others busy ${R[$run,copy_other]} cores)"
}

# ---- one measured run --------------------------------------------------------------------

declare -A R # R[run,key]
runs=()      # run names in order
correct_all=1

# run_one MIX WORKERS N [base]: one measured run of this tree's worker, or with "base" of the
# --baseline worker (its run name ends in -base); fills R[...].
run_one() {
	local mix="$1" nw="$2" n="$3" run dir rc=0 t0 pgc0 brc0 sys0 sys1 pgc1 brc1 bin="$WORKER"
	run="$mix-w$nw-n$n"
	R[$run,label]=this
	if [[ "${4:-}" == base ]]; then
		run="$run-base"
		bin="$base_worker"
		R[$run,label]="base $base_short"
	fi
	R[$run,bin]="$bin"
	runs+=("$run")
	dir="$out_dir/$run"
	rm -rf "$dir"
	mkdir -p "$dir"
	drop_db bench_run
	gen_stream "$mix" "$n"

	# The COPY ceiling right before the run, with as many sessions as workers: on a shared
	# machine, a ceiling taken minutes earlier may have seen another load.
	if ((!rss_check)); then
		copy_ceiling "$run" "$nw" "$bin"
	fi

	fresh_broker "$dir"
	prepare_db bench_run "$dir" "$bin"
	write_config "$dir/worker.yaml" bench_run "bench-$run-$(date +%s)" "$bin"
	"$bin" check-config --config "$dir/worker.yaml" >/dev/null

	t0="$(now_ns)"
	produce "$stream" 2>"$dir/produce.log"
	R[$run,produce_s]="$(secs_since "$t0")"
	say "$run: produced $n requests in ${R[$run,produce_s]} s; running $nw worker(s) with --drain"

	worker_limit=$((600 + n / 100))
	pgc0="$(pg_server_ticks)"
	brc0="$(proc_cpu_ticks "$broker_pid")"
	sys0="$(sys_busy_ticks)"
	t0="$(now_ns)"
	R[$run,start_ns]="$t0"
	start_workers "$bin" "$nw" "$dir" drain --drain
	wait_workers || rc=$?
	R[$run,wall_s]="$(secs_since "$t0")"
	sleep 0.3 # let the postmaster reap the workers' backends, so their CPU is counted
	pgc1="$(pg_server_ticks)"
	brc1="$(proc_cpu_ticks "$broker_pid")"
	sys1="$(sys_busy_ticks)"
	R[$run,pg_cpu_s]="$(calc "printf \"%.2f\", ($pgc1 - $pgc0) / $clk_tck")"
	R[$run,broker_cpu_s]="$(calc "printf \"%.2f\", ($brc1 - $brc0) / $clk_tck")"
	R[$run,worker_rc]="$rc"

	local cpu rss=0 m f
	cpu="$(time_cpu "$dir"/time-drain-*.txt)"
	for f in "$dir"/time-drain-*.txt; do
		m="$(timev "$f" "Maximum resident set size (kbytes)")"
		((${m:-0} > rss)) && rss="$m"
	done
	R[$run,cpu_s]="$cpu"
	R[$run,rss_kb]="$rss"
	# Cores busy with something else than the workers, PostgreSQL and the broker.
	R[$run,other]="$(calc "o = ($sys1 - $sys0 - ($pgc1 - $pgc0) - ($brc1 - $brc0)) / $clk_tck - $cpu;
		printf \"%.2f\", (o > 0 ? o / (${R[$run,wall_s]} + 0.3) : 0)")"

	# Broker ceiling: a plain consumer reading the same topic, timed, output discarded.
	t0="$(now_ns)"
	"$AWK" dump --topic assets.create >/dev/null 2>"$dir/dump-ceiling.log"
	R[$run,dump_s]="$(secs_since "$t0")"
	R[$run,broker_ceil]="$(calc "printf \"%.0f\", $n / ${R[$run,dump_s]}")"

	# What the run left: the input (timestamps), the dead letters, the retry topic.
	dump_input "$dir/input.tsv" 2>>"$dir/dump.log"
	"$AWK" dump --topic assets.create.dlq 2>>"$dir/dump.log" |
		jq -r '((.value // "") | (fromjson? // {}) | if type == "object" then .request_id // "" else "" end) as $r
			| [(if $r | type == "string" then $r else "" end), .headers["x-error-class"] // "",
			   .headers["x-error-sqlstate"] // "", .timestamp] | @tsv' >"$dir/dlq.tsv"
	"$AWK" dump --topic assets.create.retry 2>>"$dir/dump.log" >"$dir/retry.jsonl"
	R[$run,retry_records]="$(wc -l <"$dir/retry.jsonl")"

	sql bench_run "CREATE TABLE bench_in (request_id text, ts_ms bigint, part int, off bigint);
		CREATE TABLE bench_dlq (request_id text, class text, sqlstate text, ts_ms bigint);
		CREATE TABLE bench_manifest (request_id text, expect text);" >/dev/null
	"$PSQL" -X -q -v ON_ERROR_STOP=1 -d bench_run >/dev/null <<-SQL
		\\copy bench_in FROM '$dir/input.tsv'
		\\copy bench_dlq FROM '$dir/dlq.tsv'
		\\copy bench_manifest FROM '$manifest' WITH (DELIMITER ' ')
		ANALYZE bench_in; ANALYZE bench_dlq; ANALYZE bench_manifest;
	SQL

	# Throughput: requests over the span of commits seen in asset_requests.processed_at
	# (now() = the transaction's start, so the last batch's own duration is not counted).
	local row recorded dlq span txns p50 p99 lmin lmax ln first
	row="$(sql bench_run "SELECT count(*), (SELECT count(*) FROM bench_dlq),
		coalesce(extract(epoch FROM max(processed_at) - min(processed_at)), 0),
		count(DISTINCT processed_at), coalesce(extract(epoch FROM min(processed_at)), 0)
		FROM asset_requests")"
	IFS=$'\t' read -r recorded dlq span txns first <<<"$row"
	# From starting the workers to the first transaction: process start, connecting, and
	# the group join.
	R[$run,startup_s]="$(calc "printf \"%.1f\", $first - ${R[$run,start_ns]} / 1e9")"
	R[$run,recorded]="$recorded"
	R[$run,dlq]="$dlq"
	R[$run,span_s]="$span"
	R[$run,txns]="$txns"
	R[$run,total]=$((recorded + dlq))
	R[$run,rps]="$(calc "s = ${R[$run,span_s]}; printf \"%.0f\", (s > 0 ? ${R[$run,total]} / s : 0)")"
	R[$run,wall_rps]="$(calc "printf \"%.0f\", ${R[$run,total]} / ${R[$run,wall_s]}")"
	R[$run,cpu_per_k]="$(calc "t = ${R[$run,total]}; printf \"%.3f\", (t > 0 ? ${R[$run,cpu_s]} / (t / 1000) : 0)")"
	R[$run,pg_cpu_per_k]="$(calc "t = ${R[$run,total]}; printf \"%.3f\", (t > 0 ? ${R[$run,pg_cpu_s]} / (t / 1000) : 0)")"
	R[$run,broker_cpu_per_k]="$(calc "t = ${R[$run,total]}; printf \"%.3f\", (t > 0 ? ${R[$run,broker_cpu_s]} / (t / 1000) : 0)")"
	# Against COPY in the same unit: requests that end in the database, per second (the
	# clean mix: every request). The same as COPY's time / the span for this stream.
	if [[ -n "${R[$run,copy_rps]:-}" ]]; then
		R[$run,ratio_copy]="$(ratio "$(calc "s = $span; printf \"%.0f\", (s > 0 ? $recorded / s : 0)")" "${R[$run,copy_rps]}")"
	fi
	# A request waits about one batch cycle between being taken and being committed: the
	# time between two transactions of one connection, span x workers / transactions.
	R[$run,cycle_ms]="$(calc "t = ${R[$run,txns]}; printf \"%.1f\", (t > $nw ? ${R[$run,span_s]} * $nw * 1000 / (t - $nw) : 0)")"
	R[$run,rows_per_txn]="$(calc "t = ${R[$run,txns]}; printf \"%.1f\", (t > 0 ? ${R[$run,recorded]} / t : 0)")"

	# Backlog latency: produce timestamp (Kafka CreateTime) to the transaction that recorded
	# the request (processed_at), or to the dead letter's own timestamp. Mostly queueing.
	row="$(sql bench_run "WITH lat AS (
			SELECT extract(epoch FROM r.processed_at) * 1000 - i.ts_ms AS ms
			  FROM asset_requests r JOIN bench_in i ON i.request_id = r.request_id::text
			UNION ALL
			SELECT d.ts_ms - i.ts_ms FROM bench_dlq d JOIN bench_in i ON i.request_id = d.request_id)
		SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric),
		       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric),
		       round(min(ms)::numeric), round(max(ms)::numeric), count(*) FROM lat")"
	IFS=$'\t' read -r p50 p99 lmin lmax ln <<<"$row"
	R[$run,p50]="$p50"
	R[$run,p99]="$p99"
	R[$run,lat_min]="$lmin"
	R[$run,lat_max]="$lmax"
	R[$run,lat_n]="$ln"

	check_correctness "$run" "$n" "$dir"
	say "$run: ${R[$run,total]} requests in ${R[$run,span_s]} s of commits -> ${R[$run,rps]}/s" \
		"(wall ${R[$run,wall_s]} s incl. ${R[$run,startup_s]} s to the first commit, and the drain -> ${R[$run,wall_rps]}/s);" \
		"worker CPU ${R[$run,cpu_s]} s, PostgreSQL CPU ${R[$run,pg_cpu_s]} s, broker CPU ${R[$run,broker_cpu_s]} s;" \
		"peak RSS $((R[$run,rss_kb] / 1024)) MiB; ${R[$run,txns]} transactions, ${R[$run,rows_per_txn]} rows each;" \
		"backlog p50/p99 end-to-end ${R[$run,p50]}/${R[$run,p99]} ms; correctness: ${R[$run,correct]}"

	if [[ "$mix" == clean ]] && ((latency)); then
		paced_latency "$run" "$nw" "$n" "$dir"
	fi
}

# wait_recorded DB EXPECT TIMEOUT_S: until asset_requests holds EXPECT rows (every request of
# a clean stream makes one); fails after TIMEOUT_S. Polls twice a second: each poll is a
# connection, a little work for the server being measured.
wait_recorded() {
	local deadline=$(($(date +%s) + $3))
	while (($(sql "$1" "SELECT count(*) FROM asset_requests") < $2)); do
		(($(date +%s) < deadline)) || return 1
		sleep 0.5
	done
}

# paced_latency RUN NW N DIR: end-to-end latency at a steady load. RUN's workers (same
# config, so the same consumer group, already past the backlog) run live, without --drain;
# a warm-up stream gets them through the group join; then, for each of $paced_pcts, a fresh
# clean stream of min(N, rate x $paced_secs) requests is produced at that % of RUN's req/s
# (aw-kafka produce --rate: evenly spaced), and everything is waited for. Per request:
# Kafka CreateTime -> processed_at, joined on request_id. Sets R[RUN,p50_PCT], p99_PCT,
# rate_PCT (asked), achieved_PCT (from the timestamps), n_PCT.
paced_latency() {
	local run="$1" nw="$2" n="$3" dir="$4" cap="${R[$1,rps]}" bin="${R[$1,bin]}" pct rate m expect rc=0 row
	local phase_p phase_50 phase_99 phase_n phase_rate
	((cap > 0)) || return 0
	expect="$(sql bench_run "SELECT count(*) FROM asset_requests")"
	: >"$dir/paced-phases.tsv"
	start_workers "$bin" "$nw" "$dir" live
	# Warm-up: 5 s at the first rate, not measured; the workers join the group meanwhile.
	rate="$(calc "r = $cap * ${paced_pcts%% *} / 100; printf \"%.0f\", (r < 1 ? 1 : r)")"
	m="$(calc "m = $rate * 5; printf \"%d\", (m < 100 ? 100 : m)")"
	gen_stream clean "$m" $((seed + 1))
	produce "$stream" --rate "$rate" 2>>"$dir/produce-paced.log"
	expect=$((expect + m))
	if wait_recorded bench_run "$expect" 120; then
		sleep 1
		for pct in $paced_pcts; do
			rate="$(calc "r = $cap * $pct / 100; printf \"%.0f\", (r < 1 ? 1 : r)")"
			m="$(calc "m = $rate * $paced_secs; printf \"%d\", (m > $n ? $n : (m < 1 ? 1 : m))")"
			gen_stream clean "$m" $((seed + pct))
			R[$run,rate_$pct]="$rate"
			say "$run: paced at $pct% of ${cap} req/s: $m requests at $rate/s"
			produce "$stream" --rate "$rate" 2>>"$dir/produce-paced.log"
			awk -v p="$pct" '{ print $1 "\t" p }' "$manifest" >>"$dir/paced-phases.tsv"
			expect=$((expect + m))
			if ! wait_recorded bench_run "$expect" 120; then
				say "$run: paced at $pct%: not all recorded 120 s after the last was produced;" \
					"the latency below is of those that were"
				break
			fi
		done
	else
		say "$run: the warm-up of the paced phases was not recorded within 120 s; no latency figures"
	fi
	stop_workers || rc=$?
	if ((rc != 0)); then
		R[$run,correct]=FAILED
		correct_all=0
		echo "run.sh: $run: a worker exited $rc on SIGTERM after the paced phases (logs in $dir)" >&2
	fi

	dump_input "$dir/input-paced.tsv" 2>>"$dir/dump.log"
	sql bench_run "CREATE TABLE bench_in_paced (request_id text, ts_ms bigint, part int, off bigint);
		CREATE TABLE bench_paced (request_id text, pct int);" >/dev/null
	"$PSQL" -X -q -v ON_ERROR_STOP=1 -d bench_run >/dev/null <<-SQL
		\\copy bench_in_paced FROM '$dir/input-paced.tsv'
		\\copy bench_paced FROM '$dir/paced-phases.tsv'
		ANALYZE bench_in_paced; ANALYZE bench_paced;
	SQL
	while IFS=$'\t' read -r phase_p phase_50 phase_99 phase_n phase_rate; do
		[[ -n "$phase_p" ]] || continue
		R[$run,p50_$phase_p]="$phase_50"
		R[$run,p99_$phase_p]="$phase_99"
		R[$run,n_$phase_p]="$phase_n"
		R[$run,achieved_$phase_p]="$phase_rate"
		say "$run: paced at $phase_p% (${R[$run,rate_$phase_p]}/s asked, $phase_rate/s sent):" \
			"$phase_n requests, end-to-end p50 $phase_50 ms, p99 $phase_99 ms"
	done < <(sql bench_run "SELECT p.pct,
			round(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM r.processed_at) * 1000 - i.ts_ms)::numeric),
			round(percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM r.processed_at) * 1000 - i.ts_ms)::numeric),
			count(*),
			round(CASE WHEN max(i.ts_ms) > min(i.ts_ms)
			      THEN (count(*) - 1) * 1000.0 / (max(i.ts_ms) - min(i.ts_ms)) END)
		  FROM bench_paced p JOIN bench_in_paced i USING (request_id)
		  JOIN asset_requests r ON r.request_id::text = p.request_id
		 GROUP BY p.pct ORDER BY p.pct")
}

# Every produced request in exactly one final place, and the right one (the aw-gen manifest).
check_correctness() {
	local run="$1" n="$2" dir="$3" row missing multiple wrong unknown dupkeys
	local q="WITH fin AS (
			SELECT request_id::text AS rid, 'ok' AS got FROM asset_requests
			UNION ALL SELECT request_id, class FROM bench_dlq),
		agg AS (SELECT rid, count(*) AS n, min(got) AS got FROM fin GROUP BY rid)
		SELECT (SELECT count(*) FROM bench_manifest m LEFT JOIN agg a ON a.rid = m.request_id
		         WHERE a.rid IS NULL),
		       (SELECT count(*) FROM agg WHERE n > 1),
		       (SELECT count(*) FROM bench_manifest m JOIN agg a ON a.rid = m.request_id
		         WHERE a.n = 1 AND a.got <> m.expect),
		       (SELECT count(*) FROM agg a LEFT JOIN bench_manifest m ON m.request_id = a.rid
		         WHERE m.request_id IS NULL),
		       (SELECT count(*) FROM (SELECT 1 FROM assets GROUP BY tenant_id, content_sha256
		         HAVING count(*) > 1) d)"
	row="$(sql bench_run "$q")"
	IFS=$'\t' read -r missing multiple wrong unknown dupkeys <<<"$row"
	R[$run,settled_late]=0
	if ((missing > 0 && R[$run,retry_records] > 0 && R[$run,worker_rc] == 0)); then
		# README known limit: with several workers, --drain may leave a retry written during
		# a partition handover for the next run. Run it (not timed), then count again.
		say "$run: $missing request(s) not final, ${R[$run,retry_records]} record(s) on the retry" \
			"topic: one more --drain (not timed) to settle them"
		timeout 300 "${R[$run,bin]}" run --config "$dir/worker.yaml" --drain 2>"$dir/worker-settle.log" || true
		"$AWK" dump --topic assets.create.dlq 2>>"$dir/dump.log" |
			jq -r '((.value // "") | (fromjson? // {}) | if type == "object" then .request_id // "" else "" end) as $r
				| [(if $r | type == "string" then $r else "" end), .headers["x-error-class"] // "",
				   .headers["x-error-sqlstate"] // "", .timestamp] | @tsv' >"$dir/dlq.tsv"
		sql bench_run "TRUNCATE bench_dlq" >/dev/null
		"$PSQL" -X -q -v ON_ERROR_STOP=1 -d bench_run -c "\\copy bench_dlq FROM '$dir/dlq.tsv'" >/dev/null
		local before="$missing"
		row="$(sql bench_run "$q")"
		IFS=$'\t' read -r missing multiple wrong unknown dupkeys <<<"$row"
		R[$run,settled_late]=$((before - missing))
	fi
	local recorded dlq
	recorded="$(sql bench_run "SELECT count(*) FROM asset_requests")"
	dlq="$(sql bench_run "SELECT count(*) FROM bench_dlq")"
	if ((R[$run,worker_rc] == 0 && recorded + dlq == n && missing == 0 && multiple == 0 &&
		wrong == 0 && unknown == 0 && dupkeys == 0)); then
		R[$run,correct]=ok
	else
		R[$run,correct]=FAILED
		correct_all=0
		{
			echo "run.sh: $run: CORRECTNESS FAILED: worker exit ${R[$run,worker_rc]};" \
				"produced $n, recorded $recorded + dead-lettered $dlq = $((recorded + dlq));" \
				"missing $missing, in two places $multiple, in the wrong place $wrong," \
				"unknown $unknown, content keys with two assets $dupkeys (logs in $dir)"
			sql bench_run "WITH fin AS (
					SELECT request_id::text AS rid, 'ok' AS got FROM asset_requests
					UNION ALL SELECT request_id, class FROM bench_dlq)
				SELECT m.request_id, m.expect, coalesce(string_agg(f.got, ','), '<nowhere>')
				  FROM bench_manifest m LEFT JOIN fin f ON f.rid = m.request_id
				 GROUP BY m.request_id, m.expect
				HAVING count(f.rid) <> 1 OR min(f.got) <> m.expect LIMIT 10" |
				sed 's/^/  expected vs got: /'
		} >&2
	fi
}

# ---- Kafka Connect (tests/bench/connect_sink.sh, when present) -----------------------------

declare -A CN # CN[phase,key]: connect_sink.sh's key=value lines; phase backlog or a %
connect_phases=()

# run_connect PHASE N STREAM [RATE]: connect_sink.sh on a fresh broker and a fresh, migrated
# database bench_connect; its key=value lines go to CN[PHASE,key]. Its own correctness is
# not ours to judge: a failure is reported, and the run goes on.
run_connect() {
	local phase="$1" n="$2" file="$3" rate="${4:-}" dir="$out_dir/connect-n$count/$1" k v rc=0
	local args=()
	rm -rf "$dir"
	mkdir -p "$dir"
	connect_phases+=("$phase")
	drop_db bench_run
	fresh_broker "$dir"
	prepare_db bench_connect "$dir"
	args=(--brokers "$KAFKA_BROKERS" --pg-conninfo "$(conninfo bench_connect)"
		--stream "$file" --count "$n" --out "$dir/out")
	[[ -z "$rate" ]] || args+=(--rate "$rate")
	say "connect, $phase: connect_sink.sh ${args[*]}"
	bash "$connect_sink" "${args[@]}" >"$dir/connect.out" 2>"$dir/connect.log" || rc=$?
	if ((rc != 0)); then
		CN[$phase,failed]="$rc"
		say "connect, $phase: connect_sink.sh exited $rc; see $dir/connect.log"
		return 0
	fi
	while IFS='=' read -r k v; do
		[[ "$k" =~ ^[a-z0-9_]+$ ]] && CN[$phase,$k]="$v"
	done <"$dir/connect.out"
	say "connect, $phase: $(paste -sd' ' "$dir/connect.out")"
}

# connect_all: Connect's capacity on this invocation's clean stream, then paced at
# $paced_pcts of it with fresh streams, as the workers were.
connect_all() {
	local cap pct rate m
	gen_stream clean "$count"
	run_connect backlog "$count" "$stream"
	cap="${CN[backlog,connect_req_per_s]:-}"
	if ! ((latency)) || ! num "$cap"; then
		return 0
	fi
	for pct in $paced_pcts; do
		rate="$(calc "r = $cap * $pct / 100; printf \"%.0f\", (r < 1 ? 1 : r)")"
		m="$(calc "m = $rate * $paced_secs; printf \"%d\", (m > $count ? $count : (m < 1 ? 1 : m))")"
		gen_stream clean "$m" $((seed + pct))
		CN[$pct,rate]="$rate"
		run_connect "$pct" "$m" "$stream" "$rate"
	done
}

# ---- main ----------------------------------------------------------------------------------

say "asset-worker benchmark: $(date -u +%FT%TZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
say "build $build, output $out_dir, PostgreSQL $("$PSQL" --version | awk '{ print $3 }') on 127.0.0.1:$pg_port"
probe_config_keys "$WORKER"
if [[ -n "$base_sha" ]]; then
	probe_config_keys "$base_worker"
	this_desc="$(git -C "$repo" rev-parse --short HEAD)"
	[[ -z "$(git -C "$repo" status --porcelain --untracked-files=no)" ]] || this_desc="$this_desc + uncommitted changes"
	# What each worker.yaml gets beyond the common keys, e.g. kafka.transaction_interval_ms.
	keys_desc() { sed -n 's/^ *\([^:]*\): */kafka.\1: /p' <<<"${kafka_extra[$1]}" | paste -sd' ' -; }
	say "this: $this_desc, worker $WORKER; optional config keys: $(keys_desc "$WORKER" | grep . || echo none)"
	say "base: $baseline_ref = $base_sha \"$(git -C "$repo" log -1 --format=%s "$base_sha" | cut -c1-72)\""
	say "base: worker $base_worker ($base_how); optional config keys: $(keys_desc "$base_worker" | grep . || echo none)"
fi
pg start >/dev/null
pg_data="$(readlink -f "$pg_run/pg")/data"
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"

if ((rss_check)); then
	say "RSS check: clean mix, one worker, batch_size $batch, N = 100,000 then 1,000,000"
	run_one clean 1 100000
	run_one clean 1 1000000
	a="${R[clean-w1-n100000,rss_kb]}"
	b="${R[clean-w1-n1000000,rss_kb]}"
	ratio="$(calc "printf \"%.2f\", $b / $a")"
	echo
	printf '%-12s %12s %10s %12s %8s\n' N "peak RSS" "req/s" "CPU s/1k" correct
	for run in clean-w1-n100000 clean-w1-n1000000; do
		printf '%-12s %8.1f MiB %10s %12s %8s\n' "${run##*-n}" "$(calc "print ${R[$run,rss_kb]} / 1024")" \
			"${R[$run,rps]}" "${R[$run,cpu_per_k]}" "${R[$run,correct]}"
	done
	met="not met"
	calc "exit !($ratio <= 1.2 && $ratio >= 1 / 1.2)" && met=met
	echo "Peak RSS at 1,000,000 / at 100,000 = $ratio (target: within 20%, informational): $met"
	((correct_all)) || { echo "CORRECTNESS FAILED (see above)"; exit 1; }
	exit 0
fi

connect_note="" # why Connect is not measured
if [[ ! -f "$connect_sink" ]]; then
	connect=0
	connect_note="no tests/bench/connect_sink.sh"
elif ((!connect)); then
	connect_note="--no-connect"
elif [[ " $mixes " != *" clean "* ]]; then
	connect=0
	connect_note="it runs with the clean mix only"
fi
say "count $count, mixes: $mixes, workers: $workers_list, batch_size $batch;" \
	"paced latency: $( ((latency)) && echo "clean mix, at ${paced_pcts// /% and }% of capacity, up to $paced_secs s each" || echo off);" \
	"Kafka Connect: $( ((connect)) && echo "$connect_sink" || echo "off ($connect_note)")"
for mix in $mixes; do
	for nw in $workers_list; do
		run_one "$mix" "$nw" "$count"
		# The same configuration at once with the baseline worker, so both see about the
		# same machine (and the same order of events: ceiling, fresh broker and database).
		if [[ -n "$base_sha" ]]; then
			run_one "$mix" "$nw" "$count" base
		fi
	done
done
if ((connect)); then
	connect_all
fi

# ---- the table -----------------------------------------------------------------------------

mib() { if num "${1:-}"; then calc "printf \"%.1f\", $1 / 1024"; else echo -; fi; }
whole() { if num "${1:-}"; then calc "printf \"%.0f\", $1"; else echo -; fi; }
echo
echo "asset-worker benchmark, N = $count per run, batch_size $batch, $(nproc) cores" \
	"(load average at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "Ceilings, measured in this run, right before each run:"
for run in "${runs[@]}"; do
	nw="${run#*-w}"
	nw="${nw%%-*}"
	printf '  COPY, %d session(s), before %s: %s req/s (%s requests, %s assets in %s s;' \
		"$nw" "$run" "${R[$run,copy_rps]}" "${R[$run,copy_requests]}" "${R[$run,copy_assets]}" "${R[$run,copy_s]}"
	printf ' PostgreSQL CPU %s s/1k; others busy %s cores)\n' "${R[$run,copy_pg_per_k]}" "${R[$run,copy_other]}"
done
for run in "${runs[@]}"; do
	printf '  broker, plain consumer (aw-kafka dump > /dev/null), after %s: %s records/s\n' "$run" "${R[$run,broker_ceil]}"
done
echo
fmt='%-6s %3s %7s %7s %5s %6s %7s %6s %6s %6s %6s %6s %6s %3s\n'
# A first column says whose row it is, with --baseline (this / base <commit>) or a Connect row.
lab=() lab2=()
if [[ -n "$base_sha" ]] || ((connect)); then
	fmt="%-12s $fmt"
	lab=(who) lab2=("")
fi
# shellcheck disable=SC2059 # one format for the header and the rows
printf "$fmt" "${lab[@]}" mix wrk "req/s" "COPY" "÷COPY" "pg CPU" "wkr CPU" "RSS" \
	"p50 ms" "p99 ms" "p50 ms" "p99 ms" "others" ok
# shellcheck disable=SC2059
printf "$fmt" "${lab2[@]}" "" "" "" "req/s" "" "s/1k" "s/1k" "MiB" "@50%" "@50%" "@90%" "@90%" "cores" ""
for mix in $mixes; do
	for nw in $workers_list; do
		for sfx in "" ${base_sha:+-base}; do
			run="$mix-w$nw-n$count$sfx"
			((${#lab[@]} == 0)) || lab=("${R[$run,label]}")
			# shellcheck disable=SC2059
			printf "$fmt" "${lab[@]}" "$mix" "$nw" "${R[$run,rps]}" "${R[$run,copy_rps]}" "${R[$run,ratio_copy]:--}" \
				"${R[$run,pg_cpu_per_k]}" "${R[$run,cpu_per_k]}" "$(mib "${R[$run,rss_kb]}")" \
				"${R[$run,p50_50]:--}" "${R[$run,p99_50]:--}" "${R[$run,p50_90]:--}" "${R[$run,p99_90]:--}" \
				"${R[$run,other]}" "${R[$run,correct]}"
		done
	done
done
if ((connect)); then
	if [[ -n "${CN[backlog,failed]:-}" ]]; then
		echo "connect      clean: connect_sink.sh exited ${CN[backlog,failed]} (see $out_dir/connect-n$count/backlog/connect.log)"
	else
		tasks="${CN[backlog,tasks_max]:--}"
		copy_same="${R[clean-w$tasks-n$count,copy_rps]:--}"
		connect_ok="rows ${CN[backlog,rows]:-?}"
		[[ "${CN[backlog,rows]:-}" != "$count" ]] || connect_ok=ok
		# shellcheck disable=SC2059
		printf "$fmt" connect clean "$tasks" "$(whole "${CN[backlog,connect_req_per_s]:-}")" "$copy_same" \
			"$(ratio "${CN[backlog,connect_req_per_s]:-}" "$copy_same")" \
			"${CN[backlog,pg_cpu_s_per_1k]:--}" "${CN[backlog,connect_cpu_s_per_1k]:--}" \
			"$(mib "${CN[backlog,connect_peak_rss_kb]:-}")" \
			"${CN[50,connect_e2e_p50_ms]:--}" "${CN[50,connect_e2e_p99_ms]:--}" \
			"${CN[90,connect_e2e_p50_ms]:--}" "${CN[90,connect_e2e_p99_ms]:--}" - "$connect_ok"
		echo "  connect: tasks.max ${CN[backlog,tasks_max]:--}, batch.size ${CN[backlog,batch_size]:--};" \
			"paced: ${CN[50,rate]:--}/s asked, ${CN[50,achieved_rate]:--}/s sent; ${CN[90,rate]:--}/s asked, ${CN[90,achieved_rate]:--}/s sent"
		for phase in "${connect_phases[@]}"; do
			[[ -z "${CN[$phase,failed]:-}" ]] || echo "  connect, $phase: connect_sink.sh exited ${CN[$phase,failed]}"
		done
	fi
fi
echo
echo "More about each run:"
dfmt='  %-24s %8s %7s %5s %6s %6s %8s %8s %12s %12s\n'
# shellcheck disable=SC2059
printf "$dfmt" run "broker" "brk CPU" "1st" "cycle" "rows/" "backlog" "backlog" "rate @50%" "rate @90%"
# shellcheck disable=SC2059
printf "$dfmt" "" "rec/s" "s/1k" "s" "ms" "txn" "p50 ms" "p99 ms" "asked/sent" "asked/sent"
for run in "${runs[@]}"; do
	# shellcheck disable=SC2059
	printf "$dfmt" "$run" "${R[$run,broker_ceil]}" "${R[$run,broker_cpu_per_k]}" "${R[$run,startup_s]}" \
		"${R[$run,cycle_ms]}" "${R[$run,rows_per_txn]}" "${R[$run,p50]}" "${R[$run,p99]}" \
		"${R[$run,rate_50]:--}/${R[$run,achieved_50]:--}" "${R[$run,rate_90]:--}/${R[$run,achieved_90]:--}"
done
if [[ -n "$base_sha" ]]; then
	echo
	echo "this ($this_desc) / base $base_short ($baseline_ref): same stream, each run on its own fresh broker and database"
	for mix in $mixes; do
		for nw in $workers_list; do
			a="$mix-w$nw-n$count"
			b="$a-base"
			printf '  %s, %d worker(s): req/s %s / %s = %s (÷COPY %s / %s); pg CPU s/1k %s / %s;' \
				"$mix" "$nw" "${R[$a,rps]}" "${R[$b,rps]}" "$(ratio "${R[$a,rps]}" "${R[$b,rps]}")" \
				"${R[$a,ratio_copy]:--}" "${R[$b,ratio_copy]:--}" "${R[$a,pg_cpu_per_k]}" "${R[$b,pg_cpu_per_k]}"
			printf ' p50/p99 @50%% %s/%s / %s/%s ms; @90%% %s/%s / %s/%s ms; correctness %s / %s\n' \
				"${R[$a,p50_50]:--}" "${R[$a,p99_50]:--}" "${R[$b,p50_50]:--}" "${R[$b,p99_50]:--}" \
				"${R[$a,p50_90]:--}" "${R[$a,p99_90]:--}" "${R[$b,p50_90]:--}" "${R[$b,p99_90]:--}" \
				"${R[$a,correct]}" "${R[$b,correct]}"
		done
	done
fi
cat <<'EOF'

req/s     (asset_requests rows + dead letters) / (max - min asset_requests.processed_at) of the
          backlog run: the span of commits, the worker's capacity C. processed_at is now(), the
          transaction's start: group join, drain and the last batch's own duration are outside.
COPY      the stream's good rows (the requests the manifest sends to the database, each with its
          asset unless a duplicate) COPYed into a fresh database with the schema, one psql
          session per worker, right before the run: requests/s. The database's physical limit.
÷COPY     the worker's recorded requests/s / COPY's, both counting requests that end in the
          database (clean mix: req/s / COPY).
pg CPU    PostgreSQL CPU (every server process, exited backends included, from /proc) per 1,000
          requests, over the backlog run.
wkr CPU   user+sys of all workers (/usr/bin/time -v) per 1,000 requests; on the connect row,
          connect_sink.sh's connect_cpu_s_per_1k (the Connect worker).
RSS       peak resident set size, the largest of the workers.
p50/p99   end to end at a steady load, clean mix: the workers run live while fresh streams are
          produced evenly at 50% and then 90% of req/s (aw-kafka produce --rate, about
          20 s each); per request, Kafka CreateTime -> processed_at. processed_at is the
          transaction's start, so this underestimates by the transaction's own length.
others    cores busy with anything else (other users of this machine) during the run: /proc/stat
          busy time minus the workers, PostgreSQL and the broker. Non-zero means noisy figures.
broker    a plain consumer reading the input topic (aw-kafka dump); brk CPU: the broker's CPU per
          1,000 requests during the run.
1st       seconds from starting the workers to the first commit (start, connect, group join).
cycle     span x workers / transactions: how long one batch takes on one connection.
backlog   p50/p99 end to end in the backlog run: time queued behind a pre-produced stream.
rate      the paced phases' rate, asked and achieved (from the records' timestamps).
EOF
if [[ -n "$base_sha" ]]; then
	echo "who       this: this tree's worker, from $build;"
	echo "          base $base_short: the worker of $baseline_ref, from $out_dir/baseline/$base_sha."
	echo "          Same stream and tools for both; each run on its own fresh broker and database,"
	echo "          migrated by its own worker. 'this / base' lines: this tree's figure, then base's."
fi
if ((connect)); then
	echo "connect   tests/bench/connect_sink.sh (Kafka Connect, JDBC sink) on the same clean stream,"
	echo "          fresh broker and database; wrk = its tasks.max; paced at 50%/90% of its own req/s."
fi

# The issue's targets, on this tree's runs.
echo
echo "Targets (issue 4; informational, never a failure):"
for nw in $workers_list; do
	run="clean-w$nw-n$count"
	[[ -n "${R[$run,rps]:-}" ]] || continue
	printf '  clean, %d worker(s) / COPY, %d session(s): %s / %s = %s (target >= 0.8): %s\n' \
		"$nw" "$nw" "${R[$run,rps]}" "${R[$run,copy_rps]}" "${R[$run,ratio_copy]:--}" \
		"$(verdict "${R[$run,ratio_copy]:-}" '>=' 0.8)"
done
for nw in $workers_list; do
	a="errors-w$nw-n$count"
	b="clean-w$nw-n$count"
	[[ -n "${R[$a,rps]:-}" && -n "${R[$b,rps]:-}" ]] || continue
	r="$(ratio "${R[$a,rps]}" "${R[$b,rps]}")"
	printf '  errors / clean, %d worker(s): %s / %s = %s (target >= 0.8): %s\n' \
		"$nw" "${R[$a,rps]}" "${R[$b,rps]}" "$r" "$(verdict "$r" '>=' 0.8)"
done
if [[ " $workers_list " == *" 1 "* && " $workers_list " == *" 2 "* ]]; then
	for mix in $mixes; do
		a="$mix-w2-n$count"
		b="$mix-w1-n$count"
		r="$(ratio "${R[$a,rps]}" "${R[$b,rps]}")"
		printf '  %s, 2 workers / 1 worker: %s / %s = %s (target >= 1.6): %s; COPY 2 / 1 session(s): %s\n' \
			"$mix" "${R[$a,rps]}" "${R[$b,rps]}" "$r" "$(verdict "$r" '>=' 1.6)" \
			"$(ratio "${R[$a,copy_rps]}" "${R[$b,copy_rps]}")"
	done
fi
run="clean-w1-n$count"
if [[ -n "${R[$run,rps]:-}" ]]; then
	if ((connect)); then
		r="$(ratio "${R[$run,rps]}" "${CN[backlog,connect_req_per_s]:-}")"
		printf '  clean, 1 worker / Kafka Connect: %s / %s = %s (target >= 1.5): %s\n' \
			"${R[$run,rps]}" "${CN[backlog,connect_req_per_s]:--}" "$r" "$(verdict "$r" '>=' 1.5)"
	else
		echo "  clean, 1 worker / Kafka Connect (target >= 1.5): not measured ($connect_note)"
	fi
fi
for nw in $workers_list; do
	run="clean-w$nw-n$count"
	[[ -n "${R[$run,rps]:-}" ]] || continue
	printf '  PostgreSQL CPU per 1,000 requests, clean, %d worker(s): %s s (COPY: %s s; pre-issue figure %s s;' \
		"$nw" "${R[$run,pg_cpu_per_k]}" "${R[$run,copy_pg_per_k]}" "$pg_cpu_ref"
	printf ' target <= half of the pre-issue figure): %s\n' "$(verdict "${R[$run,pg_cpu_per_k]}" '<=' "$pg_cpu_ref / 2")"
done
echo "  peak RSS flat within 20% at N = 100,000 and 1,000,000: tests/bench/run.sh --rss-check"
for run in "${runs[@]}"; do
	if ((R[$run,settled_late] > 0)); then
		echo "note: $run: ${R[$run,settled_late]} request(s) were left on the retry topic by --drain" \
			"(README known limit) and settled by a second, untimed drain"
	fi
done
echo
if ((correct_all)); then
	echo "Correctness: every produced request is in exactly one final place, the one the manifest expects."
else
	echo "CORRECTNESS FAILED (see above; logs under $out_dir)"
	exit 1
fi
