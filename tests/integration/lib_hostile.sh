# shellcheck shell=bash
# Helpers of the fault and hostile-input tests 21-29, sourced after lib.sh and lib_faults.sh:
#
#   source "$(dirname "$0")/lib.sh"
#   source "$(dirname "$0")/lib_faults.sh"
#   source "$(dirname "$0")/lib_hostile.sh"
#
# A steady stream (ith_feed_*), a throttle that keeps the worker busy for as long as a fault
# needs (ith_throttle_*), timing read back from the worker's text log (ith_log_*), and an
# accounting check for records that carry no usable request_id (itf_account with a
# three-column manifest).

# ---- a steady stream ----

# Produces an envelope file in the background at a steady pace: PER_TICK lines, then a pause
# of TICK seconds, and so on. The producer's pid is in ITH_FEED_<NAME> (killed by the
# cleanup on failure); how many lines were handed to it so far is in $IT_DIR/feed-NAME.progress.
ith_feed_start() { # NAME FILE PER_TICK TICK [TOPIC]
	local name="$1" file="$2" per="$3" tick="$4" topic="${5:-assets.create}"
	local progress="$IT_DIR/feed-$name.progress"
	echo 0 >"$progress"
	"$AWK" produce --envelope --topic "$topic" 2>>"$IT_DIR/feed-$name.log" < <(
		awk -v n="$per" -v t="$tick" -v p="$progress" '
			{ print; fflush() }
			NR % n == 0 { print NR > p; close(p); system("sleep " t) }
			END { print NR > p; close(p) }' "$file"
	) &
	local pid=$!
	IT_WORKER_PIDS+=("$pid")
	printf -v "ITH_FEED_$name" '%s' "$pid"
	echo "# feed $name: $(wc -l <"$file") records from $(basename "$file"), $per every ${tick}s"
}

# Lines of the feed handed to the producer so far.
ith_feed_progress() { cat "$IT_DIR/feed-$1.progress" 2>/dev/null || echo 0; }

# Waits for the feed's producer to finish; asserts it delivered everything (exit 0).
ith_feed_wait() { # NAME SECS
	local var="ITH_FEED_$1"
	local pid="${!var}" deadline=$((SECONDS + $2)) rc=0
	while kill -0 "$pid" 2>/dev/null; do
		((SECONDS < deadline)) || fail "feed $1: still producing after $2 s"
		sleep 0.2
	done
	wait "$pid" || rc=$?
	assert_eq 0 "$rc" "feed $1: every record of the stream was produced (aw-kafka exit 0)"
}

# ---- a throttle ----

# An AFTER INSERT trigger on asset_requests that sleeps it_throttle.ms per new row: the worker
# stays busy with a stream for as long as the test needs, and the test speeds it up at the end.
# SECURITY DEFINER, so a worker connecting as an unprivileged role runs it too.
ith_throttle_install() { # MS
	psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE TABLE it_throttle (ms integer NOT NULL);
INSERT INTO it_throttle VALUES (${1:-0});
CREATE FUNCTION it_throttle() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS \$\$
DECLARE d integer;
BEGIN
    SELECT ms INTO d FROM it_throttle;
    IF d > 0 THEN PERFORM pg_sleep(d / 1000.0); END IF;
    RETURN NULL;
END \$\$;
CREATE TRIGGER it_throttle AFTER INSERT ON asset_requests FOR EACH ROW EXECUTE FUNCTION it_throttle();
SQL
}
ith_throttle() { it_sql "UPDATE it_throttle SET ms = $1" >/dev/null; }

# ---- the text log ----

# Epoch milliseconds of each line's timestamp (text format: 2025-01-02T03:04:05.678Z ...).
ith_log_ms() {
	TZ=UTC awk '{
		ts = $1; ms = substr(ts, 21, 3) + 0
		gsub(/[-T:]/, " ", ts); s = mktime(substr(ts, 1, 19))
		printf "%d%03d\n", s, ms }'
}

# The value of FIELD in each line on stdin (text format: key=value, value up to a space).
ith_field() { grep -oE "(^| )$1=[^ ]*" | sed -E "s/^ ?$1=//"; }

# Lines of a log after the first line matching a fixed string (0 lines if none).
ith_log_after() { # LOG FIXED_STRING
	awk -v s="$2" 'found { print } index($0, s) { found = 1 }' "$1"
}

# ---- committed offsets vs acknowledged forwards ----

# One sample of "an input offset is never committed past a request whose retry or dead letter
# was not acknowledged": the group's committed input offsets, then (after them) the high
# watermarks of the retry and dead-letter topics. A forward at or beyond such a watermark was
# appended after the committed offsets had been read, so its input record was not final when
# they were committed. Appends "N committed P OFFSET" and "N hw TOPIC P HIGH" lines to FILE;
# a sample whose reads failed (broker down) is not written.
ith_sample_offsets() { # FILE N
	local c r d
	c=$("$AWK" committed --group "$IT_GROUP" --topic assets.create 2>>"$IT_DIR/offsets.log") || return 0
	r=$("$AWK" watermarks --topic assets.create.retry 2>>"$IT_DIR/offsets.log") || return 0
	d=$("$AWK" watermarks --topic assets.create.dlq 2>>"$IT_DIR/offsets.log") || return 0
	{
		awk -v n="$2" '{ print n, "committed", $1, $2 }' <<<"$c"
		awk -v n="$2" '{ print n, "hw", "assets.create.retry", $1, $3 }' <<<"$r"
		awk -v n="$2" '{ print n, "hw", "assets.create.dlq", $1, $3 }' <<<"$d"
	} >>"$1"
}

# Samples in the background until $IT_DIR/sampler.stop exists; pid in ITH_SAMPLER.
ith_sampler_start() { # FILE
	rm -f "$IT_DIR/sampler.stop"
	(
		n=0
		until [[ -e "$IT_DIR/sampler.stop" ]]; do
			n=$((n + 1))
			ith_sample_offsets "$1" "$n"
			sleep 0.25
		done
	) &
	ITH_SAMPLER=$!
	IT_WORKER_PIDS+=("$ITH_SAMPLER")
}
ith_sampler_stop() {
	touch "$IT_DIR/sampler.stop"
	wait "$ITH_SAMPLER" 2>/dev/null || true
}

# Checks the samples against the forwards of the retry and dead-letter topics: for every
# sample and every forward made on a request's first try (x-attempt 1, so its input record is
# assets.create at x-original-partition/offset) that the broker appended at or after the
# sample's high watermark, the committed offset of that input partition was at or below the
# input record. Sets ITH_PAIRS (sample/forward pairs checked), ITH_VIOLATIONS, ITH_SAMPLES,
# ITH_MIN_GAP (the smallest input offset - committed offset over the pairs: 0 means a commit
# went right up to an unacknowledged forward), and prints the first violations.
ith_check_samples() { # SAMPLES_FILE
	local fwd="$IT_DIR/forwards.tsv" out
	{
		it_dump assets.create.retry
		it_dump assets.create.dlq
	} | jq -r 'select(.headers["x-attempt"] == "1" and .headers["x-original-topic"] == "assets.create")
		| [.topic, .partition, .offset, .headers["x-original-partition"], .headers["x-original-offset"]] | @tsv' >"$fwd"
	out=$(psql -X -A -t -q -v ON_ERROR_STOP=1 -F ' ' <<SQL
CREATE TEMP TABLE s (line text);
\copy s FROM '$1'
CREATE TEMP TABLE c AS SELECT split_part(line, ' ', 1)::int AS n, split_part(line, ' ', 3)::int AS p,
    split_part(line, ' ', 4)::bigint AS committed FROM s WHERE split_part(line, ' ', 2) = 'committed';
CREATE TEMP TABLE h AS SELECT split_part(line, ' ', 1)::int AS n, split_part(line, ' ', 3) AS topic,
    split_part(line, ' ', 4)::int AS p, split_part(line, ' ', 5)::bigint AS high FROM s WHERE split_part(line, ' ', 2) = 'hw';
CREATE TEMP TABLE f (topic text, p int, "offset" bigint, op int, oo bigint);
\copy f FROM '$fwd'
CREATE TEMP TABLE pairs AS
  SELECT c.n, f.topic, f."offset", f.op, f.oo, c.committed
    FROM f JOIN h ON h.topic = f.topic AND h.p = f.p AND f."offset" >= h.high
           JOIN c ON c.n = h.n AND c.p = f.op
   WHERE c.committed >= 0;
SELECT (SELECT count(DISTINCT n) FROM c), (SELECT count(*) FROM pairs),
       (SELECT count(*) FROM pairs WHERE committed > oo),
       coalesce((SELECT min(oo - committed) FROM pairs), -1);
SELECT 'violation', n, topic, "offset", op, oo, committed FROM pairs WHERE committed > oo ORDER BY n LIMIT 10;
SQL
	) || fail "checking the offset samples failed: $out"
	read -r ITH_SAMPLES ITH_PAIRS ITH_VIOLATIONS ITH_MIN_GAP <<<"$(head -n 1 <<<"$out")"
	grep '^violation' <<<"$out" | sed 's/^/#   /' || true
}


