/*
 * streamkafka.c
 *		Module entry: _PG_init registers the settings, asks for shared memory,
 *		installs the transaction callbacks and registers the worker.
 *
 * The queue and the counters live in memory the postmaster maps once, in
 * _PG_init (shmem.c, which registers every shared region): it survives a
 * restart of all processes after one of them crashed (a SIGKILLed worker, a
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

#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "compat.h"
#include "event.h"
#include "metrics.h"
#include "durable.h"
#include "pending.h"
#include "ring.h"
#include "settings.h"
#include "shmem.h"
#include "spill.h"
#include "staging.h"
#include "locks.h"
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

#if PG_VERSION_NUM >= 150000
static void
streamkafka_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(shmem_main_size());
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
	shmem_main_init();
	LWLockRelease(AddinShmemInitLock);

	/* the rest happens in the postmaster, before any other process exists */
	if (IsUnderPostmaster)
		return;
	recovered = ring_shmem_init(shmem_survivor_place(SK_REGION_RING));
	topicstats_shmem_init(shmem_survivor_place(SK_REGION_TOPICSTATS), recovered);
	staging_shmem_init(shmem_survivor_place(SK_REGION_STAGING), !recovered);
	if (recovered)
	{
		uint64		kept = ring_recover(event_block_unfinished);

		metrics_shmem_init(shmem_survivor_place(SK_REGION_METRICS), true, kept);
		ereport(LOG,
				(errmsg("streamkafka kept %llu queued events across the crash restart",
						(unsigned long long) kept)));
	}
	else
		metrics_shmem_init(shmem_survivor_place(SK_REGION_METRICS), false, 0);
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
	shmem_map_survivor();

#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = streamkafka_shmem_request;
#else
	RequestAddinShmemSpace(shmem_main_size());
	RequestNamedLWLockTranche("streamkafka", SK_LWLOCKS);
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = streamkafka_shmem_startup;

	pending_init();
	durable_load_token();
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
				 errdetail("Its queue lives in shared memory and its worker starts "
						   "with the server."),
				 errhint("Add streamkafka to shared_preload_libraries in postgresql.conf "
						 "and restart the server.")));
}
