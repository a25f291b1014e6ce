/*
 * spill.c
 *		Keeps the queue's unacknowledged events across a clean restart: the
 *		worker writes them to $PGDATA/pg_streamkafka/spill as it stops
 *		(spill_write), and the postmaster puts them back in the queue when it
 *		creates shared memory (spill_load), before any session can publish,
 *		so they are sent first, in their order, with their ids.
 *
 * Only a server stop needs the file: when just the worker restarts, the
 * events are still in shared memory, so the new worker deletes a file written
 * by the same shared memory (spill_forget_own; instance_id tells).
 *
 * File: "SKSPILL2", the shared memory's instance_id, then per block (one
 * original transaction, or one non-transactional event): uint32 event count,
 * the database and role it came from, uint64 bytes of events, the packed
 * events (the worker's flags and sent_generation cleared).  "SKSPILL1" files
 * (0.2.0) lack the origin.  Loading rewrites each event's block_delta (the
 * block header's size may differ).
 * Written to spill.tmp, fsynced, renamed: a crash while writing leaves the
 * previous state (no file), never half a file.  A server crash writes no
 * spill: events in shared memory are lost then, as the README says.
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/timestamp.h"

#include "event.h"
#include "metrics.h"
#include "ring.h"
#include "spill.h"

#define SPILL_DIR		"pg_streamkafka"
#define SPILL_FILE		SPILL_DIR "/spill"
#define SPILL_TMP		SPILL_DIR "/spill.tmp"
#define SPILL_MAGIC		"SKSPILL2"
#define SPILL_MAGIC_V1	"SKSPILL1"

typedef struct SpillBlock
{
	uint32		nevents;
	Oid			database;
	uint64		bytes;
	Oid			role;
	uint32		unused;
} SpillBlock;

/* a block of an "SKSPILL1" file */
typedef struct SpillBlockV1
{
	uint32		nevents;
	uint32		unused;
	uint64		bytes;
} SpillBlockV1;

/* copy a block's unfinished events into buf, ready to be a block again */
static uint32
spill_collect(uint64 block_off, StringInfo buf)
{
	uint32		nevents = *ring_field(block_off, uint32, nevents);
	uint64		event_off = block_off + SK_BLOCK_HEADER_SIZE;
	uint32		kept = 0;

	resetStringInfo(buf);
	for (uint32 i = 0; i < nevents; i++)
	{
		SkEventHeader header;

		ring_read(event_off, &header, sizeof(header));
		if (!(header.flags & SK_EVENT_FINISHED))
		{
			/* a refused event not yet in the table is simply sent again */
			int			at = buf->len;
			SkEventHeader *copy;

			enlargeStringInfo(buf, header.length);
			ring_read(event_off, buf->data + at, header.length);
			buf->len += header.length;
			copy = (SkEventHeader *) (buf->data + at);
			copy->flags &= ~SK_EVENT_WORKER_FLAGS;
			copy->sent_generation = 0;
			copy->block_delta = SK_BLOCK_HEADER_SIZE + at;
			kept++;
		}
		event_off += header.length;
	}
	return kept;
}

static void
spill_fail(FILE *file, const char *what)
{
	int			save_errno = errno;

	if (file)
		FreeFile(file);
	errno = save_errno;
	ereport(LOG,
			(errcode_for_file_access(),
			 errmsg("streamkafka could not %s \"%s\": %m; unacknowledged events are lost", what, SPILL_TMP)));
}

/*
 * spill_write - the worker, stopping: write every READY block's unfinished
 * events to the spill file.  Never raises an ERROR.
 */
void
spill_write(void)
{
	uint64		tail;
	uint64		head;
	uint64		spilled = 0;
	FILE	   *file;
	StringInfoData buf;

	ring_bounds(&tail, &head);
	if (tail == head)
		return;
	(void) MakePGDirectory(SPILL_DIR);
	file = AllocateFile(SPILL_TMP, PG_BINARY_W);
	if (file == NULL)
	{
		spill_fail(NULL, "create");
		return;
	}
	if (fwrite(SPILL_MAGIC, 1, 8, file) != 8 ||
		fwrite(&sk_ring->instance_id, sizeof(uint64), 1, file) != 1)
	{
		spill_fail(file, "write");
		return;
	}
	initStringInfo(&buf);
	for (uint64 off = tail; off < head; off += *ring_field(off, uint64, length))
	{
		SpillBlock block = {0};

		if (pg_atomic_read_u32(ring_field(off, pg_atomic_uint32, state)) != SK_BLOCK_READY)
			continue;
		block.nevents = spill_collect(off, &buf);
		block.bytes = buf.len;
		block.database = *ring_field(off, Oid, database);
		block.role = *ring_field(off, Oid, role);
		if (block.nevents == 0)
			continue;
		if (fwrite(&block, sizeof(block), 1, file) != 1 ||
			fwrite(buf.data, 1, buf.len, file) != (size_t) buf.len)
		{
			spill_fail(file, "write");
			return;
		}
		spilled += block.nevents;
	}
	if (fflush(file) != 0 || pg_fsync(fileno(file)) != 0)
	{
		spill_fail(file, "fsync");
		return;
	}
	FreeFile(file);
	if (spilled == 0)
	{
		unlink(SPILL_TMP);
		return;
	}
	if (durable_rename(SPILL_TMP, SPILL_FILE, LOG) == 0)
		ereport(LOG,
				(errmsg("streamkafka saved %llu unacknowledged events to \"%s\"; they are sent first after the next start",
						(unsigned long long) spilled, SPILL_FILE)));
}

/* put one spilled block back in the queue; false if it does not fit */
static bool
spill_restore_block(const SpillBlock *block, char *events)
{
	uint64		off;

	for (uint64 at = 0; at + sizeof(SkEventHeader) <= block->bytes;)
	{
		SkEventHeader *header = (SkEventHeader *) (events + at);

		header->block_delta = SK_BLOCK_HEADER_SIZE + at;
		if (header->length == 0)
			break;
		at += header->length;
	}
	if (ring_reserve(SK_BLOCK_HEADER_SIZE + block->bytes, block->nevents, block->database,
					 block->role, PG_UINT64_MAX, &off) != SK_RESERVED)
		return false;
	ring_write(off + SK_BLOCK_HEADER_SIZE, events, block->bytes);
	metrics_count_queued(block->nevents);
	ring_block_ready(off);
	return true;
}

/*
 * spill_read_block - read the next block's description; an "SKSPILL1"
 * block has no origin
 */
static bool
spill_read_block(FILE *file, bool version1, SpillBlock *block)
{
	SpillBlockV1 old;

	if (!version1)
		return fread(block, sizeof(*block), 1, file) == 1;
	if (fread(&old, sizeof(old), 1, file) != 1)
		return false;
	memset(block, 0, sizeof(*block));
	block->nevents = old.nevents;
	block->bytes = old.bytes;
	return true;
}

/*
 * spill_load - the postmaster, creating shared memory: queue the spilled
 * events again and remove the file.  What does not fit in the queue (it was
 * made smaller) is logged as lost.
 */
void
spill_load(void)
{
	FILE	   *file = AllocateFile(SPILL_FILE, PG_BINARY_R);
	char		magic[8] = {0};
	uint64		instance;
	SpillBlock	block;
	uint64		loaded = 0;
	uint64		lost = 0;
	bool		version1;

	if (file == NULL)
		return;
	version1 = fread(magic, 1, 8, file) == 8 && memcmp(magic, SPILL_MAGIC_V1, 8) == 0;
	if ((!version1 && memcmp(magic, SPILL_MAGIC, 8) != 0) ||
		fread(&instance, sizeof(uint64), 1, file) != 1)
	{
		ereport(WARNING, (errmsg("streamkafka ignores \"%s\": not a spill file", SPILL_FILE)));
		FreeFile(file);
		return;
	}
	if (instance == sk_ring->instance_id)
	{
		/* left by a worker restart just before a crash restart: still queued */
		FreeFile(file);
		unlink(SPILL_FILE);
		return;
	}
	while (spill_read_block(file, version1, &block))
	{
		char	   *events = palloc(block.bytes);

		if (fread(events, 1, block.bytes, file) != block.bytes)
		{
			ereport(WARNING, (errmsg("streamkafka spill file \"%s\" ends early", SPILL_FILE)));
			pfree(events);
			break;
		}
		if (spill_restore_block(&block, events))
			loaded += block.nevents;
		else
			lost += block.nevents;
		pfree(events);
	}
	FreeFile(file);
	if (loaded > 0)
		ereport(LOG,
				(errmsg("streamkafka queued %llu events saved at the last shutdown",
						(unsigned long long) loaded)));
	if (lost > 0)
		ereport(WARNING,
				(errmsg("streamkafka lost %llu saved events that do not fit in streamkafka.queue_size",
						(unsigned long long) lost)));
	if (unlink(SPILL_FILE) != 0)
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("could not remove \"%s\": %m; its events would be queued twice", SPILL_FILE)));
}

/*
 * spill_forget_own - a worker starting in running shared memory: a spill
 * file written by this shared memory (only the worker restarted) is not
 * needed, its events are still queued
 */
void
spill_forget_own(void)
{
	FILE	   *file = AllocateFile(SPILL_FILE, PG_BINARY_R);
	char		magic[8];
	uint64		instance = 0;
	bool		own;

	if (file == NULL)
		return;
	own = fread(magic, 1, 8, file) == 8 && memcmp(magic, SPILL_MAGIC, 8) == 0 &&
		fread(&instance, sizeof(uint64), 1, file) == 1 &&
		instance == sk_ring->instance_id;
	FreeFile(file);
	if (own && unlink(SPILL_FILE) == 0)
		ereport(LOG, (errmsg("streamkafka worker restarted: its queue is intact, the spill file is not needed")));
}
