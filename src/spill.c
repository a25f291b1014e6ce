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
 * by the same shared memory (spill_forget_own; instance_id tells).  Single-user
 * mode never loads it (streamkafka.c): no worker would send the events.
 *
 * File: "SKSPILL3", the shared memory's instance_id, then per block (one
 * original transaction, or one non-transactional event): uint32 event count,
 * uint32 CRC-32C of the block's other fields and its events, uint64 bytes of
 * events, the database and the role the events came from, the packed events
 * (the worker's state cleared, block_delta rewritten: event_reset_state).
 * "SKSPILL2" files are the same with 0.2.0's event header (no refusal_error),
 * which loading upgrades (event_upgrade_v1).  "SKSPILL1" (0.2.0) files also
 * have that header, and blocks have neither the CRC (the word is 0) nor the
 * origin; they are still read, with the structural checks only.  Loading
 * rewrites each event's block_delta, since the queue's block header may have
 * another size than the one that wrote the file.
 * Written to spill.tmp, fsynced, renamed: a crash while writing leaves the
 * previous state (no file), never half a file.  A server crash writes no
 * spill: events in shared memory are lost then, as the README says.
 *
 * Loading never fails the start: a block whose checksum or structure is wrong
 * (or any ERROR while loading) stops the load; the blocks before it stay
 * queued, the file is renamed to spill.damaged, a WARNING says so and
 * kafka_health() counts it (spill_damaged_files).
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include "miscadmin.h"
#include "port/pg_crc32c.h"
#include "storage/fd.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "event.h"
#include "metrics.h"
#include "ring.h"
#include "spill.h"

#define SPILL_DIR		"pg_streamkafka"
#define SPILL_FILE		SPILL_DIR "/spill"
#define SPILL_TMP		SPILL_DIR "/spill.tmp"
#define SPILL_DAMAGED	SPILL_DIR "/spill.damaged"
#define SPILL_MAGIC		"SKSPILL3"
#define SPILL_MAGIC_V2	"SKSPILL2"	/* 0.2.0's event header */
#define SPILL_MAGIC_V1	"SKSPILL1"	/* 0.2.0: no checksums either */

/* a spill file's format, from its magic: 1 to 3, 0 for not a spill file */
static int
spill_format(const char *magic)
{
	if (memcmp(magic, SPILL_MAGIC, 8) == 0)
		return 3;
	if (memcmp(magic, SPILL_MAGIC_V2, 8) == 0)
		return 2;
	if (memcmp(magic, SPILL_MAGIC_V1, 8) == 0)
		return 1;
	return 0;
}

typedef struct SpillBlock
{
	uint32		nevents;
	uint32		crc;			/* spill_block_crc(); 0 in SKSPILL1 files */
	uint64		bytes;
	Oid			database;		/* not in SKSPILL1 files */
	Oid			role;			/* not in SKSPILL1 files */
} SpillBlock;

/* the part of a block's description an SKSPILL1 file has */
#define SPILL_BLOCK_V1_SIZE		offsetof(SpillBlock, database)

/* spill_crc_fields - start a block's CRC-32C with its fields other than crc */
static void
spill_crc_fields(pg_crc32c *crc, const SpillBlock *block)
{
	INIT_CRC32C(*crc);
	COMP_CRC32C(*crc, &block->nevents, sizeof(block->nevents));
	COMP_CRC32C(*crc, &block->bytes, sizeof(block->bytes));
	COMP_CRC32C(*crc, &block->database, sizeof(block->database));
	COMP_CRC32C(*crc, &block->role, sizeof(block->role));
}

/* damaged files set aside by this postmaster (inherited by its children) */
static int	damaged_files = 0;

/* spill_block_crc - CRC-32C of a block's fields and events */
static pg_crc32c
spill_block_crc(const SpillBlock *block, const char *events)
{
	pg_crc32c	crc;

	spill_crc_fields(&crc, block);
	COMP_CRC32C(crc, events, block->bytes);
	FIN_CRC32C(crc);
	return crc;
}

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
		uint32		length = event_ring_length(event_off);

		if (!(event_ring_flags(event_off) & SK_EVENT_FINISHED))
		{
			/* a refused event not yet in the table is simply sent again */
			int			at = buf->len;

			enlargeStringInfo(buf, length);
			ring_read(event_off, buf->data + at, length);
			buf->len += length;
			event_reset_state(buf->data + at, SK_BLOCK_HEADER_SIZE + at);
			kept++;
		}
		event_off += length;
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
			 errmsg("streamkafka could not %s \"%s\": %m; unacknowledged events are lost",
					what, SPILL_TMP)));
	if (file)
		(void) unlink(SPILL_TMP);
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
	uint64		instance = ring_instance_id();
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
		fwrite(&instance, sizeof(uint64), 1, file) != 1)
	{
		spill_fail(file, "write");
		return;
	}
	initStringInfo(&buf);
	for (uint64 off = tail; off < head; off += *ring_field(off, uint64, length))
	{
		SpillBlock block = {0};

		if (ring_block_state(off) != SK_BLOCK_READY ||
			*ring_field(off, uint64, owner) == SK_BLOCK_OWNER_WAL)
			continue;
		block.nevents = spill_collect(off, &buf);
		block.bytes = buf.len;
		block.database = *ring_field(off, Oid, database);
		block.role = *ring_field(off, Oid, role);
		if (block.nevents == 0)
			continue;
		block.crc = spill_block_crc(&block, buf.data);
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
				(errmsg("streamkafka saved %llu unacknowledged events to \"%s\"; "
						"they are sent first after the next start",
						(unsigned long long) spilled, SPILL_FILE)));
	else
		(void) unlink(SPILL_TMP);
}

/*
 * spill_events_valid - are events (bytes long) exactly nevents well-formed
 * events, each where its block_delta says (counted from the block header of
 * the server that wrote the file)?  Clears the worker's state and sets
 * block_delta for this server's block header.
 */
static bool
spill_events_valid(char *events, uint64 bytes, uint32 nevents)
{
	uint64		pos = 0;
	uint64		first_delta = 0;

	for (uint32 i = 0; i < nevents; i++)
	{
		uint32		length = event_check_packed(events + pos, bytes - pos);

		if (length == 0)
			return false;
		if (i == 0)
			first_delta = event_block_delta(events);
		if (event_block_delta(events + pos) != first_delta + pos)
			return false;
		event_reset_state(events + pos, SK_BLOCK_HEADER_SIZE + pos);
		pos += length;
	}
	return pos == bytes;
}

/* put one spilled block back in the queue; false if it does not fit */
static bool
spill_restore_block(const SpillBlock *block, const char *events)
{
	uint64		off;

	if (ring_reserve(SK_BLOCK_HEADER_SIZE + block->bytes, block->nevents, block->database,
					 block->role, PG_UINT64_MAX, &off) != SK_RESERVED)
		return false;
	ring_write(off + SK_BLOCK_HEADER_SIZE, events, block->bytes);
	metrics_count_queued(block->nevents);
	ring_block_ready(off);
	return true;
}

/* what loading the spill file found */
typedef struct SpillOutcome
{
	FILE	   *file;			/* the open file, NULL if none */
	uint64		loaded;			/* events queued again */
	uint64		lost;			/* events that do not fit in the queue */
	const char *damage;			/* why the file is damaged, or NULL */
} SpillOutcome;

/* skip a block too large for the queue; false if its checksum is wrong */
static bool
spill_skip_block(FILE *file, const SpillBlock *block, int format)
{
	char		buf[65536];
	uint64		left = block->bytes;
	pg_crc32c	crc;

	spill_crc_fields(&crc, block);
	while (left > 0)
	{
		size_t		n = Min(left, sizeof(buf));

		if (fread(buf, 1, n, file) != n)
			return false;
		COMP_CRC32C(crc, buf, n);
		left -= n;
	}
	FIN_CRC32C(crc);
	return format == 1 || crc == block->crc;
}

/*
 * spill_upgrade_events - events of a file with 0.2.0's event header (format
 * 1 or 2) in this version's layout, block->bytes updated; the same events
 * for a current file; NULL if they do not fill the block
 */
static char *
spill_upgrade_events(SpillBlock *block, char *events, int format)
{
	char	   *upgraded;

	if (format == 3)
		return events;
	upgraded = event_upgrade_v1(events, block->bytes, block->nevents, &block->bytes);
	pfree(events);
	return upgraded;
}

/* queue the blocks of an open spill file, stopping at the first damaged one */
static void
spill_read_blocks(FILE *file, uint64 file_size, int format, SpillOutcome *outcome)
{
	SpillBlock	block = {0};
	size_t		block_size = format == 1 ? SPILL_BLOCK_V1_SIZE : sizeof(block);
	uint64		growth = format == 3 ? 0 : event_min_size(false) - event_min_size(true);
	size_t		got;
	uint64		pos = 16;
	uint64		fits = ring_capacity() - SK_BLOCK_HEADER_SIZE;

	while ((got = fread(&block, 1, block_size, file)) == block_size)
	{
		char	   *events;

		pos += block_size;
		if (block.nevents == 0 || block.bytes > file_size - pos ||
			block.bytes < block.nevents * event_min_size(format < 3))
		{
			outcome->damage = "a block's length or event count is impossible";
			return;
		}
		pos += block.bytes;
		if (block.bytes + block.nevents * growth > fits)
		{
			if (!spill_skip_block(file, &block, format))
			{
				outcome->damage = "a block's checksum is wrong";
				return;
			}
			outcome->lost += block.nevents;
			continue;
		}
		events = palloc_extended(block.bytes, MCXT_ALLOC_HUGE);
		if (fread(events, 1, block.bytes, file) != block.bytes)
			outcome->damage = "the file ends inside a block";
		else if (format > 1 && spill_block_crc(&block, events) != block.crc)
			outcome->damage = "a block's checksum is wrong";
		else if ((events = spill_upgrade_events(&block, events, format)) == NULL ||
				 !spill_events_valid(events, block.bytes, block.nevents))
			outcome->damage = "a block's events are malformed";
		else if (spill_restore_block(&block, events))
			outcome->loaded += block.nevents;
		else
			outcome->lost += block.nevents;
		if (events)
			pfree(events);
		if (outcome->damage)
			return;
	}
	if (got != 0)
		outcome->damage = "the file ends inside a block header";
}

/*
 * spill_open - open the spill file and read its header; NULL if there is
 * none, or if it belongs to this shared memory (removed: still queued).
 * Sets *format (spill_format), or *damage when it is not a spill file.
 */
static FILE *
spill_open(uint64 *file_size, int *format, const char **damage)
{
	FILE	   *file = AllocateFile(SPILL_FILE, PG_BINARY_R);
	char		magic[8];
	uint64		instance;
	struct stat st;

	*damage = NULL;
	if (file == NULL)
		return NULL;
	if (fstat(fileno(file), &st) != 0 || fread(magic, 1, 8, file) != 8 ||
		fread(&instance, sizeof(uint64), 1, file) != 1 || spill_format(magic) == 0)
	{
		*damage = "it does not start like a spill file";
		return file;
	}
	*file_size = st.st_size;
	*format = spill_format(magic);
	if (instance == ring_instance_id())
	{
		/* left by a worker restart just before a crash restart: still queued */
		FreeFile(file);
		unlink(SPILL_FILE);
		return NULL;
	}
	return file;
}

/* rename a damaged spill file out of the way, loudly, and count it */
static void
spill_set_aside(const char *why, uint64 loaded)
{
	damaged_files++;
	if (durable_rename(SPILL_FILE, SPILL_DAMAGED, LOG) != 0)
		(void) unlink(SPILL_FILE);
	ereport(WARNING,
			(errmsg("streamkafka set aside the damaged spill file \"%s\" as \"%s\": %s",
					SPILL_FILE, SPILL_DAMAGED, why),
			 errdetail("%llu events before the damage were queued; "
					   "the events from the damage on are not sent.",
					   (unsigned long long) loaded),
			 errhint("Inspect or remove \"%s\"; kafka_health() counts it in "
					 "spill_damaged_files until the next server start.", SPILL_DAMAGED)));
}

/* open the spill file and queue its blocks (may raise an ERROR) */
static void
spill_load_file(SpillOutcome *outcome)
{
	uint64		file_size = 0;
	int			format = 0;

	outcome->file = spill_open(&file_size, &format, &outcome->damage);
	if (outcome->file != NULL && outcome->damage == NULL)
		spill_read_blocks(outcome->file, file_size, format, outcome);
}

/*
 * spill_load - the postmaster, creating shared memory: queue the spilled
 * events again and remove the file.  What does not fit in the queue (it was
 * made smaller) is logged as lost.  Never raises an ERROR: a damaged file
 * is set aside (spill_set_aside) and the server starts.
 */
void
spill_load(void)
{
	MemoryContext context = CurrentMemoryContext;
	SpillOutcome outcome = {0};

	PG_TRY();
	{
		spill_load_file(&outcome);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(context);
		edata = CopyErrorData();
		FlushErrorState();
		outcome.damage = edata->message;
	}
	PG_END_TRY();
	if (outcome.file == NULL)
		return;
	FreeFile(outcome.file);
	if (outcome.loaded > 0)
		ereport(LOG,
				(errmsg("streamkafka queued %llu events saved at the last shutdown",
						(unsigned long long) outcome.loaded)));
	if (outcome.lost > 0)
		ereport(WARNING,
				(errmsg("streamkafka lost %llu saved events that do not fit in "
						"streamkafka.queue_size",
						(unsigned long long) outcome.lost)));
	if (outcome.damage != NULL)
		spill_set_aside(outcome.damage, outcome.loaded);
	else if (unlink(SPILL_FILE) != 0)
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("could not remove \"%s\": %m; its events would be queued twice",
						SPILL_FILE)));
}

/*
 * spill_damaged_files - damaged spill files set aside since the server
 * started (kafka_health)
 */
int
spill_damaged_files(void)
{
	return damaged_files;
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
	own = fread(magic, 1, 8, file) == 8 &&
		spill_format(magic) != 0 &&
		fread(&instance, sizeof(uint64), 1, file) == 1 &&
		instance == ring_instance_id();
	FreeFile(file);
	if (own && unlink(SPILL_FILE) == 0)
		ereport(LOG,
				(errmsg("streamkafka worker restarted: its queue is intact, "
						"the spill file is not needed")));
}
