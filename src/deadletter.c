/*
 * deadletter.c
 *		Writes the events Kafka refused for good into the kafka_dead_letters
 *		table of the database named by streamkafka.database, and removes the
 *		rows of dead letters that were queued again and then delivered.
 *
 * A refused event keeps its place in the queue, flagged REFUSED, until the
 * transaction that writes its row has committed; only then is it flagged
 * DEAD_LETTERED and its space can be reused.  So a dead letter is never
 * lost: if the table cannot be written (the extension is not created in that
 * database, the database is read-only, ...), the events wait in the queue,
 * the worker logs why (at most once a minute) and tries again every second.
 * Rows are upserted by event id: writing the same refused event twice (after
 * a crash restart) leaves one row.
 *
 * The lists below are filled inside librdkafka's delivery callbacks, so they
 * grow with malloc, never palloc.  Should malloc fail, the event is found
 * again by a walk from the tail (sender.c hands REFUSED events over again).
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include <librdkafka/rdkafka.h>

#include "deadletter.h"
#include "event.h"
#include "metrics.h"
#include "ring.h"
#include "settings.h"
#include "topicstats.h"

#define DEADLETTER_RETRY_MS		1000
#define DEADLETTER_WARN_MS		60000
#define DEADLETTER_NARGS		11

typedef struct OffsetList
{
	void	   *items;
	int			count;
	int			capacity;
	size_t		item_size;
} OffsetList;

static OffsetList refused = {NULL, 0, 0, sizeof(uint64)};
static OffsetList delivered_retries = {NULL, 0, 0, sizeof(int64)};
static bool missed = false;		/* an add failed: walk the queue again */
static TimestampTz last_failure = 0;
static TimestampTz last_warning = 0;

static void
list_append(OffsetList *list, const void *item)
{
	if (list->count == list->capacity)
	{
		int			capacity = Max(64, list->capacity * 2);
		void	   *items = realloc(list->items, capacity * list->item_size);

		if (items == NULL)
		{
			missed = true;
			return;
		}
		list->items = items;
		list->capacity = capacity;
	}
	memcpy((char *) list->items + list->count * list->item_size, item, list->item_size);
	list->count++;
}

/*
 * deadletter_add - the event at event_off was refused (plain C)
 */
void
deadletter_add(uint64 event_off)
{
	list_append(&refused, &event_off);
}

/*
 * deadletter_retry_delivered - a dead letter queued again was delivered: its
 * row goes (plain C)
 */
void
deadletter_retry_delivered(int64 event_id)
{
	list_append(&delivered_retries, &event_id);
}

/*
 * deadletter_forget_all - the sender walks the queue again from the tail and
 * will hand every REFUSED event over again
 */
void
deadletter_forget_all(void)
{
	refused.count = 0;
	missed = false;
}

/* the event's headers as a jsonb object, or NULL if it has none */
static Datum
deadletter_headers(const SkEventView *view, bool *isnull)
{
	StringInfoData json;
	const char *p = view->headers;

	*isnull = view->header->nheaders == 0;
	if (*isnull)
		return (Datum) 0;
	initStringInfo(&json);
	appendStringInfoChar(&json, '{');
	for (int i = 0; i < view->header->nheaders; i++)
	{
		SkPackedHeader ph;

		memcpy(&ph, p, sizeof(ph));
		p += sizeof(ph);
		if (i > 0)
			appendStringInfoChar(&json, ',');
		escape_json(&json, p);
		p += ph.name_len + 1;
		appendStringInfoChar(&json, ':');
		if (ph.value_len < 0)
			appendStringInfoString(&json, "null");
		else
			escape_json(&json, pnstrdup(p, ph.value_len));
		p += Max(ph.value_len, 0);
	}
	appendStringInfoChar(&json, '}');
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(json.data));
}

static Datum
bytes_or_null(const char *data, int32 len, bool *isnull)
{
	*isnull = len < 0;
	return *isnull ? (Datum) 0 : PointerGetDatum(cstring_to_text_with_len(data, len));
}

/* insert or update the row of the refused event at off */
static void
deadletter_write_one(SPIPlanPtr plan, uint64 off, TimestampTz now)
{
	SkEventHeader header;
	char	   *packed;
	SkEventView view;
	rd_kafka_resp_err_t err;
	Datum		values[DEADLETTER_NARGS];
	char		nulls[DEADLETTER_NARGS];
	bool		isnull;

	ring_read(off, &header, sizeof(header));
	packed = palloc(header.length);
	ring_read(off, packed, header.length);
	event_view(packed, &view);
	err = (rd_kafka_resp_err_t) (int32) header.sent_generation;

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(header.event_id);
	values[1] = PointerGetDatum(cstring_to_text_with_len(view.topic, header.topic_len));
	values[2] = Int32GetDatum(header.partition);
	nulls[2] = header.partition < 0 ? 'n' : ' ';
	values[3] = bytes_or_null(view.key, header.key_len, &isnull);
	nulls[3] = isnull ? 'n' : ' ';
	values[4] = bytes_or_null(view.value, header.value_len, &isnull);
	nulls[4] = isnull ? 'n' : ' ';
	values[5] = deadletter_headers(&view, &isnull);
	nulls[5] = isnull ? 'n' : ' ';
	values[6] = Int32GetDatum((int32) err);
	values[7] = CStringGetTextDatum(rd_kafka_err2name(err));
	values[8] = CStringGetTextDatum(rd_kafka_err2str(err));
	values[9] = Int32GetDatum((header.flags >> SK_EVENT_ATTEMPTS_SHIFT) + 1);
	values[10] = TimestampTzGetDatum(now);
	if (SPI_execute_plan(plan, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write a dead letter");
}

/* the schema the extension is created in, or NULL */
static char *
deadletter_schema(void)
{
	if (SPI_execute("SELECT n.nspname FROM pg_catalog.pg_extension e "
					"JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace "
					"WHERE e.extname = 'streamkafka'", true, 1) != SPI_OK_SELECT ||
		SPI_processed == 0)
		return NULL;
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

static void
deadletter_write_refused(const char *schema)
{
	Oid			types[DEADLETTER_NARGS] = {INT8OID, TEXTOID, INT4OID, BYTEAOID, BYTEAOID,
	JSONBOID, INT4OID, TEXTOID, TEXTOID, INT4OID, TIMESTAMPTZOID};
	char	   *sql = psprintf("INSERT INTO %s.kafka_dead_letters AS d "
							   "(id, topic, partition, key, value, headers, error_code, error_name, "
							   "error, attempts, first_failed_at, last_failed_at) "
							   "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) "
							   "ON CONFLICT (id) DO UPDATE SET error_code = excluded.error_code, "
							   "error_name = excluded.error_name, error = excluded.error, "
							   "attempts = excluded.attempts, last_failed_at = excluded.last_failed_at, "
							   "retry_queued_at = NULL",
							   quote_identifier(schema));
	SPIPlanPtr	plan = SPI_prepare(sql, DEADLETTER_NARGS, types);
	TimestampTz now = GetCurrentTimestamp();

	if (plan == NULL)
		elog(ERROR, "could not prepare the dead-letter insert: %s",
			 SPI_result_code_string(SPI_result));
	for (int i = 0; i < refused.count; i++)
		deadletter_write_one(plan, ((uint64 *) refused.items)[i], now);
}

static void
deadletter_delete_retried(const char *schema)
{
	Datum	   *ids = palloc(delivered_retries.count * sizeof(Datum));
	Datum		arg;
	Oid			type = INT8ARRAYOID;

	for (int i = 0; i < delivered_retries.count; i++)
		ids[i] = Int64GetDatum(((int64 *) delivered_retries.items)[i]);
	arg = PointerGetDatum(construct_array(ids, delivered_retries.count, INT8OID,
										  sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	if (SPI_execute_with_args(psprintf("DELETE FROM %s.kafka_dead_letters WHERE id = ANY ($1)",
									   quote_identifier(schema)),
							  1, &type, &arg, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not remove delivered dead letters");
}

/* one transaction writing both lists; false if the table is not there */
static bool
deadletter_transaction(void)
{
	char	   *schema;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	schema = deadletter_schema();
	if (schema != NULL && refused.count > 0)
		deadletter_write_refused(schema);
	if (schema != NULL && delivered_retries.count > 0)
		deadletter_delete_retried(schema);
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	return schema != NULL;
}

static void
deadletter_warn(const char *why)
{
	TimestampTz now = GetCurrentTimestamp();

	last_failure = now;
	if (!TimestampDifferenceExceeds(last_warning, now, DEADLETTER_WARN_MS))
		return;
	last_warning = now;
	ereport(WARNING,
			(errmsg("streamkafka cannot write %d refused events to kafka_dead_letters in database \"%s\"; they wait in the queue",
					refused.count, sk_database),
			 errdetail("%s", why),
			 errhint("CREATE EXTENSION streamkafka in database \"%s\", or set streamkafka.database.",
					 sk_database)));
}

/* the refused events are in the table: they are finished */
static void
deadletter_finish_refused(void)
{
	for (int i = 0; i < refused.count; i++)
	{
		uint64		off = ((uint64 *) refused.items)[i];

		topicstats_count_dead_lettered(topicstats_event_slot(off));
		ring_event_finish(off, SK_EVENT_DEAD_LETTERED);
	}
	metrics_count_dead_lettered(refused.count);
	refused.count = 0;
	delivered_retries.count = 0;
}

/*
 * deadletter_flush - write what is waiting, at most once a second after a
 * failure; true if events were finished
 */
bool
deadletter_flush(void)
{
	MemoryContext context = CurrentMemoryContext;
	volatile int outcome;		/* 1 written, 0 no table, -1 error */

	if (refused.count == 0 && delivered_retries.count == 0)
		return false;
	if (!TimestampDifferenceExceeds(last_failure, GetCurrentTimestamp(), DEADLETTER_RETRY_MS))
		return false;
	PG_TRY();
	{
		outcome = deadletter_transaction() ? 1 : 0;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(context);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		deadletter_warn(edata->message);
		FreeErrorData(edata);
		outcome = -1;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(context);
	if (outcome == 0)
		deadletter_warn("The extension is not created in that database.");
	if (outcome != 1)
		return false;
	deadletter_finish_refused();
	return true;
}

/*
 * deadletter_missed - did an add fail (out of memory)?  Then the sender
 * walks the queue again.
 */
bool
deadletter_missed(void)
{
	return missed;
}
