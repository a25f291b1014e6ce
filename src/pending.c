/*
 * pending.c
 *		Holds a transaction's transactional events in backend memory and hands
 *		them to the queue as one block when it commits.
 *
 * Events are packed, in queue format, into a chain of chunks as they are
 * published.  At XACT_EVENT_PRE_COMMIT the whole transaction is reserved in
 * the queue at once and copied (this may still fail: the queue is full, and
 * the transaction then aborts with nothing published).  XACT_EVENT_COMMIT only
 * marks the block READY; XACT_EVENT_ABORT marks a reserved block ABANDONED.
 * Neither can fail.
 *
 * Subtransactions: a rolled-back savepoint, or a PL/pgSQL exception block that
 * caught an error, discards the events published inside it.  Marks
 * (savepoints.c) are pushed lazily, only when an event is added at a deeper
 * nesting level than the newest mark, so transactions that publish nothing
 * pay nothing.
 *
 * PREPARE TRANSACTION with pending events is refused: a prepared transaction
 * may commit in another session, after this backend's memory is gone.  In
 * durable mode the events are in the WAL already: the chain is only a copy
 * for kafka_pending_events(), and PREPARE is allowed.
 */
#include "postgres.h"

#include <sys/mman.h>

#include "access/xact.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "compat.h"
#include "enqueue.h"
#include "hugepage.h"
#include "metrics.h"
#include "pending.h"
#include "ring.h"
#include "savepoints.h"
#include "staging.h"
#include "streamkafka.h"
#include "txmeta.h"

#define PENDING_FIRST_CHUNK		(64 * 1024)
#define PENDING_MAX_CHUNK		(32 * 1024 * 1024)
#define PENDING_KEEP_BYTES		(16 * 1024 * 1024)

/*
 * The first chunk is backend memory, kept across transactions.  Past it, a
 * transaction borrows 2MB chunks from the shared staging pool (staging.c),
 * whose pages were zeroed at server start: the kernel's zeroing of fresh
 * pages, not the copies, dominated a 1M-row INSERT into a streamed table.
 * When the pool has none free, chunks of 2MB or more are mapped directly,
 * aligned, and offered to the kernel for transparent huge pages (one page
 * fault per 2MB instead of one per 4kB).
 */
typedef struct PendingChunk
{
	struct PendingChunk *next;
	uint64		used;
	uint64		capacity;
	uint64		mapped;			/* bytes mmap()ed, 0 if palloc()ed or staged */
	char		data[FLEXIBLE_ARRAY_MEMBER];
} PendingChunk;

/* where the buffer stood when a subtransaction published its first event */
typedef struct PendingMark
{
	PendingChunk *chunk;
	uint64		chunk_used;
	uint32		events;
	uint64		bytes;
} PendingMark;

static MemoryContext pending_context = NULL;
static PendingChunk *first_chunk = NULL;
static PendingChunk *current_chunk = NULL;
static uint32 pending_events = 0;
static uint64 pending_bytes = 0;	/* packed events, block header excluded */

static SavepointMarks marks;	/* of PendingMark; context NULL until the
								 * first */

static bool block_reserved = false;
static uint64 block_off = 0;

/*
 * Durable mode: the transaction's events are in the WAL; the chain holds a
 * copy only for kafka_pending_events(), never queued from here, and at most
 * PENDING_LIST_MAX_BYTES of it (a transaction larger than the queue is
 * delivered in durable mode, and must not have to fit in memory).
 */
#define PENDING_LIST_MAX_BYTES	(64 * 1024 * 1024)
static bool listing_only = false;
static bool listing_truncated = false;	/* some events were not copied */

/*
 * The streamed tables whose changes are among the pending events: reading
 * them back (kafka_pending_events) needs SELECT on each.  Kept for the whole
 * transaction, rolled-back savepoints included (stricter, never weaker).
 */
#define PENDING_MAX_TABLES 64
static Oid	pending_tables[PENDING_MAX_TABLES];
static int	npending_tables = 0;
static bool pending_tables_overflowed = false;	/* more than fit: not shown */
/* chunks were added to the chain since the last pending_reset */
static bool chain_grown = false;

static void pending_xact_callback(XactEvent event, void *arg);
static void pending_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
									 SubTransactionId parentSubid, void *arg);

/*
 * pending_init - register the transaction callbacks (once per backend)
 */
void
pending_init(void)
{
	RegisterXactCallback(pending_xact_callback, NULL);
	RegisterSubXactCallback(pending_subxact_callback, NULL);
}

/* the memory context that outlives transactions, created on first use */
static MemoryContext
pending_memory(void)
{
	if (pending_context == NULL)
		pending_context = AllocSetContextCreate(TopMemoryContext,
												"streamkafka pending events",
												ALLOCSET_DEFAULT_SIZES);
	return pending_context;
}

/* map bytes (a multiple of 2MB) aligned to 2MB, asking for huge pages */
static void *
chunk_map(uint64 bytes)
{
	char	   *raw = mmap(NULL, bytes + SK_HUGE_PAGE, PROT_READ | PROT_WRITE,
						   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char	   *aligned;

	if (raw == MAP_FAILED)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Failed to map %llu bytes for a transaction's Kafka events.",
						   (unsigned long long) bytes)));
	aligned = (char *) TYPEALIGN(SK_HUGE_PAGE, raw);
	if (aligned > raw)
		munmap(raw, aligned - raw);
	if (aligned + bytes < raw + bytes + SK_HUGE_PAGE)
		munmap(aligned + bytes, raw + SK_HUGE_PAGE - aligned);
#ifdef MADV_HUGEPAGE
	(void) madvise(aligned, bytes, MADV_HUGEPAGE);
#endif
	return aligned;
}

/* a chunk borrowed from the staging pool, or NULL */
static PendingChunk *
chunk_borrow(uint64 capacity)
{
	PendingChunk *chunk;

	if (offsetof(PendingChunk, data) + capacity > SK_STAGING_CHUNK ||
		(chunk = staging_take()) == NULL)
		return NULL;
	chunk->mapped = 0;
	chunk->next = NULL;
	chunk->used = 0;
	chunk->capacity = SK_STAGING_CHUNK - offsetof(PendingChunk, data);
	return chunk;
}

static PendingChunk *
chunk_new(uint64 capacity)
{
	PendingChunk *chunk;
	uint64		bytes = offsetof(PendingChunk, data) + capacity;

	if (bytes >= SK_HUGE_PAGE)
	{
		bytes = TYPEALIGN64(SK_HUGE_PAGE, bytes);
		chunk = chunk_map(bytes);
		chunk->mapped = bytes;
	}
	else
	{
		chunk = MemoryContextAllocHuge(pending_memory(), bytes);
		chunk->mapped = 0;
	}
	chunk->next = NULL;
	chunk->used = 0;
	chunk->capacity = bytes - offsetof(PendingChunk, data);
	return chunk;
}

static void
chunk_free(PendingChunk *chunk)
{
	if (staging_owns(chunk))
		staging_give_back(chunk);
	else if (chunk->mapped)
		munmap(chunk, chunk->mapped);
	else
		pfree(chunk);
}

/* room for size bytes at the end of the chain */
static char *
chunk_space(uint64 size)
{
	PendingChunk *next;

	if (current_chunk == NULL)
	{
		if (first_chunk == NULL)
			first_chunk = chunk_new(Max(size, PENDING_FIRST_CHUNK));
		current_chunk = first_chunk;
		current_chunk->used = 0;
	}
	if (current_chunk->capacity - current_chunk->used < size)
	{
		next = current_chunk->next;
		if (next == NULL || next->capacity < size)
		{
			uint64		grow = Min(current_chunk->capacity * 2, PENDING_MAX_CHUNK);

			next = chunk_borrow(size);
			if (next == NULL)
				next = chunk_new(Max(size, grow));
			next->next = current_chunk->next;
			current_chunk->next = next;
			chain_grown = true;
		}
		current_chunk = next;
		current_chunk->used = 0;
	}
	return current_chunk->data + current_chunk->used;
}

/* remember where the buffer stands before a subtransaction's first event */
static void
mark_if_needed(void)
{
	PendingMark *mark;

	if (marks.context == NULL)
		savepoints_init(&marks, pending_memory(), sizeof(PendingMark));
	mark = savepoints_mark(&marks, GetCurrentTransactionNestLevel());
	if (mark == NULL)
		return;
	mark->chunk = current_chunk;
	mark->chunk_used = current_chunk ? current_chunk->used : 0;
	mark->events = pending_events;
	mark->bytes = pending_bytes;
}

/* pending_append - pack an event at the end of the chain */
static void
pending_append(const SkEvent *event, uint64 size, int64 event_id)
{
	char	   *dst;

	mark_if_needed();
	dst = chunk_space(size);
	event_pack(dst, event, event_id, SK_BLOCK_HEADER_SIZE + pending_bytes);
	current_chunk->used += size;
	pending_bytes += size;
	pending_events++;
}

/*
 * pending_add - add a transactional event to the current transaction
 */
void
pending_add(const SkEvent *event, uint64 size, int64 event_id)
{
	uint64		block_length = SK_BLOCK_HEADER_SIZE + pending_bytes + size;

	if (block_reserved)
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("cannot publish a transactional Kafka event "
						"while the transaction is committing")));
	Assert(!listing_only);
	enqueue_check_fits(block_length, size);
	pending_append(event, size, event_id);
}

/*
 * pending_list - durable mode: copy a transactional event already written
 * into the WAL, for kafka_pending_events() only
 */
void
pending_list(const SkEvent *event, uint64 size, int64 event_id)
{
	listing_only = true;
	if (listing_truncated || pending_bytes + size > PENDING_LIST_MAX_BYTES)
	{
		listing_truncated = true;
		return;
	}
	pending_append(event, size, event_id);
}

/*
 * pending_note_table - the next events carry row images of table relid
 */
void
pending_note_table(Oid relid)
{
	for (int i = npending_tables - 1; i >= 0; i--)
		if (pending_tables[i] == relid)
			return;
	if (npending_tables == PENDING_MAX_TABLES)
	{
		pending_tables_overflowed = true;
		return;
	}
	pending_tables[npending_tables++] = relid;
}

/*
 * forget all pending events, keeping some chunks of backend memory for the
 * next transaction; borrowed chunks go back to the pool
 */
static void
pending_reset(void)
{
	uint64		kept = 0;
	PendingChunk *chunk = first_chunk;
	PendingChunk **link = &first_chunk;

	while (chunk != NULL)
	{
		PendingChunk *next = chunk->next;

		if (!staging_owns(chunk) && kept + chunk->capacity <= PENDING_KEEP_BYTES)
		{
			kept += chunk->capacity;
			chunk->used = 0;
			*link = chunk;
			link = &chunk->next;
		}
		else
			chunk_free(chunk);
		chunk = next;
	}
	*link = NULL;
	current_chunk = NULL;
	pending_events = 0;
	pending_bytes = 0;
	savepoints_clear(&marks);
	block_reserved = false;
	npending_tables = 0;
	pending_tables_overflowed = false;
	chain_grown = false;
	listing_only = false;
	listing_truncated = false;
}

/* PRE_COMMIT: reserve the block and copy every event into it */
static void
pending_reserve(void)
{
	uint64		off;
	uint64		pos;

	if (!enqueue_reserve(SK_BLOCK_HEADER_SIZE + pending_bytes, pending_events, true, &off))
	{
		/* dropped by the overflow policy (counted): the commit goes on */
		pending_reset();
		return;
	}
	block_off = off;
	block_reserved = true;
	/* who commits it: the worker may pass it while it waits for a standby */
	*ring_field(off, uint64, owner) = ring_owner_word(SK_MyProcNumber(),
													  GetTopTransactionIdIfAny());

	pos = off + SK_BLOCK_HEADER_SIZE;
	for (PendingChunk *chunk = first_chunk; chunk != NULL; chunk = chunk->next)
	{
		ring_write(pos, chunk->data, chunk->used);
		pos += chunk->used;
		if (chunk == current_chunk)
			break;
	}
	Assert(pos == off + SK_BLOCK_HEADER_SIZE + pending_bytes);
}

/*
 * pending_xact_callback - queue, abandon or forget the transaction's events.
 * A transaction that published nothing returns at once; one whose events
 * were all rolled back by a savepoint still gives its chunks back (borrowed
 * ones belong to every session).
 */
static void
pending_xact_callback(XactEvent event, void *arg pg_attribute_unused())
{
	/* a table stream's END event is the last of the transaction's events */
	if (event == XACT_EVENT_PRE_COMMIT || event == XACT_EVENT_PRE_PREPARE)
		txmeta_pre_commit();
	if (pending_events == 0 && marks.count == 0 && !block_reserved && !chain_grown &&
		npending_tables == 0 && !listing_only)
		return;

	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (pending_events > 0 && !listing_only)
				pending_reserve();
			break;
		case XACT_EVENT_COMMIT:
			if (block_reserved)
			{
				metrics_count_queued(pending_events);
				ring_block_ready(block_off);
			}
			pending_reset();
			break;
		case XACT_EVENT_ABORT:
			if (block_reserved)
				ring_block_abandon(block_off);
			pending_reset();
			break;
		case XACT_EVENT_PRE_PREPARE:
			/* durable mode: the events are in the WAL, sent at COMMIT PREPARED */
			if (pending_events == 0 || listing_only)
				break;
			if (npending_tables > 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that changed a streamed table"),
						 errdetail("The change events of streamed tables are sent when the "
								   "transaction commits, and a prepared transaction may "
								   "commit in another session."),
						 errhint("Commit this transaction without PREPARE TRANSACTION, "
								 "or stop streaming the table first with "
								 "kafka_unstream_table().")));
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot PREPARE a transaction that published "
							"transactional Kafka events"),
					 errhint("Publish with transactional => false, or do not use "
							 "two-phase commit for this transaction.")));
			break;
		case XACT_EVENT_PREPARE:
			pending_reset();
			break;
		default:
			break;
	}
}

/* discard the events of a rolled-back subtransaction at nesting level */
static void
pending_rollback_to(int level)
{
	PendingMark *mark = savepoints_rollback(&marks, level);

	if (mark == NULL)
		return;
	current_chunk = mark->chunk;
	if (current_chunk)
		current_chunk->used = mark->chunk_used;
	pending_events = mark->events;
	pending_bytes = mark->bytes;
}

static void
pending_subxact_callback(SubXactEvent event,
						 SubTransactionId mySubid pg_attribute_unused(),
						 SubTransactionId parentSubid pg_attribute_unused(),
						 void *arg pg_attribute_unused())
{
	if (marks.count == 0)
		return;

	if (event == SUBXACT_EVENT_ABORT_SUB)
		pending_rollback_to(GetCurrentTransactionNestLevel());
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
		savepoints_commit(&marks, GetCurrentTransactionNestLevel());
}

/* the packed headers of an event as a jsonb array of [name, value] pairs */
static Datum
headers_jsonb(const SkEventView *view)
{
	StringInfoData buf;
	SkHeaderIterator it;
	SkHeaderField field;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '[');
	event_headers_begin(&it, view->headers, view->header->nheaders);
	while (event_headers_next(&it, &field))
	{
		appendStringInfoString(&buf, buf.len > 1 ? ", [" : "[");
		escape_json(&buf, field.name);
		if (field.value == NULL)
			appendStringInfoString(&buf, ", null]");
		else
		{
			appendStringInfoString(&buf, ", ");
			escape_json(&buf, pnstrdup(field.value, field.value_len));
			appendStringInfoChar(&buf, ']');
		}
	}
	appendStringInfoChar(&buf, ']');
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data));
}

static void
pending_event_row(Tuplestorestate *store, TupleDesc desc, const char *packed)
{
	SkEventView view;
	Datum		values[6];
	bool		nulls[6] = {0};

	event_view(packed, &view);
	values[0] = Int64GetDatum(view.header->event_id);
	values[1] = PointerGetDatum(cstring_to_text(view.topic));
	values[2] = Int32GetDatum(view.header->partition);
	nulls[2] = view.header->partition < 0;
	values[3] = PointerGetDatum(cstring_to_text_with_len(view.key, Max(view.header->key_len, 0)));
	nulls[3] = view.header->key_len < 0;
	/* text and bytea share a representation: this is the value's bytes */
	values[4] = PointerGetDatum(cstring_to_text_with_len(view.value,
														 Max(view.header->value_len, 0)));
	nulls[4] = view.header->value_len < 0;
	values[5] = headers_jsonb(&view);
	tuplestore_putvalues(store, desc, values, nulls);
}

/*
 * pending_check_tables_readable - ERROR unless the current role may SELECT
 * every streamed table whose row images are pending: kafka_pending_events()
 * must not show rows (a DELETE's before image, say) that the role cannot read
 */
static void
pending_check_tables_readable(void)
{
	Oid			role = GetUserId();

	if (pending_tables_overflowed)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("cannot show the pending events of more than %d streamed tables",
						PENDING_MAX_TABLES),
				 errhint("Inspect the changes of fewer tables in one transaction.")));
	for (int i = 0; i < npending_tables; i++)
	{
		bool		missing = false;

		if (pg_class_aclcheck_ext(pending_tables[i], role, ACL_SELECT, &missing) == ACLCHECK_OK ||
			missing ||
			pg_attribute_aclcheck_all(pending_tables[i], role, ACL_SELECT,
									  ACLMASK_ALL) == ACLCHECK_OK)
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", get_rel_name(pending_tables[i])),
				 errdetail("kafka_pending_events() shows the rows this transaction changed in "
						   "streamed tables, and reading them needs SELECT on each table.")));
	}
}

PG_FUNCTION_INFO_V1(streamkafka_pending_events);

/*
 * streamkafka_pending_events - kafka_pending_events(): the transactional
 * events the current transaction will publish if it commits, in order
 */
Datum
streamkafka_pending_events(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TupleDesc	desc;
	Tuplestorestate *store;

	streamkafka_require_preload();
	pending_check_tables_readable();
	if (listing_truncated)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many pending Kafka events to list"),
				 errdetail("In durable mode the events are in the WAL; a copy of at most "
						   "%d MB of them is kept for kafka_pending_events(), and this "
						   "transaction's are larger.", PENDING_LIST_MAX_BYTES / (1024 * 1024)),
				 errhint("They are all sent if the transaction commits.")));
	SK_InitMaterializedSRF(fcinfo);
	store = rsinfo->setResult;
	desc = rsinfo->setDesc;

	for (PendingChunk *chunk = first_chunk; chunk != NULL && current_chunk != NULL;
		 chunk = chunk->next)
	{
		for (uint64 pos = 0; pos < chunk->used;)
		{
			const char *packed = chunk->data + pos;

			pending_event_row(store, desc, packed);
			pos += event_length(packed);
		}
		if (chunk == current_chunk)
			break;
	}
	return (Datum) 0;
}
