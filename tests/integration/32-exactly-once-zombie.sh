#!/usr/bin/env bash
# Exactly-once forwards against zombies, on the real Apache Kafka broker (SPEC sections 1 and 4:
# requeues and dead letters are written by a transactional producer in the same Kafka
# transaction as the input offsets they settle; a read_committed reader sees every request
# exactly once in PostgreSQL or on the dead-letter topic).
#
# Two workers in one group take a paced, mixed stream (new contents, duplicates, cross-partition
# races, ~22% requests that are dead-lettered, and one request in 100 that the test trigger
# refuses once with 23505, so it is requeued to the retry topic and created on its retry).
#
#  1. Three times (worker a, b, a; a worker left with only retry partitions, as
#     cooperative-sticky may leave one, is swapped for the other): a worker is frozen
#     (SIGSTOP) while its open transaction holds forwards, past session.timeout.ms (6 s), until
#     the group has moved all its partitions to the other worker and that one has settled some
#     of the redelivered requests; then it is thawed (SIGCONT). A zombie must not land those
#     forwards: its transaction is fenced and aborted, and read_committed readers never see its
#     records. Rounds 1 and 2 thaw within 9 s, inside the worker's transaction.timeout.ms
#     (10 s): the stale group generation of its offsets fences it (KIP-447). Round 3 stays
#     frozen 22 s: the transaction coordinator aborts its transaction on timeout first.
#     "Holds forwards" is checked from outside before the long freeze: the worker is stopped
#     for about two seconds at a time (up to 10 tries) until a partition of the retry or
#     dead-letter topic has its last stable offset stuck below its high watermark at a record
#     whose x-worker-id is the frozen worker's (the other worker commits every
#     kafka.transaction_interval_ms, so only the frozen one can hold it).
#  2. A worker SIGKILLed at random moments, three times, each restarted at once; then the broker
#     SIGKILLed and restarted on its log dir (on one node, also the transaction coordinator's
#     restart).
#  3. The stream stops, everything settles (input offsets committed to the end, retry offsets
#     past every committed retry record, no transaction left open), both workers stop with
#     SIGTERM (exit 0), and every request produced is in exactly one final place (itf_account,
#     reading the dead-letter topic with aw-kafka's read_committed consumer), every requeued
#     marker is resolved, no requeue is on the retry topic twice, and each freeze caught
#     forwards in flight: its open transaction seen at the freeze, or forwards of the zombie
#     found aborted or appended after the thaw (the counts of each are printed per round).
#
# The test is the workers' supervisor: a worker that exits by itself with 0 or 1 (1 is how a
# fenced worker may react) is restarted and the test says so; any other exit code, or a
# sanitizer report in a worker's log, fails the test. Worker logs: worker-<slot><n>.log, one per
# process (x-worker-id <slot><n>). Rerun a sequence of random moments with ITF_SEED.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_faults.sh"
it_setup
it_seed
it_install_raise_trigger

seed="${ITF_SEED:-$RANDOM}"
RANDOM=$seed
echo "# random seed $seed (rerun with ITF_SEED=$seed)"
T0=$SECONDS
elapsed() { echo "$((SECONDS - T0))s"; }

# Each worker process has its own x-worker-id (as the default <hostname>-<pid> would), known to
# the test: <slot><incarnation>, e.g. a1, a2, b1.
cat >>"$IT_CONFIG" <<'YAML'
worker:
  id: "${AW_WORKER_ID}"
YAML
# ITZ_LINGER_MS=N (a diagnostic, not used by the suite): the producer's linger.ms, so forwards
# wait that long in a worker's producer before they are sent and every freeze catches some in
# flight even in a worker that writes no transactions (its ~5 ms window is rarely hit).
if [[ -n "${ITZ_LINGER_MS:-}" ]]; then
	sed -i "/^  properties:/a\\    linger.ms: \"$ITZ_LINGER_MS\"" "$IT_CONFIG"
	echo "# producer linger.ms=$ITZ_LINGER_MS (ITZ_LINGER_MS)"
fi

# ---- the stream ----

MARKERS=200
itf_gen "$IT_DIR/gen.jsonl" "$IT_DIR/gen.manifest" 3201 30000 --duplicates 8 --races 4 \
	--fk 6 --check 6 --not-null 4 --malformed 6
itf_requeue_once_markers "$MARKERS" "$IT_DIR/markers.manifest" >"$IT_DIR/markers.jsonl"
# One marker after every 100 requests; the feed file and its manifest line up line by line, so
# the manifest of what was produced is the first N lines of feed.manifest.
awk -F'\t' 'NR == FNR { m[NR] = $0; nm = NR; next }
	{ print; if (FNR % 100 == 0 && k < nm) print m[++k] }' \
	<(paste "$IT_DIR/markers.jsonl" "$IT_DIR/markers.manifest") \
	<(paste "$IT_DIR/gen.jsonl" "$IT_DIR/gen.manifest") >"$IT_DIR/feed.tsv"
cut -f1 "$IT_DIR/feed.tsv" >"$IT_DIR/feed.jsonl"
cut -f2 "$IT_DIR/feed.tsv" >"$IT_DIR/feed.manifest"
assert_eq "$((30000 + MARKERS))" "$(awk -F'\t' 'NF == 2' "$IT_DIR/feed.tsv" | wc -l)" \
	"the feed file: one manifest line per record"

# A paced producer that runs until told to stop ($IT_DIR/feed.stop): PER_TICK records, a pause
# of TICK seconds, and so on. How many records it handed over is in $IT_DIR/feed.progress.
feed_start() { # FILE PER_TICK TICK
	echo 0 >"$IT_DIR/feed.progress"
	rm -f "$IT_DIR/feed.stop"
	"$AWK" produce --envelope --topic assets.create 2>>"$IT_DIR/feed.log" < <(
		awk -v n="$2" -v t="$3" -v p="$IT_DIR/feed.progress" -v stop="$IT_DIR/feed.stop" '
			{ print; fflush() }
			NR % n == 0 {
				print NR > p; close(p)
				if (system("test -e " stop) == 0) exit
				system("sleep " t)
			}
			END { print NR > p; close(p) }' "$1"
	) &
	FEED_PID=$!
	IT_WORKER_PIDS+=("$FEED_PID")
}
fed() { cat "$IT_DIR/feed.progress" 2>/dev/null || echo 0; }
feed_note() { # WHAT
	if itf_alive "$FEED_PID"; then
		echo "# $1 ($(elapsed), $(fed) records fed)"
	else
		echo "# $1 ($(elapsed); note: the stream had ended, $(fed) records fed)"
	fi
}

# ---- the workers, and the test as their supervisor ----

declare -A W_PID W_INC W_ID
RESTARTS=0
w_start() { # SLOT
	local slot="$1" n
	n=$((${W_INC[$slot]:-0} + 1))
	W_INC[$slot]=$n
	W_ID[$slot]="$slot$n"
	AW_WORKER_ID="$slot$n" "$WORKER" run --config "$IT_CONFIG" 2>"$IT_DIR/worker-$slot$n.log" &
	W_PID[$slot]=$!
	IT_WORKER_PIDS+=("$!")
}
w_log() { echo "$IT_DIR/worker-${W_ID[$1]}.log"; }
other() { if [[ "$1" == a ]]; then echo b; else echo a; fi; }

SANITIZER_RE='ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (AddressSanitizer|UndefinedBehaviorSanitizer|LeakSanitizer)'
no_sanitizer_report() { # LOG
	if grep -qE "$SANITIZER_RE" "$1"; then
		grep -m 5 -E "$SANITIZER_RE" "$1" | sed 's/^/#   /'
		fail "a sanitizer report in $(basename "$1")"
	fi
}

# A worker that exited by itself: 0 or 1 is restarted (1 is how a fenced worker may react),
# anything else fails the test.
supervise() {
	local slot pid rc log
	for slot in a b; do
		pid="${W_PID[$slot]}"
		kill -0 "$pid" 2>/dev/null && continue
		rc=0
		wait "$pid" || rc=$?
		log="$(w_log "$slot")"
		no_sanitizer_report "$log"
		case "$rc" in
		0 | 1)
			echo "# supervisor: worker ${W_ID[$slot]} exited $rc by itself ($(elapsed));" \
				"its last error: $(grep -E '^[^ ]+ error ' "$log" | tail -n 1 | cut -d' ' -f3- | cut -c1-200)"
			RESTARTS=$((RESTARTS + 1))
			w_start "$slot"
			echo "# supervisor: restarted it as ${W_ID[$slot]}"
			;;
		*) fail "worker ${W_ID[$slot]} exited $rc (not 0 or 1: a crash?); see $(basename "$log")" ;;
		esac
	done
}

# Waits until a command succeeds, supervising the workers meanwhile.
wait_for() { # SECONDS DESCRIPTION CMD...
	local secs="$1" what="$2"
	shift 2
	local deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		supervise
		((SECONDS < deadline)) || fail "timed out after ${secs}s waiting for: $what"
		sleep 0.2
	done
	supervise
}
# Sleeps a random time in [MIN_MS, MAX_MS], supervising the workers afterwards.
random_pause() { # MIN_MS MAX_MS
	local ms=$(($1 + RANDOM % ($2 - $1 + 1)))
	sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
	supervise
	PAUSED_MS=$ms
}

# The partitions a worker process owns now, from its log: assigned adds, revoked (or lost)
# removes; one "topic[partition]" per line.
owned() { # WORKER_ID
	awk '/ partitions_(assigned|revoked) / {
		add = index($0, " partitions_assigned ") > 0
		match($0, /partitions=[^ ]*/); n = split(substr($0, RSTART + 11, RLENGTH - 11), ps, ",")
		for (i = 1; i <= n; i++) if (ps[i] ~ /\[[0-9]+\]$/) { if (add) own[ps[i]] = 1; else delete own[ps[i]] }
	} END { for (p in own) print p }' "$IT_DIR/worker-$1.log" 2>/dev/null | sort
}
owns_all() { [[ "$(owned "${W_ID[$1]}" | wc -l)" == 8 ]]; } # SLOT
# Both workers own partitions, the 8 between them, and neither owns them all (right after a
# thaw, the zombie's log still names the partitions it lost while the other owns all 8).
shared() {
	local a b
	a=$(owned "${W_ID[a]}")
	b=$(owned "${W_ID[b]}")
	[[ -n "$a" && -n "$b" ]] || return 1
	(($(wc -l <<<"$a") < 8 && $(wc -l <<<"$b") < 8)) || return 1
	[[ "$(printf '%s\n%s\n' "$a" "$b" | sort -u | wc -l)" == 8 ]]
}
outcomes() { cat "$IT_DIR"/worker-*.log | grep -c 'outcome=' || true; }
outcomes_ge() { (($(outcomes) >= $1)); }

# ---- what the broker shows ----

TXN_SEEN=0 # whether any open transaction was ever seen on the retry or dead-letter topic

# While worker ID is frozen: transactions that stay open for a second (the other worker commits
# every transaction_interval_ms) and begin with a record of ID. Sets HELD to
# "topic[partition]@offset ..."; fails when there is none.
held_by() { # WORKER_ID
	local first second stuck t p o w
	HELD=""
	first=$(itf_open_txns) || return 1
	[[ -n "$first" ]] || return 1
	TXN_SEEN=1
	sleep 1
	second=$(itf_open_txns) || return 1
	stuck=$(comm -12 <(sort <<<"$first") <(sort <<<"$second"))
	[[ -n "$stuck" ]] || return 1
	while read -r t p o; do
		w=$("$AWK" dump --topic "$t" -X isolation.level=read_uncommitted 2>>"$IT_DIR/dump.log" |
			jq -r --argjson p "$p" --argjson o "$o" \
				'select(.partition == $p and .offset == $o) | .headers["x-worker-id"] // ""') || w=""
		[[ "$w" == "$1" ]] && HELD+="$t[$p]@$o "
	done <<<"$stuck"
	[[ -n "$HELD" ]]
}

# The retry and dead-letter topics' high watermarks (read_uncommitted): "topic<TAB>p<TAB>hw".
hw_snapshot() { # FILE
	local t i
	for ((i = 0; i < 5; i++)); do
		: >"$1"
		for t in assets.create.retry assets.create.dlq; do
			"$AWK" watermarks --topic "$t" -X isolation.level=read_uncommitted 2>>"$IT_DIR/offsets.log" |
				awk -v t="$t" -v OFS='\t' '{ print t, $1, $3 }' >>"$1" || continue 2
		done
		return 0
	done
	fail "could not read the high watermarks"
}

# Settled: every input record's offset committed (the input topic is written without
# transactions, so its end is its last record + 1); no transaction open on the retry and
# dead-letter topics; on every retry partition the committed offset is past the last record a
# read_committed reader sees (a transaction's commit marker may follow that record, so the
# committed offset need not reach the high watermark).
SETTLE_STATE=""
settled() {
	local marks committed last
	SETTLE_STATE="input"
	marks=$("$AWK" watermarks --topic assets.create 2>>"$IT_DIR/offsets.log") || return 1
	committed=$("$AWK" committed --group "$IT_GROUP" --topic assets.create 2>>"$IT_DIR/offsets.log") || return 1
	join <(sort -k1,1 <<<"$marks") <(sort -k1,1 <<<"$committed") |
		awk '$3 > 0 && $4 != $3 { bad = 1 } END { exit bad }' || {
		SETTLE_STATE="input offsets not committed to the end: $(join <(sort -k1,1 <<<"$marks") <(sort -k1,1 <<<"$committed") | awk '{ printf "p%s %s/%s ", $1, $4, $3 }')"
		return 1
	}
	itf_no_open_txns || {
		SETTLE_STATE="transactions open: $(itf_open_txns | tr '\n' ' ')"
		return 1
	}
	committed=$("$AWK" committed --group "$IT_GROUP" --topic assets.create.retry 2>>"$IT_DIR/offsets.log") || return 1
	last=$("$AWK" dump --topic assets.create.retry 2>>"$IT_DIR/dump.log" | jq -r '[.partition, .offset] | @tsv' |
		awk '{ if ($2 + 1 > m[$1]) m[$1] = $2 + 1 } END { for (p in m) print p, m[p] }') || return 1
	[[ -z "$last" ]] && return 0
	join <(sort -k1,1 <<<"$last") <(sort -k1,1 <<<"$committed") |
		awk '$3 < $2 { bad = 1 } END { exit bad }' || {
		SETTLE_STATE="retry offsets behind: $(join <(sort -k1,1 <<<"$last") <(sort -k1,1 <<<"$committed") | awk '{ printf "p%s %s/%s ", $1, $3, $2 }')"
		return 1
	}
}

# ==== start: two workers, then the stream ====

w_start a
w_start b
wait_for 90 "a1 and b1 share the 8 partitions" shared
feed_start "$IT_DIR/feed.jsonl" 10 0.1
echo "# feed: $(wc -l <"$IT_DIR/feed.jsonl") records ready, 10 every 0.1 s until the test stops it"
wait_for 60 "the workers settle the first requests" outcomes_ge 300
ok "two workers share the stream ($(elapsed))"

# ==== 1. zombies: frozen past the session timeout while their transaction holds forwards ====

ROUNDS=3
declare -A R_ID R_FREEZE_MS R_HELD R_THAW_MS R_REJOIN_MS
for r in 1 2 3; do
	z=$([[ $r == 2 ]] && echo b || echo a)
	wait_for 90 "both workers own partitions before round $r" shared
	random_pause 300 1200
	# The zombie must own input partitions to forward anything: cooperative-sticky may leave a
	# worker only retry partitions, and then the other one is frozen.
	if ! owned "${W_ID[$z]}" | grep -qF 'assets.create['; then
		echo "# round $r: ${W_ID[$z]} owns only retry partitions; ${W_ID[$(other "$z")]} is frozen instead"
		z=$(other "$z")
	fi
	o=$(other "$z")
	# Up to 10 short freezes (about 2 s each, well inside the session timeout) until one catches
	# the worker's open transaction holding forwards: a transaction is open a fraction of the
	# time (from a window's first forward to its commit), so a few tries can all miss it. If
	# none was ever seen on the retry and dead-letter topics in round 1 (the worker writes
	# none), later rounds try once.
	tries=0
	max_tries=10
	((r == 1 || TXN_SEEN)) || max_tries=1
	while :; do
		tries=$((tries + 1))
		supervise
		zid="${W_ID[$z]}"
		zpid="${W_PID[$z]}"
		freeze_ms=$(it_now_ms)
		kill -STOP "$zpid"
		held_by "$zid" && break
		((tries < max_tries)) || break
		kill -CONT "$zpid"
		random_pause 200 800
	done
	R_ID[$r]="$zid"
	R_FREEZE_MS[$r]="$freeze_ms"
	R_HELD[$r]="$HELD"
	if [[ -n "$HELD" ]]; then
		feed_note "round $r: $zid frozen (SIGSTOP, try $tries) while its open transaction holds forwards: ${HELD% }"
	elif ((TXN_SEEN)); then
		feed_note "round $r: $zid frozen (SIGSTOP) after $tries tries, none of which caught its transaction holding forwards"
	else
		feed_note "round $r: $zid frozen (SIGSTOP); no transaction was ever seen open on the retry or dead-letter topic"
	fi
	wait_for 60 "${W_ID[$o]} owns all 8 partitions while $zid is frozen" owns_all "$o"
	takeover_s=$((($(it_now_ms) - freeze_ms) / 1000))
	# The new owner settles some of what it was handed (the frozen worker's uncommitted tail).
	# Rounds 1 and 2 thaw then, within 9 s of the freeze: inside the worker's
	# transaction.timeout.ms (10 s), so what fences the zombie is the group generation its
	# offsets carry (KIP-447). Round 3 stays frozen 22 s, past that timeout and the broker's
	# check for it (every 10 s): the transaction coordinator aborts the zombie's transaction
	# and bumps its producer epoch first.
	if ((r == 3)); then hold_until=$((freeze_ms + 22000)); else hold_until=$((freeze_ms + 9000)); fi
	n=$(itf_outcomes "$(w_log "$o")")
	while (($(itf_outcomes "$(w_log "$o")") < n + 30 || r == 3)) && (($(it_now_ms) < hold_until)); do
		sleep 0.2
	done
	hw_snapshot "$IT_DIR/thaw-$r.hw"
	thaw_lines=$(wc -l <"$IT_DIR/worker-$zid.log")
	R_THAW_MS[$r]=$(it_now_ms)
	kill -CONT "$zpid"
	frozen_s=$((($(it_now_ms) - freeze_ms) / 1000))
	echo "# round $r: ${W_ID[$o]} owned all 8 partitions ${takeover_s} s into the freeze and settled" \
		"$(($(itf_outcomes "$(w_log "$o")") - n)) more requests; $zid thawed (SIGCONT) after ${frozen_s} s"
	ok "round $r: $zid frozen past the session timeout, its partitions moved to ${W_ID[$o]}, thawed"
	wait_for 90 "the two workers share the partitions again after round $r" shared
	# Until it owns partitions again (or exits), whatever the thawed worker forwards is a
	# zombie's: the end of that window is its first assignment after the thaw, from its log.
	rejoined=$(tail -n +"$((thaw_lines + 1))" "$IT_DIR/worker-$zid.log" |
		grep -m 1 -E ' partitions_assigned count=[1-9]' | cut -d' ' -f1 || true)
	R_REJOIN_MS[$r]=$(date -u -d "${rejoined:-now}" +%s%3N)
	if [[ "${W_ID[$z]}" != "$zid" ]]; then
		echo "# round $r: the thawed $zid exited and was replaced by ${W_ID[$z]} (see supervisor above)"
	elif tail -n +"$((thaw_lines + 1))" "$IT_DIR/worker-$zid.log" | grep -q 'assignment_lost'; then
		echo "# round $r: the thawed $zid found its partitions lost and rejoined the group" \
			"$(((R_REJOIN_MS[$r] - R_THAW_MS[$r]) / 1000)) s after the thaw"
	else
		echo "# round $r: the thawed $zid rejoined the group $(((R_REJOIN_MS[$r] - R_THAW_MS[$r]) / 1000)) s after the thaw"
	fi
	tail -n +"$((thaw_lines + 1))" "$IT_DIR/worker-$zid.log" |
		grep -E ' (transaction_[a-z_]+|producer_fatal|assignment_lost|partitions_revoked|[a-z_]+_failed) ' |
		head -n 5 | cut -d' ' -f3- | cut -c1-220 | sed "s/^/# round $r: $zid after the thaw: /" || true
	echo "# round $r: done ($(elapsed)); ${W_ID[a]} owns $(owned "${W_ID[a]}" | wc -l), ${W_ID[b]} owns $(owned "${W_ID[b]}" | wc -l) partitions"
done

# ==== 2. SIGKILL at random moments, then the broker killed and restarted ====

for k in 1 2 3; do
	wait_for 90 "both workers own partitions before kill $k" shared
	s=$([[ $((RANDOM % 2)) == 0 ]] && echo a || echo b)
	random_pause 300 2500
	kid="${W_ID[$s]}"
	n=$(itf_outcomes "$(w_log "$s")")
	kill -KILL "${W_PID[$s]}" 2>/dev/null || true
	rc=0
	{ wait "${W_PID[$s]}"; } 2>/dev/null || rc=$? # no "Killed" line from bash
	no_sanitizer_report "$IT_DIR/worker-$kid.log"
	if [[ "$rc" == 137 ]]; then
		feed_note "kill $k: $kid SIGKILLed ${PAUSED_MS} ms into a busy stretch, after $n outcomes"
	elif [[ "$rc" == 0 || "$rc" == 1 ]]; then
		echo "# supervisor: worker $kid had exited $rc by itself before kill $k"
		RESTARTS=$((RESTARTS + 1))
	else
		fail "worker $kid exited $rc (not 0 or 1: a crash?) before kill $k"
	fi
	w_start "$s"
	echo "# kill $k: restarted as ${W_ID[$s]}"
done
wait_for 90 "both workers own partitions before the broker is killed" shared
random_pause 300 2000
it_broker kill
feed_note "broker SIGKILLed"
sleep 1
it_broker start >/dev/null
echo "# broker restarted on its log dir ($(elapsed))"
n=$(outcomes)
wait_for 120 "the workers carry on after the broker restart" outcomes_ge $((n + 200))
ok "the workers carry on after the broker's restart ($(elapsed))"

# ==== 3. stop the stream, settle, stop the workers ====

wait_for 60 "both workers own partitions at the end" shared
touch "$IT_DIR/feed.stop"
deadline=$((SECONDS + 60))
while itf_alive "$FEED_PID"; do
	((SECONDS < deadline)) || fail "the feed did not stop"
	supervise
	sleep 0.2
done
rc=0
wait "$FEED_PID" || rc=$?
assert_eq 0 "$rc" "the feed produced every record it took (aw-kafka exit 0)"
produced=$(fed)
head -n "$produced" "$IT_DIR/feed.manifest" >"$IT_DIR/manifest.txt"
echo "# $produced records produced ($(elapsed))"

settle_start=$SECONDS
next_report=$((SECONDS + 20))
until settled; do
	supervise
	((SECONDS - settle_start < 240)) || fail "not settled after 240 s: $SETTLE_STATE"
	if ((SECONDS >= next_report)); then
		echo "# settling ($((SECONDS - settle_start)) s): $SETTLE_STATE"
		next_report=$((SECONDS + 20))
	fi
	sleep 1
done
ok "settled $((SECONDS - settle_start)) s after the stream stopped: input committed to its end, retry offsets past every committed retry record, no transaction open"
for s in a b; do
	id="${W_ID[$s]}"
	kill -TERM "${W_PID[$s]}" 2>/dev/null || true
	deadline=$((SECONDS + 60))
	while kill -0 "${W_PID[$s]}" 2>/dev/null; do
		((SECONDS < deadline)) || fail "worker $id still running 60 s after SIGTERM"
		sleep 0.2
	done
	rc=0
	wait "${W_PID[$s]}" || rc=$?
	assert_eq 0 "$rc" "worker $id: SIGTERM exit 0"
done
for f in "$IT_DIR"/worker-*.log; do no_sanitizer_report "$f"; done
ok "no sanitizer report in any worker's log"
open=$(itf_open_txns) || fail "could not read the watermarks of the retry and dead-letter topics"
assert_eq "" "$open" "no transaction left open on the retry and dead-letter topics (LSO = high watermark)"
echo "# workers ran: $(cd "$IT_DIR" && ls worker-*.log | sed 's/^worker-//; s/\.log$//' | sort | tr '\n' ' ')(restarted by the supervisor after exiting by themselves: $RESTARTS)"
for f in "$IT_DIR"/worker-*.log; do
	echo "# outcomes $(basename "$f" .log): $(grep -o 'outcome=[a-z_]*' "$f" | sort | uniq -c | awk '{ printf "%s=%s ", substr($2, 9), $1 }')"
done

# ==== the verdict ====

# Both views of the retry and dead-letter topics: topic, partition, offset, timestamp,
# x-worker-id, request_id, x-attempt, x-error-class, name.
dump_tsv() { # TOPIC [ISOLATION]
	"$AWK" dump --topic "$1" ${2:+-X isolation.level=$2} 2>>"$IT_DIR/dump.log" |
		jq -r '((.value // "") | (try fromjson catch null)) as $v
			| [.topic, .partition, .offset, (.timestamp // 0), (.headers["x-worker-id"] // ""),
			   (if ($v | type) == "object" then ($v.request_id // "" | tostring) else "" end),
			   (.headers["x-attempt"] // ""), (.headers["x-error-class"] // ""),
			   (if ($v | type) == "object" then ($v.name // "" | tostring) else "" end)] | @tsv'
}
{
	dump_tsv assets.create.retry
	dump_tsv assets.create.dlq
} >"$IT_DIR/committed.tsv" || fail "could not dump the retry and dead-letter topics"
{
	dump_tsv assets.create.retry read_uncommitted
	dump_tsv assets.create.dlq read_uncommitted
} >"$IT_DIR/uncommitted.tsv" || fail "could not dump the retry and dead-letter topics (read_uncommitted)"
for t in assets.create.retry assets.create.dlq; do
	c=$(awk -F'\t' -v t="$t" '$1 == t' "$IT_DIR/committed.tsv" | wc -l)
	u=$(awk -F'\t' -v t="$t" '$1 == t' "$IT_DIR/uncommitted.tsv" | wc -l)
	echo "# $t: $c records as read_committed readers see them, $u in the log ($((u - c)) in aborted transactions)"
done

# Each zombie's forwards: those made in the 10 s before its freeze (in flight at the freeze) that
# were aborted or that the broker appended only after the thaw, when the new owner had taken
# over; and those made after the thaw until it owned partitions again (settling what it had
# fetched before it learnt that its partitions were gone), aborted or visible.
caught=0
for r in $(seq 1 $ROUNDS); do
	read -r ab_before late late_visible ab_after vis_after < <(awk -F'\t' -v z="${R_ID[$r]}" \
		-v f="${R_FREEZE_MS[$r]}" -v th="${R_THAW_MS[$r]}" -v rj="${R_REJOIN_MS[$r]}" '
		FILENAME == ARGV[1] { hw[$1 " " $2] = $3; next }
		FILENAME == ARGV[2] { c[$1 " " $2 " " $3] = 1; next }
		$5 != z { next }
		{ k = $1 " " $2 " " $3 }
		$4 < f && $4 >= f - 10000 {
			if (!(k in c)) ab_before++
			if ($3 >= hw[$1 " " $2]) { late++; if (k in c) late_visible++ }
		}
		$4 >= th && $4 < rj { if (k in c) vis_after++; else ab_after++ }
		END { print ab_before + 0, late + 0, late_visible + 0, ab_after + 0, vis_after + 0 }' \
		"$IT_DIR/thaw-$r.hw" "$IT_DIR/committed.tsv" "$IT_DIR/uncommitted.tsv")
	held="${R_HELD[$r]% }"
	echo "# round $r (${R_ID[$r]}): open transaction holding its forwards at the freeze: ${held:-not seen};" \
		"forwards made before the freeze: $ab_before aborted, $late appended after the thaw ($late_visible visible);" \
		"made after the thaw before it rejoined: $ab_after aborted, $vis_after visible"
	if [[ -n "${R_HELD[$r]}" ]] || ((ab_before + late + ab_after + vis_after > 0)); then caught=$((caught + 1)); fi
done

# Requeues: at most one per request and attempt on the retry topic (read_committed).
retry_twice=$(awk -F'\t' '$1 == "assets.create.retry" { n[$6 " attempt " $7]++ }
	END { for (k in n) if (n[k] > 1) print k " x" n[k] }' "$IT_DIR/committed.tsv" | sort)
echo "# requeues on the retry topic twice (request_id, x-attempt): $(grep -c . <<<"$retry_twice" || true)"
[[ -z "$retry_twice" ]] || head -n 10 <<<"$retry_twice" | sed 's/^/#   /'
# Markers: requeued once (refused once by the trigger), then created on a later try.
markers_produced=$(grep -cFf <(awk '{ print $1 }' "$IT_DIR/markers.manifest") "$IT_DIR/manifest.txt" || true)
markers_requeued=$(awk -F'\t' '$1 == "assets.create.retry" && $8 == "unique_violation" && $9 ~ /^requeue-once-/ { print $6 }' \
	"$IT_DIR/committed.tsv" | sort -u | wc -l)
markers_created=$(psql -X -A -t -q -v ON_ERROR_STOP=1 <<SQL
CREATE TEMP TABLE mk (request_id uuid, expected text);
\copy mk FROM '$IT_DIR/markers.manifest' WITH (DELIMITER ' ')
SELECT count(*) FROM mk JOIN asset_requests q USING (request_id) WHERE q.outcome = 'created';
SQL
)
echo "# markers: $markers_produced produced, $markers_requeued went through the retry topic, $markers_created created"

itf_account "$IT_DIR/manifest.txt" "after 3 zombies, 3 SIGKILLs and a broker restart"
assert_eq "" "$retry_twice" "no request requeued twice for one attempt (retry topic, read_committed)"
assert_eq "$markers_produced" "$markers_created" "every requeued-once marker produced is resolved (created)"
assert_ge 1 "$markers_requeued" "markers made retry-topic traffic"
assert_eq 0 "$(it_sql "SELECT count(*) FROM asset_requests WHERE outcome NOT IN ('created', 'duplicate')")" \
	"stored outcomes are created or duplicate only"
assert_eq "$ROUNDS" "$caught" "every freeze caught the worker with forwards in flight (its open transaction holding them, or zombie forwards aborted or landed after the thaw)"
echo "# run time $(elapsed)"
it_done
