/* Which input offsets may be committed.
 *
 * A record's offset is stored for commit only once the record reached a final state (DB
 * commit, or retry/dead-letter produce acknowledged). Those finish out of order (a dead
 * letter waits for the broker while the next record commits in PostgreSQL), so per partition
 * the committable offset is the lowest offset still open: committing past an open record
 * would lose it on a crash. */
#ifndef AW_OFFSET_TRACKER_H
#define AW_OFFSET_TRACKER_H

#include <stddef.h>
#include <stdint.h>

struct offset_tracker;

/* Identifies one open record; `generation` changes when the partition is reassigned, so an
 * acknowledgement arriving after a revoke cannot complete a record of the next assignment. */
struct tracked_offset {
	const char *topic; /* points into the tracker; valid while the partition is tracked */
	int32_t partition;
	int64_t offset;
	uint32_t generation;
};

struct offset_tracker *offset_tracker_new(void);
void offset_tracker_free(struct offset_tracker *t);

/* Starts (or restarts, after a revoke) tracking a partition. */
void offset_tracker_assign(struct offset_tracker *t, const char *topic, int32_t partition);
/* Forgets a partition and its open records (revoked). */
void offset_tracker_revoke(struct offset_tracker *t, const char *topic, int32_t partition);
int offset_tracker_is_assigned(const struct offset_tracker *t, const char *topic,
			       int32_t partition);
/* Whether `ref` still belongs to the current assignment of its partition. */
int offset_tracker_is_current(const struct offset_tracker *t, const struct tracked_offset *ref);

/* Opens a record. Returns -1 if the partition is not assigned, or if the offset is not
 * beyond the last one opened in this assignment (a re-delivery of a record in hand). */
int offset_tracker_open(struct offset_tracker *t, const char *topic, int32_t partition,
			int64_t offset, struct tracked_offset *out);

/* Marks a record final. Returns the new committable offset of its partition (the next
 * offset to consume) when it advanced, else -1 (still blocked by an earlier open record, or
 * a stale ref). */
int64_t offset_tracker_close(struct offset_tracker *t, const struct tracked_offset *ref);

/* The offset that may be committed for the partition now: its lowest open record, or the one
 * after the last record opened; -1 when nothing was opened in this assignment. Never below
 * the group's committed offset (consumption started there). */
int64_t offset_tracker_committable(const struct offset_tracker *t, const char *topic,
				   int32_t partition);

/* The consumer reached the partition's end at `end` (its fetch position, past any
 * transaction markers). With no record open, `end` is committable: returns it, else -1.
 * (The last record's offset + 1 is not the end of a topic written by transactions: a commit
 * marker follows it, and a reader committed before the marker would never look caught up.) */
int64_t offset_tracker_at_end(struct offset_tracker *t, const char *topic, int32_t partition,
			      int64_t end);

/* Open records in all partitions. */
size_t offset_tracker_open_count(const struct offset_tracker *t);

#endif
