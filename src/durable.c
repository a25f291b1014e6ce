/*
 * durable.c
 *		Durable mode, the publishing side (streamkafka.durability = 'wal'): an
 *		event is written into the WAL as a logical message of the publishing
 *		transaction, instead of into the shared-memory queue.  It is then as
 *		durable as the transaction's commit.  The worker reads it back through
 *		the slot "streamkafka" (decoder.c) and queues it for Kafka.
 *
 * The message's prefix carries a random token kept in the data directory
 * (streamkafka_wal.token, made once): pg_logical_emit_message() is open to
 * every role, and the decoder takes only messages with the token, so no
 * role can forge an event past kafka_publish's checks.
 *
 * A message is: SkWalEventHead, then the packed event (event.c) with id 0
 * (the decoder gives it the message's LSN) or a dead letter's own id.
 */
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "miscadmin.h"
#include "replication/message.h"
#include "replication/slot.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/lwlock.h"
#include "utils/memutils.h"

#include "compat.h"
#include "durable.h"
#include "event.h"
#include "ring.h"
#include "settings.h"

#define DURABLE_TOKEN_FILE	"streamkafka_wal.token"
#define DURABLE_TOKEN_BYTES 16

/* the logical messages' prefix: "streamkafka:" and the token in hex */
static char durable_prefix[sizeof(SK_WAL_PREFIX_TAG) + 2 * DURABLE_TOKEN_BYTES];

/* the transaction, by local id, whose set-up was last checked */
static LocalTransactionId checked_lxid = InvalidLocalTransactionId;

/* did the current transaction write an event into the WAL? */
static bool wrote_event = false;
static bool callback_registered = false;

/* reused buffer for one message */
static StringInfo message_buf = NULL;

/* durable_defer_flush(true): non-transactional events written, not flushed */
static bool flush_deferred = false;
static XLogRecPtr deferred_upto = InvalidXLogRecPtr;

/* durable_make_token - write a new random token file; false if it exists */
static bool
durable_make_token(uint8 *token)
{
	int			fd = open(DURABLE_TOKEN_FILE, O_WRONLY | O_CREAT | O_EXCL, S_IRUSR | S_IWUSR);

	if (fd < 0)
	{
		if (errno == EEXIST)
			return false;
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", DURABLE_TOKEN_FILE)));
	}
	if (!pg_strong_random(token, DURABLE_TOKEN_BYTES))
		ereport(FATAL, (errmsg("could not generate streamkafka's WAL token")));
	if (write(fd, token, DURABLE_TOKEN_BYTES) != DURABLE_TOKEN_BYTES || pg_fsync(fd) != 0)
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", DURABLE_TOKEN_FILE)));
	close(fd);
	return true;
}

/* durable_read_token - read the token file into token */
static void
durable_read_token(uint8 *token)
{
	int			fd = open(DURABLE_TOKEN_FILE, O_RDONLY, 0);

	if (fd < 0 || read(fd, token, DURABLE_TOKEN_BYTES) != DURABLE_TOKEN_BYTES)
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("could not read file \"%s\": %m", DURABLE_TOKEN_FILE),
				 errhint("Durable mode's undelivered events are marked with the token "
						 "in this file; restore it from a backup of the data directory.")));
	close(fd);
}

/*
 * durable_load_token - in the postmaster (the data directory is the working
 * directory): read the token, making it the first time; every process
 * inherits durable_prefix
 */
void
durable_load_token(void)
{
	uint8		token[DURABLE_TOKEN_BYTES];
	char	   *out = durable_prefix;

	if (!durable_make_token(token))
		durable_read_token(token);
	out += sprintf(out, "%s", SK_WAL_PREFIX_TAG);
	for (int i = 0; i < DURABLE_TOKEN_BYTES; i++)
		out += sprintf(out, "%02x", token[i]);
}

/* durable_prefix_matches - is prefix the one this server's events carry? */
bool
durable_prefix_matches(const char *prefix)
{
	return durable_prefix[0] != '\0' && strcmp(prefix, durable_prefix) == 0;
}

/* durable_prefix_is_ours - does prefix look like any streamkafka server's? */
bool
durable_prefix_is_ours(const char *prefix)
{
	return strncmp(prefix, SK_WAL_PREFIX_TAG, strlen(SK_WAL_PREFIX_TAG)) == 0;
}

/*
 * durable_find_slot - the state of the slot "streamkafka" (whether it exists
 * persistently), its database and positions, into info
 */
SkSlotState
durable_find_slot(SkSlotInfo *info)
{
	memset(info, 0, sizeof(SkSlotInfo));
	info->state = SK_SLOT_MISSING;
	LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
	for (int i = 0; i < max_replication_slots; i++)
	{
		ReplicationSlot *slot = &ReplicationSlotCtl->replication_slots[i];

		if (!slot->in_use || strcmp(NameStr(slot->data.name), SK_SLOT_NAME) != 0)
			continue;
		SpinLockAcquire(&slot->mutex);
		info->database = slot->data.database;
		info->restart_lsn = slot->data.restart_lsn;
		info->confirmed = slot->data.confirmed_flush;
		if (slot->data.persistency != RS_PERSISTENT)
			info->state = SK_SLOT_MISSING;
		else if (SK_SlotInvalidated(slot))
			info->state = SK_SLOT_INVALIDATED;
		else
			info->state = SK_SLOT_READY;
		SpinLockRelease(&slot->mutex);
		break;
	}
	LWLockRelease(ReplicationSlotControlLock);
	return info->state;
}

/*
 * durable_writer_lock - the lock a transaction holds (shared) from its first
 * event written into the WAL to its end, so the worker drops the slot only
 * when no such transaction runs: an advisory lock tag with field4 3, which
 * the SQL advisory lock functions (1 and 2) never use
 */
static void
durable_writer_lock(LOCKTAG *tag)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, 0x73747265, 0x616d6b61, 3);
}

/*
 * Shared: set while the worker closes durable mode (durability went back to
 * memory, or the extension was dropped) and delivers the slot's last events
 * before dropping it.  A transaction that checks after it is set writes no
 * event into the WAL.
 */
typedef struct DurableShared
{
	pg_atomic_uint32 closing;
} DurableShared;

static DurableShared *durable_shared = NULL;

Size
durable_shmem_size(void)
{
	return sizeof(DurableShared);
}

void
durable_shmem_init(void)
{
	bool		found;

	durable_shared = ShmemInitStruct("streamkafka durable", sizeof(DurableShared), &found);
	if (!found)
		pg_atomic_init_u32(&durable_shared->closing, 0);
}

/*
 * durable_close_writers - in the worker: if no transaction holds the writer
 * lock, mark durable mode closing (under the lock, so every later
 * transaction sees it and writes nothing) and set *end to the end of the
 * WAL, flushed: every event ever written is before it.  False if a
 * transaction still holds the lock (try again later).  The end is that of
 * a marker message (SK_WAL_MARKER_PREFIX) the reader skips.
 */
bool
durable_close_writers(XLogRecPtr *end)
{
	LOCKTAG		tag;
	bool		closed = false;

	durable_writer_lock(&tag);
	StartTransactionCommand();
	if (LockAcquire(&tag, AccessExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL)
	{
		pg_atomic_write_u32(&durable_shared->closing, 1);
		/* a marker's end, not the insert position: that may be no record's end */
		*end = SK_LogLogicalMessage(SK_WAL_MARKER_PREFIX, "", 0, false, true);
		closed = true;
	}
	CommitTransactionCommand();
	return closed;
}

/* durable_reopen_writers - durable mode is wanted again, or its slot is gone */
void
durable_reopen_writers(void)
{
	pg_atomic_write_u32(&durable_shared->closing, 0);
}

/* durable_refuse - ERROR 55000: durable mode cannot take events here */
static void
durable_refuse(const char *detail, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("streamkafka durable mode cannot take events"),
			 errdetail("%s", detail),
			 errhint("%s", hint)));
}

/*
 * durable_check_ready - ERROR unless an event written into the WAL now is
 * sure to be read back: wal_level is logical and the slot exists in this
 * database (the worker makes it; events written before would not be kept)
 */
static void
durable_check_ready(void)
{
	SkSlotInfo	slot;
	SkSlotState state;

	if (wal_level < WAL_LEVEL_LOGICAL)
		durable_refuse("streamkafka.durability is wal, but wal_level is not logical.",
					   "Set wal_level = logical and restart the server, or set "
					   "streamkafka.durability = memory.");
	state = durable_find_slot(&slot);
	if (pg_atomic_read_u32(&durable_shared->closing) != 0)
		durable_refuse("streamkafka.durability was turned off (or the extension dropped): the "
					   "worker is delivering the slot's last events before dropping it.",
					   "Publish again once the reload has reached this session, or set "
					   "streamkafka.durability = wal again.");
	if (state == SK_SLOT_INVALIDATED)
		durable_refuse("The replication slot \"streamkafka\" was invalidated: "
					   "PostgreSQL removed WAL it held.",
					   "See kafka_health(); a superuser drops the slot with "
					   "pg_drop_replication_slot('streamkafka') and the worker makes a new one.");
	if (state == SK_SLOT_MISSING)
		durable_refuse("The replication slot \"streamkafka\" does not exist yet.",
					   "The worker makes it when it runs connected to streamkafka.database "
					   "with streamkafka.durability = wal; see kafka_health().");
	if (slot.database != MyDatabaseId)
		durable_refuse("In durable mode only the database named by streamkafka.database "
					   "publishes: the slot \"streamkafka\" reads that database's WAL.",
					   "Publish from that database, or set streamkafka.durability = memory.");
}

/* durable_xact_callback - at commit, wake the worker to read the WAL */
static void
durable_xact_callback(XactEvent event, void *arg pg_attribute_unused())
{
	if (!wrote_event)
		return;
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
		ring_wake_consumer();
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
		wrote_event = false;
}

/* durable_pack - the message for an event: SkWalEventHead and the event */
static StringInfo
durable_pack(const SkEvent *event, uint64 size)
{
	SkWalEventHead head = {SK_WAL_FORMAT, GetUserId()};

	if (message_buf == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		message_buf = makeStringInfo();
		MemoryContextSwitchTo(old);
	}
	resetStringInfo(message_buf);
	enlargeStringInfo(message_buf, sizeof(head) + size);
	memcpy(message_buf->data, &head, sizeof(head));
	/* the WAL gets every byte: the event's alignment padding too */
	memset(message_buf->data + sizeof(head) + size - sizeof(uint64), 0, sizeof(uint64));
	event_pack(message_buf->data + sizeof(head), event, event->retry_id, 0);
	message_buf->len = sizeof(head) + size;
	return message_buf;
}

/*
 * durable_publish - write an event into the WAL: with the transaction, or
 * at once (flushed, so it survives what a committed transaction survives);
 * returns its id, the message's LSN (a dead letter keeps its own id)
 */
int64
durable_publish(const SkEvent *event, uint64 size, bool transactional)
{
	StringInfo	message;
	XLogRecPtr	lsn;

	if (MyProc->SK_lxid != checked_lxid)
	{
		LOCKTAG		tag;

		durable_writer_lock(&tag);
		(void) LockAcquire(&tag, AccessShareLock, false, false);
		durable_check_ready();
		checked_lxid = MyProc->SK_lxid;
	}
	if (SK_BLOCK_HEADER_SIZE + size > ring_capacity())
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("Kafka event does not fit in the queue"),
				 errdetail("It takes %llu bytes; the queue holds %llu.",
						   (unsigned long long) size, (unsigned long long) ring_capacity()),
				 errhint("Raise streamkafka.queue_size or lower streamkafka.message_max_bytes.")));
	if (!callback_registered)
	{
		RegisterXactCallback(durable_xact_callback, NULL);
		callback_registered = true;
	}
	message = durable_pack(event, size);
	lsn = SK_LogLogicalMessage(durable_prefix, message->data, message->len, transactional,
							   !flush_deferred);
	if (transactional)
		wrote_event = true;
	else if (flush_deferred)
		deferred_upto = lsn;
	else
		ring_wake_consumer();
	return event->retry_id != 0 ? event->retry_id : (int64) lsn;
}

/*
 * durable_defer_flush - while deferred, a non-transactional event is written
 * into the WAL without waiting for the flush (a snapshot writes thousands);
 * ending the deferral flushes them all at once and wakes the worker
 */
void
durable_defer_flush(bool defer)
{
	flush_deferred = defer;
	if (!defer)
		durable_flush_deferred();
}

/* durable_flush_deferred - flush what was written while deferred, wake the worker */
void
durable_flush_deferred(void)
{
	if (deferred_upto == InvalidXLogRecPtr)
		return;
	XLogFlush(deferred_upto);
	deferred_upto = InvalidXLogRecPtr;
	ring_wake_consumer();
}
