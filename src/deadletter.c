/*
 * deadletter.c
 *		Writes the events Kafka refused for good into kafka_dead_letter_rows
 *		of the database named by streamkafka.database, removes the rows of
 *		dead letters that were queued again and then delivered, and queues a
 *		row again for a caller allowed to (kafka_requeue_dead_letter).
 *
 * A refused event keeps its place in the queue, flagged REFUSED, until the
 * transaction that writes its row has committed; only then is it flagged
 * DEAD_LETTERED and its space can be reused.  So a dead letter is never
 * lost: if the table cannot be written (the extension is not created in that
 * database, the database is read-only, ...), the events wait in the queue,
 * the worker logs why (at most once a minute) and tries again every second.
 * Rows are upserted by event id: writing the same refused event twice (after
 * a crash restart) leaves one row.  Each row records the database and the
 * role its event came from (the block's origin, see enqueue.c).
 *
 * The worker never waits on a lock without a bound: its transaction sets
 * lock_timeout, and a write that fails leaves the events waiting in memory
 * for the next try.  It writes as the table's owner, in a restricted
 * security context with search_path = pg_catalog, pg_temp: what the owner
 * attaches to the table (a trigger) must not run as a superuser.
 *
 * Without a database (streamkafka.database could not be connected to; see
 * worker.c) nothing is written and the events wait; the worker checks every
 * few seconds whether the database exists now.
 *
 * Who sees a row (the kafka_dead_letters view) and may queue it again: the
 * roles whose privileges include those of the role that published it, the
 * database's owner, superusers.  A requeue reads the event from the row as
 * the table's owner (publishers only read the view), never from its caller.
 *
 * The lists below are filled inside librdkafka's delivery callbacks, so they
 * grow with malloc, never palloc.  Should malloc fail, the event is found
 * again by a walk from the tail (sender.c hands REFUSED events over again).
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include <librdkafka/rdkafka.h>

#include "deadletter.h"
#include "event.h"
#include "metrics.h"
#include "publish.h"
#include "ratelimit.h"
#include "ring.h"
#include "settings.h"
#include "streamkafka.h"
#include "topicstats.h"

#define DEADLETTER_RETRY_MS		1000
#define DEADLETTER_WARN_MS		60000
#define DEADLETTER_CHECK_MS		5000	/* does streamkafka.database exist now? */
#define DEADLETTER_LOCK_TIMEOUT "200ms"
#define DEADLETTER_NARGS		13

/* in PostgreSQL's shared memory: read by kafka_health() */
typedef struct DeadLetterShared
{
	pg_atomic_uint32 no_database;	/* the worker could not connect to it */
} DeadLetterShared;

static DeadLetterShared *dl_shared = NULL;

typedef struct OffsetList
{
	void	   *items;
	int			count;
	int			capacity;
	size_t		item_size;
} OffsetList;

static OffsetList refused = {NULL, 0, 0, sizeof(uint64)};
static OffsetList delivered_retries = {NULL, 0, 0, sizeof(int64)};
static OffsetList dropped_retries = {NULL, 0, 0, sizeof(int64)};
static bool missed = false;		/* an add failed: walk the queue again */
static bool connected = false;	/* to streamkafka.database */
static TimestampTz last_database_check = 0;
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
 * deadletter_retry_dropped - a dead letter queued again was dropped by the
 * overflow policy: its row is no longer marked as queued (plain C)
 */
void
deadletter_retry_dropped(int64 event_id)
{
	list_append(&dropped_retries, &event_id);
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
	SkHeaderIterator it;
	SkHeaderField field;

	*isnull = view->header->nheaders == 0;
	if (*isnull)
		return (Datum) 0;
	initStringInfo(&json);
	appendStringInfoChar(&json, '{');
	event_headers_begin(&it, view->headers, view->header->nheaders);
	while (event_headers_next(&it, &field))
	{
		if (json.len > 1)
			appendStringInfoChar(&json, ',');
		escape_json(&json, field.name);
		appendStringInfoChar(&json, ':');
		if (field.value == NULL)
			appendStringInfoString(&json, "null");
		else
			escape_json(&json, pnstrdup(field.value, field.value_len));
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

/* origin_name - a database's or role's name as a datum, or null */
static Datum
origin_name(char *name, bool *isnull)
{
	*isnull = name == NULL;
	return *isnull ? (Datum) 0 : CStringGetTextDatum(name);
}

/* deadletter_write_one - insert or update the row of the refused event at off */
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
	uint64		block;
	Oid			database;
	Oid			role;

	packed = palloc(event_ring_read_header(off, &header));
	ring_read(off, packed, header.length);
	event_view(packed, &view);
	err = (rd_kafka_resp_err_t) event_ring_refusal_error(off);
	block = event_ring_block(off);
	database = *ring_field(block, Oid, database);
	role = *ring_field(block, Oid, role);

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
	values[11] = origin_name(OidIsValid(database) ? get_database_name(database) : NULL, &isnull);
	nulls[11] = isnull ? 'n' : ' ';
	values[12] = origin_name(OidIsValid(role) ? GetUserNameFromId(role, true) : NULL, &isnull);
	nulls[12] = isnull ? 'n' : ' ';
	if (SPI_execute_plan(plan, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write a dead letter");
}

/*
 * deadletter_table - find kafka_dead_letter_rows of this database: its
 * schema (quoted, for SQL) and its owner; false if the extension is not
 * created, ERROR if it is older than 0.3.0
 */
static bool
deadletter_table(char **schema, Oid *owner)
{
	bool		isnull;
	Datum		relowner;

	if (SPI_execute("SELECT n.nspname, c.relowner FROM pg_catalog.pg_extension e "
					"JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace "
					"LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid "
					"AND c.relname = 'kafka_dead_letter_rows' "
					"WHERE e.extname = 'streamkafka'", true, 1) != SPI_OK_SELECT ||
		SPI_processed == 0)
		return false;
	relowner = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the extension streamkafka in database \"%s\" is older than its library",
						get_database_name(MyDatabaseId)),
				 errhint("Run ALTER EXTENSION streamkafka UPDATE in that database.")));
	*schema = pstrdup(quote_identifier(SPI_getvalue(SPI_tuptable->vals[0],
													SPI_tuptable->tupdesc, 1)));
	*owner = DatumGetObjectId(relowner);
	return true;
}

/*
 * deadletter_safe_settings - for the current transaction (local) or until
 * AtEOXact_GUC (save): catalog-only search_path, and lock waits bounded
 */
static void
deadletter_safe_settings(GucAction action)
{
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, action, true, 0, false);
	(void) set_config_option("lock_timeout", DEADLETTER_LOCK_TIMEOUT, PGC_USERSET,
							 PGC_S_SESSION, action, true, 0, false);
}

/*
 * deadletter_become_owner - run what follows as the table's owner, in a
 * restricted security context
 */
static void
deadletter_become_owner(Oid owner, Oid *saved_user, int *saved_context)
{
	GetUserIdAndSecContext(saved_user, saved_context);
	SetUserIdAndSecContext(owner, *saved_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
}

/* deadletter_write_refused - upsert the rows of the refused events */
static void
deadletter_write_refused(const char *schema)
{
	Oid			types[DEADLETTER_NARGS] = {INT8OID, TEXTOID, INT4OID, BYTEAOID, BYTEAOID,
		JSONBOID, INT4OID, TEXTOID, TEXTOID, INT4OID, TIMESTAMPTZOID, TEXTOID, TEXTOID};
	char	   *sql = psprintf("INSERT INTO %s.kafka_dead_letter_rows AS d "
							   "(id, topic, partition, key, value, headers, error_code, "
							   "error_name, error, attempts, first_failed_at, last_failed_at, "
							   "database, role) "
							   "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, "
							   "$12, $13) "
							   "ON CONFLICT (id) DO UPDATE SET topic = excluded.topic, "
							   "partition = excluded.partition, key = excluded.key, "
							   "value = excluded.value, headers = excluded.headers, "
							   "error_code = excluded.error_code, "
							   "error_name = excluded.error_name, error = excluded.error, "
							   "attempts = excluded.attempts, "
							   "last_failed_at = excluded.last_failed_at, "
							   "retry_queued_at = NULL",
							   schema);
	SPIPlanPtr	plan = SPI_prepare(sql, DEADLETTER_NARGS, types);
	TimestampTz now = GetCurrentTimestamp();

	if (plan == NULL)
		elog(ERROR, "could not prepare the dead-letter insert: %s",
			 SPI_result_code_string(SPI_result));
	for (int i = 0; i < refused.count; i++)
		deadletter_write_one(plan, ((uint64 *) refused.items)[i], now);
}

/* deadletter_by_ids - run sql, its one parameter the ids in list */
static void
deadletter_by_ids(const char *sql, const OffsetList *list, int expected)
{
	Datum	   *ids = palloc(list->count * sizeof(Datum));
	Datum		arg;
	Oid			type = INT8ARRAYOID;

	for (int i = 0; i < list->count; i++)
		ids[i] = Int64GetDatum(((int64 *) list->items)[i]);
	arg = PointerGetDatum(construct_array(ids, list->count, INT8OID,
										  sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	if (SPI_execute_with_args(sql, 1, &type, &arg, NULL, false, 0) != expected)
		elog(ERROR, "could not update kafka_dead_letters: %s", sql);
}

/* deadletter_write_all - the table's changes, as its owner */
static void
deadletter_write_all(const char *schema)
{
	if (refused.count > 0)
		deadletter_write_refused(schema);
	if (delivered_retries.count > 0)
		deadletter_by_ids(psprintf("DELETE FROM %s.kafka_dead_letter_rows WHERE id = ANY ($1)",
								   schema), &delivered_retries, SPI_OK_DELETE);
	if (dropped_retries.count > 0)
		deadletter_by_ids(psprintf("UPDATE %s.kafka_dead_letter_rows SET retry_queued_at = NULL "
								   "WHERE id = ANY ($1)", schema),
						  &dropped_retries, SPI_OK_UPDATE);
}

/*
 * deadletter_transaction - one transaction writing the lists; false if the
 * table is not there
 */
static bool
deadletter_transaction(void)
{
	char	   *schema = NULL;
	Oid			owner = InvalidOid;
	Oid			saved_user;
	int			saved_context;
	bool		found;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	deadletter_safe_settings(GUC_ACTION_LOCAL);
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	found = deadletter_table(&schema, &owner);
	if (found)
	{
		deadletter_become_owner(owner, &saved_user, &saved_context);
		deadletter_write_all(schema);
		SetUserIdAndSecContext(saved_user, saved_context);
	}
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	return found;
}

/* deadletter_warn - the table could not be written: last_error, and a rate-limited log */
static void
deadletter_warn(const char *why)
{
	TimestampTz now = GetCurrentTimestamp();
	char		text[256];

	last_failure = now;
	snprintf(text, sizeof(text),
			 "cannot write %d refused events to kafka_dead_letters in database \"%s\" "
			 "(streamkafka.database): %s", refused.count, sk_database, why);
	metrics_note_error(text);
	if (!log_interval_passed(&last_warning, now, DEADLETTER_WARN_MS))
		return;
	ereport(WARNING,
			(errmsg("streamkafka cannot write %d refused events to kafka_dead_letters "
					"in database \"%s\"; they wait in the queue",
					refused.count, sk_database),
			 errdetail("%s", why),
			 errhint("CREATE EXTENSION streamkafka in database \"%s\", "
					 "or set streamkafka.database.",
					 sk_database)));
}

/* deadletter_finish_refused - the refused events are in the table: finished */
static void
deadletter_finish_refused(void)
{
	for (int i = 0; i < refused.count; i++)
	{
		uint64		off = ((uint64 *) refused.items)[i];

		topicstats_count_dead_lettered(topicstats_event_slot(off));
		event_ring_finish(off, SK_EVENT_DEAD_LETTERED);
	}
	metrics_count_dead_lettered(refused.count);
	refused.count = 0;
	delivered_retries.count = 0;
	dropped_retries.count = 0;
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

	if (refused.count == 0 && delivered_retries.count == 0 && dropped_retries.count == 0)
		return false;
	if (!TimestampDifferenceExceeds(last_failure, GetCurrentTimestamp(), DEADLETTER_RETRY_MS))
		return false;
	if (!connected)
	{
		deadletter_warn("The worker could not connect to that database.");
		return false;
	}
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

/* deadletter_shmem_size - the shared flag's size */
Size
deadletter_shmem_size(void)
{
	return MAXALIGN(sizeof(DeadLetterShared));
}

/* deadletter_shmem_init - attach to (or create) the shared flag */
void
deadletter_shmem_init(void)
{
	bool		found;

	dl_shared = ShmemInitStruct("streamkafka dead letters", sizeof(DeadLetterShared), &found);
	if (!found)
		pg_atomic_init_u32(&dl_shared->no_database, 0);
}

/*
 * deadletter_no_database - did the worker fail to connect to
 * streamkafka.database?  Then it runs without one.
 */
bool
deadletter_no_database(void)
{
	return pg_atomic_read_u32(&dl_shared->no_database) != 0;
}

/*
 * deadletter_connect_failed - the worker could not connect (called as it
 * exits): its next start connects to no database and says why
 */
void
deadletter_connect_failed(void)
{
	char		text[256];

	pg_atomic_write_u32(&dl_shared->no_database, 1);
	snprintf(text, sizeof(text),
			 "the worker could not connect to database \"%s\" named by streamkafka.database",
			 sk_database);
	metrics_note_error(text);
}

/*
 * deadletter_connected - the worker's connection: to streamkafka.database,
 * or (after a failure) to none, which is logged and kept in last_error
 */
void
deadletter_connected(bool to_database)
{
	char		text[256];
	bool		exists;

	connected = to_database;
	if (to_database)
		return;
	StartTransactionCommand();
	exists = OidIsValid(get_database_oid(sk_database, true));
	CommitTransactionCommand();
	snprintf(text, sizeof(text),
			 "streamkafka.database \"%s\" %s: dead letters cannot be written", sk_database,
			 exists ? "exists but the worker could not connect to it" : "does not exist");
	metrics_note_error(text);
	ereport(WARNING,
			(errmsg("streamkafka worker runs without a database: %s", text),
			 errdetail("Events are delivered; refused events wait in the queue for "
					   "their dead letters."),
			 errhint("Create database \"%s\" and the extension in it, or set "
					 "streamkafka.database to a database that has the extension and "
					 "restart the server.", sk_database)));
}

/*
 * deadletter_database_back - without a database: does streamkafka.database
 * exist now (checked every few seconds)?  Then the worker should restart
 * and connect to it.
 */
bool
deadletter_database_back(void)
{
	MemoryContext context = CurrentMemoryContext;
	TimestampTz now = GetCurrentTimestamp();
	bool		exists;

	if (connected || !TimestampDifferenceExceeds(last_database_check, now, DEADLETTER_CHECK_MS))
		return false;
	last_database_check = now;
	StartTransactionCommand();
	exists = OidIsValid(get_database_oid(sk_database, true));
	CommitTransactionCommand();
	MemoryContextSwitchTo(context);
	if (!exists)
		return false;
	pg_atomic_write_u32(&dl_shared->no_database, 0);
	ereport(LOG,
			(errmsg("streamkafka worker restarts to connect to database \"%s\" "
					"(streamkafka.database)", sk_database)));
	return true;
}

/*
 * deadletter_check_home - ERROR unless this is the database the worker
 * writes dead letters in
 */
static void
deadletter_check_home(void)
{
	char	   *here = get_database_name(MyDatabaseId);

	if (here != NULL && strcmp(here, sk_database) == 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("dead letters are kept in database \"%s\", not in \"%s\"", sk_database,
					here ? here : "?"),
			 errdetail("The worker writes the dead letters of every database into "
					   "kafka_dead_letters of the database named by streamkafka.database."),
			 errhint("Connect to database \"%s\" (streamkafka.database) to read and retry them.",
					 sk_database)));
}

/*
 * requeue_fetch - the row of dead letter id, locked, as SPI's result; ERROR
 * if there is none
 */
static void
requeue_fetch(const char *schema, int64 id)
{
	Oid			type = INT8OID;
	Datum		arg = Int64GetDatum(id);

	if (SPI_execute_with_args(psprintf("SELECT topic, key, value, headers, partition, "
									   "attempts, role FROM %s.kafka_dead_letter_rows "
									   "WHERE id = $1 FOR UPDATE", schema),
							  1, &type, &arg, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read kafka_dead_letters");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("dead letter %lld does not exist", (long long) id),
				 errhint("The ids are those of kafka_dead_letters.")));
}

/*
 * deadletter_may_see - may user read and retry a dead letter published by
 * role (a name, or NULL if not known)?  Yes if it has the privileges of that
 * role, or of the database's owner (so do superusers).
 */
static bool
deadletter_may_see(Oid user, const char *role)
{
	Oid			role_id = role ? get_role_oid(role, true) : InvalidOid;

	return has_privs_of_role(user, ROLE_PG_DATABASE_OWNER) ||
		(OidIsValid(role_id) && has_privs_of_role(user, role_id));
}

PG_FUNCTION_INFO_V1(streamkafka_dead_letter_visible);

/*
 * streamkafka_dead_letter_visible - kafka_dead_letter_visible(role): the
 * filter of the kafka_dead_letters view, for the current user
 */
Datum
streamkafka_dead_letter_visible(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(deadletter_may_see(GetUserId(),
									  PG_ARGISNULL(0) ? NULL : NameStr(*PG_GETARG_NAME(0))));
}

/*
 * requeue_check_caller - ERROR unless caller may retry a row published by
 * role (a name, or NULL)
 */
static void
requeue_check_caller(Oid caller, Oid owner, const char *role, int64 id)
{
	if (has_privs_of_role(caller, owner) || deadletter_may_see(caller, role))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to retry dead letter %lld", (long long) id),
			 role ? errdetail("It was published by role \"%s\".", role) :
			 errdetail("The role that published it is not known."),
			 errhint("A role retries the dead letters of the roles whose privileges it has; "
					 "the database's owner and superusers retry any.")));
}

/* requeue_bytes - a bytea column of the fetched row; length -1 if null */
static void
requeue_bytes(HeapTuple row, TupleDesc desc, int column, const char **data, int32 *len)
{
	bool		isnull;
	Datum		value = SPI_getbinval(row, desc, column, &isnull);
	bytea	   *bytes;

	*data = NULL;
	*len = -1;
	if (isnull)
		return;
	bytes = DatumGetByteaPP(value);
	*data = VARDATA_ANY(bytes);
	*len = VARSIZE_ANY_EXHDR(bytes);
}

/*
 * requeue_publish - queue the fetched row's event at once, with its id;
 * false if the overflow policy dropped it
 */
static bool
requeue_publish(int64 id)
{
	HeapTuple	row = SPI_tuptable->vals[0];
	TupleDesc	desc = SPI_tuptable->tupdesc;
	SkEvent		event = {0};
	bool		isnull;
	text	   *topic = DatumGetTextPP(SPI_getbinval(row, desc, 1, &isnull));
	Datum		value;
	StringInfoData headers;

	event.retry_id = id;
	event.topic = VARDATA_ANY(topic);
	event.topic_len = VARSIZE_ANY_EXHDR(topic);
	requeue_bytes(row, desc, 2, &event.key, &event.key_len);
	requeue_bytes(row, desc, 3, &event.value, &event.value_len);
	value = SPI_getbinval(row, desc, 4, &isnull);
	if (!isnull)
	{
		initStringInfo(&headers);
		event_pack_headers(DatumGetJsonbP(value), &headers, &event.nheaders);
		event.headers = headers.data;
		event.headers_len = headers.len;
	}
	value = SPI_getbinval(row, desc, 5, &isnull);
	event.partition = isnull ? -1 : DatumGetInt32(value);
	value = SPI_getbinval(row, desc, 6, &isnull);
	event.attempts = (uint16) Min(Max(isnull ? 0 : DatumGetInt32(value), 0), PG_UINT16_MAX);
	return publish_retry(&event);
}

PG_FUNCTION_INFO_V1(streamkafka_requeue_dead_letter_by_id);

/*
 * streamkafka_requeue_dead_letter_by_id - kafka_requeue_dead_letter(id):
 * queue the event of row id at once, as the row holds it, if the caller has
 * the privileges of the role that published it (or of the table's owner),
 * and mark the row retry_queued_at.  False if the overflow policy dropped it.
 * The table is read and marked as its owner (publishers may only read it).
 */
Datum
streamkafka_requeue_dead_letter_by_id(PG_FUNCTION_ARGS)
{
	int64		id = PG_GETARG_INT64(0);
	Oid			caller = GetUserId();
	int			guc_level;
	char	   *schema;
	Oid			owner;
	Oid			saved_user;
	int			saved_context;
	bool		queued;

	streamkafka_require_preload();
	deadletter_check_home();
	guc_level = NewGUCNestLevel();
	deadletter_safe_settings(GUC_ACTION_SAVE);
	SPI_connect();
	if (!deadletter_table(&schema, &owner))
		elog(ERROR, "kafka_dead_letter_rows not found");
	deadletter_become_owner(owner, &saved_user, &saved_context);
	requeue_fetch(schema, id);
	SetUserIdAndSecContext(saved_user, saved_context);
	requeue_check_caller(caller, owner, SPI_getvalue(SPI_tuptable->vals[0],
													 SPI_tuptable->tupdesc, 7), id);
	queued = requeue_publish(id);
	if (queued)
	{
		OffsetList	ids = {&id, 1, 1, sizeof(int64)};

		deadletter_become_owner(owner, &saved_user, &saved_context);
		deadletter_by_ids(psprintf("UPDATE %s.kafka_dead_letter_rows SET retry_queued_at = "
								   "pg_catalog.now() WHERE id = ANY ($1)", schema),
						  &ids, SPI_OK_UPDATE);
		SetUserIdAndSecContext(saved_user, saved_context);
	}
	SPI_finish();
	AtEOXact_GUC(true, guc_level);
	PG_RETURN_BOOL(queued);
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
