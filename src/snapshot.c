/*
 * snapshot.c
 *		kafka_snapshot_table(): publishes a streamed table's current rows into
 *		its stream (op r, or "read"), so a consumer can build its copy from a
 *		table that already has rows, or build it again.
 *
 * The rows are read in chunks of SNAPSHOT_CHUNK_ROWS in primary-key order
 * (fewer when their events reach an eighth of the queue).
 * Each chunk is read and queued at once (not at commit) while the function
 * holds a SHARE lock on the table, released right after the chunk, so
 * writers wait only for one chunk, never for the whole snapshot.  The lock
 * is what makes the stream correct for a consumer that applies it in order:
 * SHARE waits for every transaction that holds ROW EXCLUSIVE on the table,
 * that is every writer not yet finished, and those queue their change
 * events before their locks go (memory mode: at pre-commit; durable mode:
 * their commit record precedes the lock release); the chunk, read with a
 * new snapshot after the lock is granted, sees all they wrote.  A writer
 * that comes after the chunk gets its lock, and queues its events, after
 * the chunk's rows.  So no chunk row is ever older than a change event that
 * follows it in the stream.
 *
 * Partitioned tables are read one partition at a time (each event names its
 * partition, as the stream's events do).  In memory mode the snapshot waits
 * for room in the queue before each chunk; in durable mode the chunk's
 * events are written into the WAL and flushed once per chunk.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "durable.h"
#include "ring.h"
#include "settings.h"
#include "streamkafka.h"
#include "trigger.h"

#define SNAPSHOT_CHUNK_ROWS 1000

/* a table being read: its stream, key and the statements that read it */
typedef struct SnapshotTable
{
	Relation	rel;
	int			nkeys;
	AttrNumber *key_attnums;	/* the primary key's columns */
	Oid		   *key_types;
	Datum	   *last_key;		/* of the last row read */
	SPIPlanPtr	first;			/* the first chunk */
	SPIPlanPtr	next;			/* a chunk after last_key */
	MemoryContext key_context;	/* holds last_key's values */
} SnapshotTable;

static void
snapshot_refuse(int sqlstate, const char *message, const char *detail, const char *hint)
{
	ereport(ERROR,
			(errcode(sqlstate), errmsg("%s", message),
			 detail ? errdetail("%s", detail) : 0,
			 hint ? errhint("%s", hint) : 0));
}

/* ERROR unless the transaction can read each chunk with a new snapshot */
static void
snapshot_check_transaction(void)
{
	if (IsolationUsesXactSnapshot())
		snapshot_refuse(ERRCODE_ACTIVE_SQL_TRANSACTION,
						"kafka_snapshot_table needs a READ COMMITTED transaction",
						"Each chunk is read with a new snapshot taken after the writers "
						"of the table have finished.",
						"Run it in a transaction at the default isolation level.");
	if (GetTopTransactionIdIfAny() != InvalidTransactionId)
		snapshot_refuse(ERRCODE_ACTIVE_SQL_TRANSACTION,
						"kafka_snapshot_table cannot run in a transaction that has written",
						"It would publish rows this transaction has not committed.",
						"Run it in a transaction of its own.");
}

/* the stream's row trigger on the table, or ERROR */
static Trigger *
snapshot_trigger(Relation rel)
{
	TriggerDesc *triggers = rel->trigdesc;

	for (int i = 0; triggers != NULL && i < triggers->numtriggers; i++)
	{
		if (strcmp(triggers->triggers[i].tgname, SK_STREAM_TRIGGER_NAME) == 0)
			return &triggers->triggers[i];
	}
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("table \"%s\" is not streamed", RelationGetRelationName(rel)),
			 errhint("Call kafka_stream_table() on it first: the snapshot goes into its "
					 "stream.")));
	pg_unreachable();
}

/* the table's primary key index, or InvalidOid */
static Oid
snapshot_primary_key(Relation rel)
{
	list_free(RelationGetIndexList(rel));	/* sets rd_pkindex */
	return rel->rd_pkindex;
}

/* the primary key's columns into table, or ERROR */
static void
snapshot_key(SnapshotTable *table)
{
	Oid			index_oid = snapshot_primary_key(table->rel);
	Relation	index;

	if (!OidIsValid(index_oid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("kafka_snapshot_table needs a primary key on table \"%s\"",
						RelationGetRelationName(table->rel)),
				 errdetail("The rows are read in chunks in primary-key order."),
				 errhint("Add a primary key to the table.")));
	index = index_open(index_oid, AccessShareLock);
	table->nkeys = index->rd_index->indnkeyatts;
	table->key_attnums = palloc(sizeof(AttrNumber) * table->nkeys);
	table->key_types = palloc(sizeof(Oid) * table->nkeys);
	table->last_key = palloc0(sizeof(Datum) * table->nkeys);
	for (int i = 0; i < table->nkeys; i++)
	{
		table->key_attnums[i] = index->rd_index->indkey.values[i];
		table->key_types[i] = TupleDescAttr(RelationGetDescr(table->rel),
											table->key_attnums[i] - 1)->atttypid;
	}
	index_close(index, AccessShareLock);
}

/* the key's column names as "(a, b)", or with $n parameters as "($1, $2)" */
static char *
snapshot_key_list(SnapshotTable *table, bool parameters)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '(');
	for (int i = 0; i < table->nkeys; i++)
	{
		if (i > 0)
			appendStringInfoString(&buf, ", ");
		if (parameters)
			appendStringInfo(&buf, "$%d", i + 1);
		else
			appendStringInfoString(&buf,
								   quote_identifier(get_attname(RelationGetRelid(table->rel),
																table->key_attnums[i],
																false)));
	}
	appendStringInfoChar(&buf, ')');
	return buf.data;
}

/*
 * snapshot_prepare - the two statements reading a chunk (one row more than
 * a chunk, to know whether another follows): whole rows, so a row keeps
 * the table's own layout
 */
static void
snapshot_prepare(SnapshotTable *table, const char *condition)
{
	char	   *schema = get_namespace_name(RelationGetNamespace(table->rel));
	char	   *name = quote_qualified_identifier(schema, RelationGetRelationName(table->rel));
	char	   *keys = snapshot_key_list(table, false);
	const char *where = condition != NULL ? condition : "true";

	table->first = SPI_prepare(psprintf("SELECT t FROM ONLY %s t WHERE (%s\n) ORDER BY %s LIMIT %d",
										name, where, keys, SNAPSHOT_CHUNK_ROWS + 1),
							   0, NULL);
	table->next = SPI_prepare(psprintf("SELECT t FROM ONLY %s t WHERE (%s\n) AND %s > %s "
									   "ORDER BY %s LIMIT %d",
									   name, where, keys, snapshot_key_list(table, true), keys,
									   SNAPSHOT_CHUNK_ROWS + 1),
							  table->nkeys, table->key_types);
	if (table->first == NULL || table->next == NULL)
		elog(ERROR, "could not prepare the snapshot's query: %s",
			 SPI_result_code_string(SPI_result));
}

/* ring_wait's test: is a quarter of the queue free?  (a chunk takes an eighth) */
static bool
snapshot_room(void *arg pg_attribute_unused())
{
	uint64		tail;
	uint64		head;

	ring_bounds(&tail, &head);
	return ring_capacity() - (head - tail) >= ring_capacity() / 4;
}

/* memory mode: wait (cancellably) until the queue has room for a chunk */
static void
snapshot_wait_for_room(void)
{
	if (sk_durability == SK_DURABILITY_WAL)
		return;
	(void) ring_wait(snapshot_room, NULL, DT_NOEND, 1000);
}

/* the row of a whole-row result as a tuple of the table */
static HeapTuple
snapshot_row(SnapshotTable *table, uint64 i, HeapTupleData *row)
{
	bool		isnull;
	Datum		value = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
	HeapTupleHeader header = DatumGetHeapTupleHeader(value);

	row->t_len = HeapTupleHeaderGetDatumLength(header);
	ItemPointerSetInvalid(&row->t_self);
	row->t_tableOid = RelationGetRelid(table->rel);
	row->t_data = header;
	return row;
}

/* remember the row's key, where the next chunk starts */
static void
snapshot_remember_key(SnapshotTable *table, HeapTuple row)
{
	TupleDesc	desc = RelationGetDescr(table->rel);
	MemoryContext old;

	MemoryContextReset(table->key_context);
	old = MemoryContextSwitchTo(table->key_context);
	for (int i = 0; i < table->nkeys; i++)
	{
		bool		isnull;
		Form_pg_attribute attr = TupleDescAttr(desc, table->key_attnums[i] - 1);
		Datum		value = heap_getattr(row, table->key_attnums[i], desc, &isnull);

		table->last_key[i] = datumCopy(value, attr->attbyval, attr->attlen);
	}
	MemoryContextSwitchTo(old);
}

/*
 * snapshot_chunk - read and queue one chunk under the SHARE lock; returns
 * how many rows it published, *more whether rows follow
 */
static uint64
snapshot_chunk(SnapshotTable *table, bool first, bool *more)
{
	Oid			relid = RelationGetRelid(table->rel);
	bool		held = CheckRelationLockedByMe(table->rel, ShareLock, true);
	uint64		published = 0;
	uint64		rows;
	int			result;
	Trigger    *trigger;

	LockRelationOid(relid, ShareLock);
	/* after the lock: taking it may have rebuilt the relation's triggers */
	trigger = snapshot_trigger(table->rel);
	/* not read-only: each chunk is read with a new snapshot */
	result = first ? SPI_execute_plan(table->first, NULL, NULL, false, 0) :
		SPI_execute_plan(table->next, table->last_key, NULL, false, 0);
	if (result != SPI_OK_SELECT)
		elog(ERROR, "the snapshot's query failed: %s", SPI_result_code_string(result));
	rows = Min(SPI_processed, SNAPSHOT_CHUNK_ROWS);
	*more = SPI_processed > SNAPSHOT_CHUNK_ROWS;
	for (uint64 i = 0, bytes = 0; i < rows; i++)
	{
		HeapTupleData row;
		uint64		queued;

		snapshot_row(table, i, &row);
		queued = trigger_snapshot_row(trigger, table->rel, &row,
									  !*more && i == rows - 1);
		published += queued > 0;
		bytes += queued;
		if (i == rows - 1 || bytes >= ring_capacity() / 8)
		{
			/* the next chunk starts after this row */
			snapshot_remember_key(table, &row);
			*more = *more || i < rows - 1;
			break;
		}
	}
	SPI_freetuptable(SPI_tuptable);
	if (!held)
		UnlockRelationOid(relid, ShareLock);
	/* durable mode: the chunk's events flushed, the worker woken */
	durable_flush_deferred();
	return published;
}

/* snapshot_table - publish one table's (or partition's) rows */
static uint64
snapshot_table(Oid relid, const char *condition)
{
	SnapshotTable table = {0};
	uint64		published = 0;
	bool		more = true;

	table.rel = table_open(relid, AccessShareLock);
	/* before any lock that would make writers wait */
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, RelationGetRelationName(table.rel));
	(void) snapshot_trigger(table.rel);	/* ERROR now if the table is not streamed */
	snapshot_key(&table);
	snapshot_prepare(&table, condition);
	table.key_context = AllocSetContextCreate(CurrentMemoryContext, "streamkafka snapshot key",
											  ALLOCSET_SMALL_SIZES);
	for (bool first = true; more; first = false)
	{
		CHECK_FOR_INTERRUPTS();
		snapshot_wait_for_room();
		published += snapshot_chunk(&table, first, &more);
	}
	MemoryContextDelete(table.key_context);
	table_close(table.rel, AccessShareLock);
	return published;
}

/* the tables to read: the table itself, or a partitioned table's partitions */
static List *
snapshot_leaves(Oid relid)
{
	List	   *leaves = NIL;
	ListCell   *cell;

	if (get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE)
		return list_make1_oid(relid);
	foreach(cell, find_all_inheritors(relid, AccessShareLock, NULL))
	{
		if (get_rel_relkind(lfirst_oid(cell)) == RELKIND_RELATION)
			leaves = lappend_oid(leaves, lfirst_oid(cell));
	}
	return leaves;
}

/* snapshot_all - publish the rows of the table or of its partitions */
static uint64
snapshot_all(Oid relid, const char *condition)
{
	uint64		published = 0;
	ListCell   *cell;

	foreach(cell, snapshot_leaves(relid))
		published += snapshot_table(lfirst_oid(cell), condition);
	return published;
}

PG_FUNCTION_INFO_V1(streamkafka_snapshot_table);

/*
 * streamkafka_snapshot_table - kafka_snapshot_table(tbl, row_filter): the
 * number of rows published
 */
Datum
streamkafka_snapshot_table(PG_FUNCTION_ARGS)
{
	char	   *condition = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	volatile uint64 published = 0;

	if (PG_ARGISNULL(0))
		snapshot_refuse(ERRCODE_NULL_VALUE_NOT_ALLOWED, "table must not be null", NULL,
						"Name the table: kafka_snapshot_table('schema.table').");
	streamkafka_require_preload();
	snapshot_check_transaction();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	durable_defer_flush(true);
	PG_TRY();
	{
		published = snapshot_all(PG_GETARG_OID(0), condition);
	}
	PG_FINALLY();
	{
		durable_defer_flush(false);
	}
	PG_END_TRY();
	SPI_finish();
	PG_RETURN_INT64((int64) published);
}
