/* forward_hold: a partition stopped at the record whose forward failed, released after its
 * delay (that record alone goes first), over when the caller drops it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "forward_hold.h"

static void test_blocks_from_the_record_on(void **state)
{
	struct forward_hold h = { 0 };
	(void)state;
	struct hold_entry *e = forward_hold_add(&h, "in", 2, 100, 1, 0);
	e->until_ms = 5000;
	assert_false(forward_hold_blocks(&h, "in", 2, 99));
	assert_true(forward_hold_blocks(&h, "in", 2, 100));
	assert_true(forward_hold_blocks(&h, "in", 2, 250));
	assert_false(forward_hold_blocks(&h, "in", 1, 250));
	assert_false(forward_hold_blocks(&h, "retry", 2, 250));
	assert_int_equal(forward_hold_refused(&h), 1);
	forward_hold_cleanup(&h);
}

static void test_due_then_passed(void **state)
{
	struct forward_hold h = { 0 };
	rd_kafka_topic_partition_list_t *due = rd_kafka_topic_partition_list_new(2);
	(void)state;
	struct hold_entry *e = forward_hold_add(&h, "in", 0, 40, 0, 0);
	e->until_ms = 100;
	e->reached = 1; /* the consumer dropped records beyond it */
	forward_hold_due(&h, 99, due);
	assert_int_equal(due->cnt, 0);
	forward_hold_due(&h, 100, due);
	assert_int_equal(due->cnt, 1);
	assert_int_equal(due->elems[0].offset, 40); /* sought back to the held record */
	assert_false(forward_hold_blocks(&h, "in", 0, 40)); /* released: the held record goes */
	assert_true(forward_hold_blocks(&h, "in", 0, 41));  /* ... first, alone */
	assert_false(forward_hold_blocks(&h, "in", 0, 39));
	forward_hold_due(&h, 200, due);
	assert_int_equal(due->cnt, 1); /* once */
	forward_hold_drop(&h, "in", 0);
	assert_null(forward_hold_find(&h, "in", 0));
	assert_false(forward_hold_blocks(&h, "in", 0, 41));
	rd_kafka_topic_partition_list_destroy(due);
	forward_hold_cleanup(&h);
}

static void test_failing_again(void **state)
{
	struct forward_hold h = { 0 };
	rd_kafka_topic_partition_list_t *due = rd_kafka_topic_partition_list_new(2);
	(void)state;
	struct hold_entry *e = forward_hold_add(&h, "in", 0, 40, 0, 0);
	assert_int_equal(e->failures, 1);
	forward_hold_due(&h, e->until_ms, due);
	e = forward_hold_add(&h, "in", 0, 40, 1, 0); /* the resend fails, for good this time */
	assert_int_equal(e->failures, 2);
	assert_false(e->released);
	assert_true(forward_hold_blocks(&h, "in", 0, 40));
	assert_int_equal(forward_hold_refused(&h), 1);
	e = forward_hold_add(&h, "in", 0, 30, 0, 0); /* an earlier record fails: held there */
	assert_int_equal(e->offset, 30);
	assert_int_equal(e->failures, 1);
	assert_int_equal(h.n, 1);
	forward_hold_drop(&h, "in", 0);
	assert_int_equal(h.n, 0);
	assert_int_equal(forward_hold_refused(&h), 0);
	rd_kafka_topic_partition_list_destroy(due);
	forward_hold_cleanup(&h);
}

static void test_permanent_errors(void **state)
{
	(void)state;
	assert_true(forward_error_is_permanent(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE));
	assert_true(forward_error_is_permanent(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED));
	assert_false(forward_error_is_permanent(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT));
	assert_false(forward_error_is_permanent(RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION));
}

/* Released before the consumer got back to the held record (after a rewind): no seek, which
 * would skip the records between. */
static void test_due_not_reached(void **state)
{
	struct forward_hold h = { 0 };
	rd_kafka_topic_partition_list_t *due = rd_kafka_topic_partition_list_new(2);
	(void)state;
	forward_hold_add(&h, "in", 0, 40, 0, 0)->until_ms = 10;
	forward_hold_due(&h, 10, due);
	assert_int_equal(due->cnt, 1);
	assert_int_equal(due->elems[0].offset, RD_KAFKA_OFFSET_INVALID);
	rd_kafka_topic_partition_list_destroy(due);
	forward_hold_cleanup(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blocks_from_the_record_on),
		cmocka_unit_test(test_due_then_passed),
		cmocka_unit_test(test_due_not_reached),
		cmocka_unit_test(test_failing_again),
		cmocka_unit_test(test_permanent_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
