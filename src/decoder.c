/*
 * decoder.c
 *		Durable mode, the worker's side: reads the events durable.c wrote
 *		into the WAL back through the logical replication slot "streamkafka"
 *		(this library is also its output plugin) and queues them for Kafka,
 *		in commit order.  The slot keeps the WAL until Kafka has the events.
 *
 * One decoding context stays open while the worker runs.  Each turn reads
 * the WAL flushed so far (a bounded number of records).  Each event goes
 * into the queue as its own READY block (owner SK_BLOCK_OWNER_WAL, so a
 * clean stop does not spill it: it is still in the WAL).  Its id is the
 * message's LSN, the same on every reading.
 *
 * Confirming: the slot is advanced only to a position at or below which
 * every event is finished (delivered, dropped by policy or written to the
 * dead-letter table): a queue of (queue offset after a transaction's events,
 * its commit position) pairs, taken from as the queue's tail passes.  The
 * slot is saved to disk at most every DECODER_SAVE_MS, which bounds what a
 * crash makes the worker send twice.
 *
 * A full queue: the worker serves the queue (sends, polls) for up to
 * DECODER_FULL_WAIT_MS; if it is still full (Kafka is away), reading stops
 * with an ERROR that ends the decoding context, and starts again from the
 * slot once half of the queue is free, skipping what is already queued
 * (sk_ring->wal_*).  A transaction larger than the queue thus streams
 * through it while Kafka takes events.
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlogutils.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "replication/decode.h"
#include "replication/logical.h"
#include "replication/output_plugin.h"
#include "replication/slot.h"
#include "replication/syncrep.h"
#include "replication/walsender_private.h"
#include "storage/procarray.h"
#include "utils/memutils.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/varlena.h"

#include "compat.h"
#include "decoder.h"
#include "durable.h"
#include "event.h"
#include "metrics.h"
#include "ring.h"
#include "settings.h"

#define DECODER_RECORDS			20000	/* WAL records read per turn */
#define DECODER_FULL_WAIT_MS	1000
#define DECODER_SAVE_MS			1000
#define DECODER_CHECK_MS		5000	/* how often the set-up is checked */
#define ERRCODE_DECODER_PAUSE	MAKE_SQLSTATE('S','K','D','0','1')

/* a transaction whose events are queued, waiting for them to finish */
typedef struct QueuedCommit
{
	uint64		ring_end;		/* the queue's head after its events */
	XLogRecPtr	position;		/* its commit end LSN */
	TimestampTz commit_time;
} QueuedCommit;

PGDLLEXPORT void _PG_output_plugin_init(OutputPluginCallbacks *cb);

static SkDecoderShared *shared = NULL;

static LogicalDecodingContext *decoding = NULL;
static MemoryContext decoding_context = NULL;
static bool in_worker = false;	/* the callbacks act only in the worker */
static DecoderServeQueue serve_queue = NULL;
static bool paused = false;		/* stopped on a full queue */
static TimestampTz last_check = 0;
static TimestampTz last_save = 0;
static bool unsaved = false;	/* confirmed further than the slot on disk */
static bool wanted = false;		/* durability = wal and the extension exists */
static XLogRecPtr drain_end = InvalidXLogRecPtr;	/* closing: the WAL's end */

/* the transaction being read */
static XLogRecPtr txn_position;
static TimestampTz txn_commit_time;
static uint32 txn_index;		/* its events read so far */
static uint32 txn_queued;		/* of those, queued by this reading */

/* QueuedCommit ring buffer */
static QueuedCommit *commits = NULL;
static int	commits_first = 0;
static int	commits_count = 0;
static int	commits_max = 0;

Size
decoder_shmem_size(void)
{
	return sizeof(SkDecoderShared);
}

void
decoder_shmem_init(void)
{
	bool		found;

	shared = ShmemInitStruct("streamkafka decoder", sizeof(SkDecoderShared), &found);
	if (!found)
	{
		memset(shared, 0, sizeof(SkDecoderShared));
		SpinLockInit(&shared->mutex);
	}
}

/* decoder_read_shared - a copy of what the worker says about durable mode */
void
decoder_read_shared(SkDecoderShared *copy)
{
	SpinLockAcquire(&shared->mutex);
	memcpy(copy, shared, sizeof(SkDecoderShared));
	SpinLockRelease(&shared->mutex);
}

/* decoder_set_problem - what keeps durable mode from working ("" if nothing) */
static void
decoder_set_problem(const char *problem)
{
	SpinLockAcquire(&shared->mutex);
	strlcpy(shared->problem, problem, sizeof(shared->problem));
	SpinLockRelease(&shared->mutex);
}

/* commits_push - remember a transaction's queued events */
static void
commits_push(XLogRecPtr position, TimestampTz commit_time)
{
	uint64		tail;
	uint64		head;
	QueuedCommit *slot;

	if (commits_count == commits_max)
	{
		int			grown = Max(64, commits_max * 2);
		QueuedCommit *bigger = MemoryContextAlloc(TopMemoryContext,
												  grown * sizeof(QueuedCommit));

		for (int i = 0; i < commits_count; i++)
			bigger[i] = commits[(commits_first + i) % commits_max];
		if (commits != NULL)
			pfree(commits);
		commits = bigger;
		commits_first = 0;
		commits_max = grown;
	}
	ring_worker_bounds(&tail, &head);
	slot = &commits[(commits_first + commits_count) % commits_max];
	slot->ring_end = head;
	slot->position = position;
	slot->commit_time = commit_time;
	commits_count++;
}

/* decoder_queue_event - put one event in the queue; false if it is full */
static bool
decoder_queue_event(const char *message, Size size, XLogRecPtr message_lsn)
{
	SkWalEventHead head;
	const char *packed = message + sizeof(SkWalEventHead);
	uint64		length = size - sizeof(SkWalEventHead);
	uint64		off;
	char	   *copy;

	memcpy(&head, message, sizeof(head));
	if (ring_reserve(SK_BLOCK_HEADER_SIZE + length, 1, MyDatabaseId, head.role, PG_UINT64_MAX,
					 &off) != SK_RESERVED)
		return false;
	copy = palloc(length);
	memcpy(copy, packed, length);
	event_adopt_decoded(copy, (int64) message_lsn, SK_BLOCK_HEADER_SIZE);
	ring_write(off + SK_BLOCK_HEADER_SIZE, copy, length);
	pfree(copy);
	*ring_field(off, uint64, owner) = SK_BLOCK_OWNER_WAL;
	metrics_count_queued(1);
	ring_block_ready(off);
	return true;
}

/*
 * decoder_wait_for_room - the queue is full: serve it (send, poll) until
 * the event fits; if it does not within DECODER_FULL_WAIT_MS, stop reading
 * (an ERROR that decoder_read catches)
 */
static void
decoder_wait_for_room(const char *message, Size size, XLogRecPtr message_lsn)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   DECODER_FULL_WAIT_MS);

	while (GetCurrentTimestamp() < deadline)
	{
		serve_queue();
		if (decoder_queue_event(message, size, message_lsn))
			return;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	ereport(ERROR,
			(errcode(ERRCODE_DECODER_PAUSE),
			 errmsg("streamkafka decoder paused: the queue is full")));
}

/* decoder_valid_message - is the message an event this server wrote? */
static bool
decoder_valid_message(const char *prefix, Size size, const char *message)
{
	SkWalEventHead head;

	if (!durable_prefix_matches(prefix))
	{
		if (durable_prefix_is_ours(prefix))
			ereport(WARNING,
					(errmsg("streamkafka worker ignored a WAL message with another token"),
					 errdetail("Its prefix is \"%s\"; it was forged, or written by a server "
							   "with another streamkafka_wal.token.", prefix)));
		return false;
	}
	if (size >= sizeof(head))
		memcpy(&head, message, sizeof(head));
	if (size < sizeof(head) || head.format != SK_WAL_FORMAT ||
		event_check_packed(message + sizeof(head), size - sizeof(head)) !=
		size - sizeof(head))
	{
		ereport(WARNING,
				(errmsg("streamkafka worker skipped a malformed event in the WAL")));
		return false;
	}
	return true;
}

/* decoder_message - the output plugin's message callback: queue an event */
static void
decoder_message(LogicalDecodingContext *ctx pg_attribute_unused(),
				ReorderBufferTXN *txn pg_attribute_unused(), XLogRecPtr message_lsn,
				bool transactional, const char *prefix, Size size, const char *message)
{
	XLogRecPtr	position = transactional ? txn_position : message_lsn;
	uint32		index = transactional ? txn_index++ : 0;

	if (!in_worker || !decoder_valid_message(prefix, size, message))
		return;
	if (position <= sk_ring->wal_queued_upto ||
		(position == sk_ring->wal_partial_at && index < sk_ring->wal_partial_count))
		return;
	if (!decoder_queue_event(message, size, message_lsn))
		decoder_wait_for_room(message, size, message_lsn);
	if (transactional)
	{
		sk_ring->wal_partial_at = position;
		sk_ring->wal_partial_count = index + 1;
		txn_queued++;
	}
	else
	{
		sk_ring->wal_queued_upto = position;
		commits_push(position, GetCurrentTimestamp());
	}
}

/* decoder_begin - a committed transaction is about to be read */
static void
decoder_begin(LogicalDecodingContext *ctx pg_attribute_unused(), ReorderBufferTXN *txn)
{
	txn_position = txn->end_lsn;
	txn_commit_time = txn->xact_time.commit_time;
	txn_index = 0;
	txn_queued = 0;
}

/* decoder_commit - its events are all queued */
static void
decoder_commit(LogicalDecodingContext *ctx pg_attribute_unused(),
			   ReorderBufferTXN *txn pg_attribute_unused(),
			   XLogRecPtr commit_lsn pg_attribute_unused())
{
	if (!in_worker || txn_index == 0)
		return;
	if (txn_position > sk_ring->wal_queued_upto)
	{
		sk_ring->wal_queued_upto = txn_position;
		sk_ring->wal_partial_at = 0;
		sk_ring->wal_partial_count = 0;
	}
	if (txn_queued > 0)
		commits_push(txn_position, txn_commit_time);
}

/* decoder_change - row changes are not ours: tables stream through triggers */
static void
decoder_change(LogicalDecodingContext *ctx pg_attribute_unused(),
			   ReorderBufferTXN *txn pg_attribute_unused(),
			   Relation relation pg_attribute_unused(),
			   ReorderBufferChange *change pg_attribute_unused())
{
}

/* decoder_startup - binary output, nothing written out */
static void
decoder_startup(LogicalDecodingContext *ctx pg_attribute_unused(),
				OutputPluginOptions *options, bool is_init pg_attribute_unused())
{
	options->output_type = OUTPUT_PLUGIN_BINARY_OUTPUT;
	options->receive_rewrites = false;
}

/*
 * _PG_output_plugin_init - this library as the output plugin "streamkafka".
 * Outside the worker (a role with REPLICATION that makes its own slot with
 * it) the callbacks do nothing.
 */
void
_PG_output_plugin_init(OutputPluginCallbacks *cb)
{
	cb->startup_cb = decoder_startup;
	cb->begin_cb = decoder_begin;
	cb->change_cb = decoder_change;
	cb->commit_cb = decoder_commit;
	cb->message_cb = decoder_message;
}

/* decoder_write - the context's writer: the plugin never writes */
static void
decoder_write(LogicalDecodingContext *ctx pg_attribute_unused(),
			  XLogRecPtr lsn pg_attribute_unused(),
			  TransactionId xid pg_attribute_unused(), bool last_write pg_attribute_unused())
{
}

/* decoder_sql - run a statement as the worker's user, in its own transaction */
static void
decoder_sql(const char *sql)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_execute(sql, false, 0) < 0)
		elog(ERROR, "could not run: %s", sql);
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
}

/* decoder_extension_exists - is streamkafka installed in this database? */
static bool
decoder_extension_exists(void)
{
	bool		exists;

	StartTransactionCommand();
	exists = OidIsValid(get_extension_oid("streamkafka", true));
	CommitTransactionCommand();
	return exists;
}

/*
 * decoder_plugin_allowed - may the slot use this library?  Hardened
 * PostgreSQL builds (Debian's among them) take output plugins only from
 * the list in output_plugin_libraries; others have no such setting.
 */
static bool
decoder_plugin_allowed(void)
{
	const char *allowed = GetConfigOption("output_plugin_libraries", true, false);
	char	   *copy;
	List	   *names = NIL;
	bool		found = false;
	ListCell   *cell;

	if (allowed == NULL)
		return true;
	copy = pstrdup(allowed);
	if (SplitGUCList(copy, ',', &names))
	{
		foreach(cell, names)
			found |= strcmp((char *) lfirst(cell), "streamkafka") == 0;
	}
	list_free(names);
	pfree(copy);
	return found;
}

/*
 * decoder_setup_problem - why durable mode cannot work here, or NULL: the
 * slot of another database, wal_level, an invalidated slot
 */
static const char *
decoder_setup_problem(const SkSlotInfo *slot)
{
	if (wal_level < WAL_LEVEL_LOGICAL)
		return "wal_level is not logical: set wal_level = logical and restart";
	if (max_replication_slots == 0)
		return "max_replication_slots is 0: raise it and restart";
	if (!decoder_plugin_allowed())
		return "output_plugin_libraries does not list streamkafka: add it "
			"(\"pgoutput, test_decoding, streamkafka\") and reload";
	if (RecoveryInProgress())
		return "the server is a standby: durable mode reads the WAL on the primary";
	if (!OidIsValid(MyDatabaseId))
		return "the worker is not connected to streamkafka.database";
	if (slot->state != SK_SLOT_MISSING && slot->database != MyDatabaseId)
		return "the slot \"streamkafka\" belongs to another database than streamkafka.database";
	if (slot->state == SK_SLOT_INVALIDATED)
		return "the slot \"streamkafka\" was invalidated: PostgreSQL removed WAL it held, "
			"so undelivered events were lost; drop the slot to start again";
	return NULL;
}

/* decoder_start - open the decoding context, making the slot if needed */
static bool
decoder_start(void)
{
	SkSlotInfo	slot;
	SkSlotState state = durable_find_slot(&slot);
	const char *problem = decoder_setup_problem(&slot);
	MemoryContext old;

	if (problem != NULL)
	{
		if (strcmp(problem, shared->problem) != 0)
			ereport(WARNING, (errmsg("streamkafka durable mode cannot start: %s", problem)));
		decoder_set_problem(problem);
		return false;
	}
	if (state == SK_SLOT_MISSING)
	{
		ereport(LOG, (errmsg("streamkafka worker making the replication slot \"streamkafka\"")));
		decoder_sql("SELECT pg_catalog.pg_create_logical_replication_slot("
					"'" SK_SLOT_NAME "', 'streamkafka')");
	}
	decoding_context = AllocSetContextCreate(TopMemoryContext, "streamkafka decoding",
											 ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(decoding_context);
	SK_ReplicationSlotAcquire(SK_SLOT_NAME);
	decoding = CreateDecodingContext(InvalidXLogRecPtr, NIL, false,
									 XL_ROUTINE(.page_read = read_local_xlog_page,
												.segment_open = wal_segment_open,
												.segment_close = wal_segment_close),
									 NULL, decoder_write, NULL);
	XLogBeginRead(decoding->reader, MyReplicationSlot->data.restart_lsn);
	MemoryContextSwitchTo(old);

	/* what a crash restart left in the queue is finished before confirming past it */
	if (commits_count == 0 && sk_ring->wal_queued_upto > MyReplicationSlot->data.confirmed_flush)
		commits_push(sk_ring->wal_queued_upto, 0);
	decoder_set_problem("");
	return true;
}

/* decoder_forget - close the decoding context after an ERROR or to stop */
void
decoder_forget(void)
{
	in_worker = false;
	if (decoding != NULL)
	{
		decoding = NULL;
		MemoryContextDelete(decoding_context);
	}
	if (MyReplicationSlot != NULL)
		ReplicationSlotRelease();
}

/* decoder_confirm - advance the slot past the transactions Kafka has */
static void
decoder_confirm(void)
{
	uint64		tail;
	uint64		head;
	XLogRecPtr	upto = InvalidXLogRecPtr;

	ring_worker_bounds(&tail, &head);
	while (commits_count > 0 && commits[commits_first].ring_end <= tail)
	{
		upto = commits[commits_first].position;
		commits_first = (commits_first + 1) % commits_max;
		commits_count--;
	}
	/* nothing of ours queued or partly read: all read WAL is done with */
	if (commits_count == 0 && sk_ring->wal_partial_at == 0)
		upto = decoding->reader->EndRecPtr;
	SpinLockAcquire(&shared->mutex);
	shared->oldest_pending = commits_count > 0 ? commits[commits_first].commit_time : 0;
	shared->read_upto = decoding->reader->EndRecPtr;
	if (upto != InvalidXLogRecPtr)
		shared->confirmed = upto;
	SpinLockRelease(&shared->mutex);
	if (upto != InvalidXLogRecPtr && upto > MyReplicationSlot->data.confirmed_flush)
	{
		LogicalConfirmReceivedLocation(upto);
		unsaved = true;
	}
	if (unsaved && TimestampDifferenceExceeds(last_save, GetCurrentTimestamp(), DECODER_SAVE_MS))
	{
		ReplicationSlotMarkDirty();
		ReplicationSlotSave();
		last_save = GetCurrentTimestamp();
		unsaved = false;
	}
}

/*
 * decoder_readable_end - how far the WAL may be read: what is flushed, and
 * with synchronous standbys (synchronous_standby_names set) only what they
 * confirmed, so that no event is sent for a commit a failover could lose
 */
static pg_noinline XLogRecPtr
decoder_readable_end(bool *sync)
{
	XLogRecPtr	end = GetFlushRecPtr(NULL);
	XLogRecPtr	standbys;

	*sync = SyncRepStandbyNames != NULL && SyncRepStandbyNames[0] != '\0';
	if (!*sync)
		return end;
	LWLockAcquire(SyncRepLock, LW_SHARED);
	standbys = WalSndCtl->lsn[SYNC_REP_WAIT_FLUSH];
	LWLockRelease(SyncRepLock);
	return Min(end, standbys);
}

/*
 * decoder_next_record - the next WAL record, or NULL with *problem set.  A
 * record too large for the reader's decode buffer is palloc'd in the
 * current context and freed by the next call, so it must be the decoding
 * context (which lives as long as the reader), never the worker's loop
 * context that is reset between reads.
 */
static XLogRecord *
decoder_next_record(char **problem)
{
	MemoryContext old = MemoryContextSwitchTo(decoding_context);
	XLogRecord *record = XLogReadRecord(decoding->reader, problem);

	MemoryContextSwitchTo(old);
	return record;
}

/* decoder_read - read the flushed WAL (a bounded part); true if it read any */
static bool
decoder_read(void)
{
	bool		sync;
	XLogRecPtr	readable = decoder_readable_end(&sync);
	int			records = 0;
	MemoryContext old = CurrentMemoryContext;

	in_worker = true;
	PG_TRY();
	{
		while (decoding->reader->EndRecPtr < readable && records < DECODER_RECORDS)
		{
			char	   *problem = NULL;

			if (decoder_next_record(&problem) != NULL)
			{
				/* a record the standbys have only part of: read it again later */
				if (sync && decoding->reader->EndRecPtr > readable)
				{
					XLogBeginRead(decoding->reader, decoding->reader->ReadRecPtr);
					break;
				}
				LogicalDecodingProcessRecord(decoding, decoding->reader);
			}
			else if (problem != NULL)
				elog(ERROR, "could not read WAL at %X/%X: %s",
					 LSN_FORMAT_ARGS(decoding->reader->EndRecPtr), problem);
			records++;
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_CATCH();
	{
		ErrorData  *error;

		MemoryContextSwitchTo(old);
		error = CopyErrorData();
		if (error->sqlerrcode != ERRCODE_DECODER_PAUSE)
			PG_RE_THROW();
		FlushErrorState();
		AbortOutOfAnyTransaction();
		decoder_forget();
		paused = true;
		return true;
	}
	PG_END_TRY();
	in_worker = false;
	return records > 0;
}

/* decoder_queue_half_free - may reading start again after a pause? */
static bool
decoder_queue_half_free(void)
{
	uint64		tail;
	uint64		head;

	ring_worker_bounds(&tail, &head);
	return head - tail <= ring_capacity() / 2;
}

/*
 * decoder_drop_slot - durability is memory (or the extension is gone): once
 * no transaction can write an event any more (durable_close_writers) and
 * every event up to the WAL's end at that moment is read and finished, drop
 * the slot, so it holds no WAL
 */
static void
decoder_drop_slot(void)
{
	if (drain_end == InvalidXLogRecPtr && !durable_close_writers(&drain_end))
		return;
	if (decoding->reader->EndRecPtr < drain_end || commits_count > 0 ||
		sk_ring->wal_partial_at != 0)
		return;
	decoder_forget();
	ereport(LOG,
			(errmsg("streamkafka worker dropping the replication slot \"streamkafka\": "
					"durable mode is off and its events are delivered")));
	decoder_sql("SELECT pg_catalog.pg_drop_replication_slot('" SK_SLOT_NAME "')");
	drain_end = InvalidXLogRecPtr;
	durable_reopen_writers();
}

/* decoder_check - every DECODER_CHECK_MS: is durable mode wanted here? */
static void
decoder_check(void)
{
	if (!TimestampDifferenceExceeds(last_check, GetCurrentTimestamp(), DECODER_CHECK_MS))
		return;
	last_check = GetCurrentTimestamp();
	wanted = sk_durability == SK_DURABILITY_WAL && OidIsValid(MyDatabaseId) &&
		!RecoveryInProgress() && decoder_extension_exists();
	if (wanted && drain_end != InvalidXLogRecPtr)
	{
		drain_end = InvalidXLogRecPtr;
		durable_reopen_writers();
	}
}

/*
 * decoder_step - one turn: read the WAL into the queue while durable mode
 * is on or its slot still holds events; true if it made progress
 */
bool
decoder_step(DecoderServeQueue serve)
{
	SkSlotInfo	slot;
	bool		progress;

	serve_queue = serve;
	decoder_check();
	if (decoding == NULL)
	{
		if (paused && !decoder_queue_half_free())
			return false;
		paused = false;
		if (!wanted && (!OidIsValid(MyDatabaseId) ||
						durable_find_slot(&slot) == SK_SLOT_MISSING ||
						slot.database != MyDatabaseId))
			return false;
		if (!decoder_start())
			return false;
	}
	progress = decoder_read();
	if (decoding == NULL)
		return progress;
	decoder_confirm();
	if (!wanted)
		decoder_drop_slot();
	return progress;
}
