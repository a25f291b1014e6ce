/*
 * streamkafka.c
 *		Module entry: _PG_init registers the settings, asks for shared memory,
 *		installs the transaction callbacks and registers the worker.
 *
 * The queue and the counters live in memory the postmaster maps once, in
 * _PG_init, not in PostgreSQL's main shared memory: every process inherits
 * it, and unlike the main segment it is not re-created when the postmaster
 * restarts all processes after one of them crashed (a SIGKILLed worker, a
 * segfaulting backend).  So queued events survive a crash restart; only the
 * postmaster's own end (a stop, immediate or not, or a machine crash) ends
 * them, and a clean stop saves them to the spill file first.  The breaker's
 * state, which refers to the running worker, is in the main segment.
 *
 * streamkafka must be in shared_preload_libraries.  Loaded any other way
 * (CREATE EXTENSION on a server without the preload), _PG_init does nothing
 * and every SQL function fails with SQLSTATE 55000 and a hint; so they do in
 * single-user mode (postgres --single), where no worker runs.
 */
#include "postgres.h"

#include <sys/mman.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/pg_shmem.h"
#include "storage/shmem.h"

#include "breaker.h"
#include "brokers.h"
#include "compat.h"
#include "deadletter.h"
#include "lag.h"
#include "metrics.h"
#include "mockfault.h"
#include "pending.h"
#include "ring.h"
#include "settings.h"
#include "spill.h"
#include "staging.h"
#include "streamkafka.h"
#include "topicstats.h"

PG_MODULE_MAGIC;

bool		streamkafka_preloaded = false;

/* loaded by postgres --single: nothing is queued or sent */
static bool streamkafka_single_user = false;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

void		_PG_init(void);

/*
 * The queue, counters and topic statistics: mapped by the postmaster, kept across crash
 * restarts; and after them the staging pool (staging.c), which is not kept.
 */
static char *survivor_memory = NULL;

#define SK_HUGE_PAGE	((Size) 2 * 1024 * 1024)

/*
 * map_huge - the memory in huge pages if PostgreSQL's huge_pages allows them
 * (its main segment follows the same setting) and the kernel has enough;
 * else NULL.  Each process then maps the queue 2MB at a time instead of
 * 4kB: fewer page faults for every session that publishes.
 */
static char *
map_huge(Size size)
{
#ifdef MAP_HUGETLB
	char	   *memory;

	if (huge_pages == HUGE_PAGES_OFF)
		return NULL;
	memory = mmap(NULL, TYPEALIGN(SK_HUGE_PAGE, size), PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (memory != MAP_FAILED)
	{
		ereport(LOG, (errmsg("streamkafka's queue uses huge pages")));
		return memory;
	}
	if (huge_pages == HUGE_PAGES_ON)
		ereport(LOG,
				(errmsg("streamkafka could not get %zu bytes of huge pages for its queue: %m", size),
				 errdetail("It uses normal pages."),
				 errhint("Raise vm.nr_hugepages by %zu pages.", TYPEALIGN(SK_HUGE_PAGE, size) / SK_HUGE_PAGE)));
#endif
	return NULL;
}

static void
streamkafka_map_survivor_memory(void)
{
	Size		size = add_size(add_size(ring_shmem_size(), metrics_shmem_size()),
								add_size(topicstats_shmem_size(), staging_shmem_size()));

	survivor_memory = map_huge(size);
	if (survivor_memory != NULL)
		return;
	survivor_memory = mmap(NULL, size, PROT_READ | PROT_WRITE,
						   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (survivor_memory == MAP_FAILED)
		ereport(FATAL,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("streamkafka could not map %zu bytes of shared memory for its queue: %m", size),
				 errhint("Lower streamkafka.queue_size.")));
}

static Size
streamkafka_shmem_size(void)
{
	return add_size(add_size(add_size(breaker_shmem_size(), mockfault_shmem_size()),
							 add_size(brokers_shmem_size(), lag_shmem_size())),
					deadletter_shmem_size());
}

#if PG_VERSION_NUM >= 150000
static void
streamkafka_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(streamkafka_shmem_size());
	RequestNamedLWLockTranche("streamkafka", SK_LWLOCKS);
}
#endif

static void
streamkafka_shmem_startup(void)
{
	bool		recovered;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	breaker_shmem_init();
	mockfault_shmem_init();
	brokers_shmem_init();
	lag_shmem_init();
	deadletter_shmem_init();
	LWLockRelease(AddinShmemInitLock);

	/* the rest happens in the postmaster, before any other process exists */
	if (IsUnderPostmaster)
		return;
	recovered = ring_shmem_init(survivor_memory);
	topicstats_shmem_init(survivor_memory + ring_shmem_size() + metrics_shmem_size(), recovered);
	staging_shmem_init(survivor_memory + ring_shmem_size() + metrics_shmem_size() +
					   topicstats_shmem_size(), !recovered);
	if (recovered)
	{
		uint64		kept = ring_recover(event_block_unfinished);

		metrics_shmem_init(survivor_memory + ring_shmem_size(), true, kept);
		ereport(LOG,
				(errmsg("streamkafka kept %llu queued events across the crash restart",
						(unsigned long long) kept)));
	}
	else
		metrics_shmem_init(survivor_memory + ring_shmem_size(), false, 0);
	/* saved events go first */
	spill_load();
}

/* register one of the extension's background workers */
static void
streamkafka_register(const char *function, const char *name, int flags, int restart_s)
{
	BackgroundWorker worker = {0};

	worker.bgw_flags = flags;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = restart_s;
	strlcpy(worker.bgw_library_name, "streamkafka", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, function, BGW_MAXLEN);
	strlcpy(worker.bgw_name, name, BGW_MAXLEN);
	strlcpy(worker.bgw_type, name, BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress || IsBinaryUpgrade)
		return;

	settings_define();
	if (!IsPostmasterEnvironment)
	{
		/*
		 * Single-user mode: no worker would ever send an event, and loading
		 * the spill file would consume it.  Every function fails instead.
		 */
		streamkafka_single_user = true;
		return;
	}
	streamkafka_map_survivor_memory();

#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = streamkafka_shmem_request;
#else
	RequestAddinShmemSpace(streamkafka_shmem_size());
	RequestNamedLWLockTranche("streamkafka", SK_LWLOCKS);
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = streamkafka_shmem_startup;

	pending_init();
	/* the sender: its database connection is for the dead-letter table */
	streamkafka_register("streamkafka_worker_main", "streamkafka worker",
						 BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION, 1);
	streamkafka_register("streamkafka_monitor_main", "streamkafka monitor",
						 BGWORKER_SHMEM_ACCESS, 5);
	streamkafka_preloaded = true;
}

/*
 * streamkafka_require_preload - ERROR unless loaded at server start by a
 * postmaster (not in single-user mode)
 */
void
streamkafka_require_preload(void)
{
	if (streamkafka_single_user)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("streamkafka does not publish in single-user mode"),
				 errdetail("No worker runs to send events in a stand-alone backend; "
						   "events saved in the spill file wait for the next normal start."),
				 errhint("Start the server normally (pg_ctl start) to publish, or to write "
						 "to streamed tables.")));
	if (!streamkafka_preloaded)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("streamkafka must be loaded via shared_preload_libraries"),
				 errdetail("Its queue lives in shared memory and its worker starts with the server."),
				 errhint("Add streamkafka to shared_preload_libraries in postgresql.conf and restart the server.")));
}
