/*
 * worker.c
 *		The background worker: owns the producer, drains the queue, sleeps
 *		until there is work, reloads settings on SIGHUP and flushes on SIGTERM.
 *
 * Errors: an ERROR in the loop (pg_cancel_backend, out of memory, a recovery
 * conflict) is logged and the loop goes on after a second, the walk restarted
 * from the tail; the producer keeps running.  Every exit (a FATAL, the
 * postmaster's death) stops the producer first (worker_on_exit), so no
 * librdkafka thread outlives the worker's PostgreSQL state.
 *
 * Loop: poll the producer (delivery reports, errors, statistics), let the
 * circuit breaker time out its probe, send a bounded batch (if the breaker
 * allows), write refused events to the dead-letter table, release finished
 * space, and, when none of that made
 * progress, sleep on a WaitEventSet of the latch (set by backends that queue
 * events while the worker sleeps), librdkafka's wake pipe (its main queue
 * became non-empty) and postmaster death, with a timeout as a safety net.
 *
 * The worker connects to streamkafka.database for the dead-letter table.
 * If that fails, the next start connects to no database (see
 * worker_connect): sending and the spill at a clean stop do not need one.
 */
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

#include "miscadmin.h"
#include "access/xact.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include <librdkafka/rdkafka.h>

#include "breaker.h"
#include "compat.h"
#include "deadletter.h"
#include "decoder.h"
#include "metrics.h"
#include "producer.h"
#include "ring.h"
#include "sender.h"
#include "settings.h"
#include "spill.h"
#include "topicstats.h"

#define WORKER_BATCH		10000	/* events sent per loop turn */
#define WORKER_IDLE_MS		1000
#define WORKER_NAP_MS		1		/* see worker_sleep */
#define WORKER_RETRY_MS		5000	/* retry a producer that failed to start */
#define WORKER_ERROR_PAUSE_MS	1000	/* after an ERROR in the loop */

PGDLLEXPORT void streamkafka_worker_main(Datum main_arg);

static int	wake_pipe[2] = {-1, -1};
static const SkProducerHandler sender_handler = {sender_poll_begins, sender_on_delivery};
static TimestampTz last_start_attempt = 0;
static bool connecting = false; /* inside BackgroundWorkerInitializeConnection */
static bool database_back = false;	/* streamkafka.database can be connected to again */

/*
 * worker_on_exit - every exit: stop the producer if it still runs (an exit
 * other than the clean shutdown), so librdkafka's threads end before the
 * process does; its events stay in the queue for the next worker
 */
static void
worker_on_exit(int code pg_attribute_unused(), Datum arg pg_attribute_unused())
{
	if (producer_running())
	{
		ereport(LOG, (errmsg("streamkafka worker exiting: its producer is stopped first")));
		producer_stop(0);
	}
	ring_set_held_by(0);
	ring_consumer_detach();
	metrics_worker_stopped();
}

static void
worker_open_wake_pipe(void)
{
	if (pipe(wake_pipe) != 0)
		ereport(FATAL, (errcode_for_file_access(),
						errmsg("streamkafka worker could not create a pipe: %m")));
	for (int i = 0; i < 2; i++)
	{
		fcntl(wake_pipe[i], F_SETFL, O_NONBLOCK);
		fcntl(wake_pipe[i], F_SETFD, FD_CLOEXEC);
	}
}

static void
worker_drain_wake_pipe(void)
{
	char		buf[64];

	while (read(wake_pipe[0], buf, sizeof(buf)) > 0)
		;
}

/*
 * worker_start_producer - build a producer from the settings; on success the
 * previous one (if any) was stopped, the breaker starts closed and the walk
 * restarts with a new generation, on failure the previous one keeps running
 */
static void
worker_start_producer(int old_flush_timeout_ms)
{
	last_start_attempt = GetCurrentTimestamp();
	if (!producer_start(wake_pipe[1], old_flush_timeout_ms, &sender_handler))
		return;
	breaker_reset();
	sender_restart(ring_new_producer_generation());
}

/* on SIGHUP: re-read settings, rebuild the producer if they changed */
static void
worker_reload(void)
{
	ConfigReloadPending = false;
	ProcessConfigFile(PGC_SIGHUP);
	ereport(LOG, (errmsg("streamkafka worker reloaded its settings")));
	if (!producer_running())
	{
		worker_start_producer(0);
		return;
	}
	if (!producer_settings_changed())
		return;
	ereport(LOG, (errmsg("streamkafka producer settings changed: rebuilding the producer")));
	worker_start_producer(sk_shutdown_timeout_ms);
}

/*
 * worker_serve_queue - send what the queue holds and take delivery reports:
 * what the durable-mode reader runs while it waits for room in the queue
 * (inside a decoding transaction: nothing here may write to the database)
 */
static void
worker_serve_queue(void)
{
	producer_poll();
	breaker_tick(sender_in_flight());
	(void) sender_drain(WORKER_BATCH);
	(void) sender_release();
}

/* one turn of work; true if it made progress */
static bool
worker_step(void)
{
	uint32		sent;
	bool		released;
	bool		dead_lettered = false;
	bool		decoded;
	uint64		evict;

	if (producer_running() && producer_failed())
	{
		ereport(LOG, (errmsg("streamkafka producer hit a fatal error: rebuilding it")));
		worker_start_producer(0);
	}
	else if (!producer_running() &&
			 TimestampDifferenceExceeds(last_start_attempt, GetCurrentTimestamp(), WORKER_RETRY_MS))
		worker_start_producer(0);

	producer_apply_mock_faults();
	if (topicstats_reset_seen())
		producer_stats_reset();
	producer_poll();
	breaker_tick(sender_in_flight());
	evict = ring_take_eviction_request();
	if (evict > 0)
	{
		/* refused events that can become dead letters do, rather than drop */
		dead_lettered = deadletter_flush();
		sender_evict(evict);
	}
	sent = sender_drain(WORKER_BATCH);
	dead_lettered |= deadletter_flush();
	released = sender_release();
	if (sender_take_delivered_flag())
		metrics_note_delivery_time(GetCurrentTimestamp());
	decoded = decoder_step(worker_serve_queue);
	return sent > 0 || released || dead_lettered || decoded;
}

/*
 * worker_sleep - wait for work.  Backends are asked to set the latch only
 * when the producer can take more events: with its window full (e.g. the
 * broker is down) a delivery report, on the wake pipe, is what frees it, and
 * waking the worker for every new event would cost each backend a signal.
 *
 * Right after a turn that sent events (nap), the worker waits at most
 * WORKER_NAP_MS without asking to be woken: while sessions publish steadily,
 * the next events are picked up by the nap's end instead of each burst
 * costing a backend a signal (its cost: docs/performance.md).
 * Delivery reports still end a nap at once.
 */
static void
worker_sleep(WaitEventSet *events, bool nap)
{
	WaitEvent	event;
	bool		wake_on_events = !nap && sender_can_send();

	if (wake_on_events)
		ring_consumer_may_sleep(true);
	if (!sender_has_work())
		(void) WaitEventSetWait(events, nap ? WORKER_NAP_MS : WORKER_IDLE_MS,
								&event, 1, PG_WAIT_EXTENSION);
	if (wake_on_events)
		ring_consumer_may_sleep(false);
	ResetLatch(MyLatch);
	worker_drain_wake_pipe();
}

/* wait (up to 2 s) for transactions that are committing to finish */
static void
worker_wait_for_commits(void)
{
	uint64		tail;
	uint64		head;

	for (int i = 0; i < 200; i++)
	{
		bool		writing = false;

		ring_bounds(&tail, &head);
		for (uint64 off = tail; off < head && !writing; off += *ring_field(off, uint64, length))
			writing = ring_block_state(off) == SK_BLOCK_WRITING;
		if (!writing)
			return;
		pg_usleep(10000);
	}
}

static void
worker_shutdown(void)
{
	uint64		tail;
	uint64		head;

	producer_stop(sk_shutdown_timeout_ms);
	sender_release();
	worker_wait_for_commits();
	spill_write();
	if (rd_kafka_wait_destroyed(5000) == 0)
		ereport(LOG, (errmsg("streamkafka worker released all librdkafka handles")));
	else
		ereport(LOG, (errmsg("streamkafka worker: librdkafka handles still alive after 5 s")));
	ring_bounds(&tail, &head);
	if (head != tail)
		ereport(LOG,
				(errmsg("streamkafka worker stopping with %llu bytes of events "
						"not acknowledged by Kafka",
						(unsigned long long) (head - tail)),
				 errdetail("If only the worker restarts, it sends them from shared memory; "
						   "if the server stops, they were saved to the spill file.")));
}

/* worker_connect_context - errors while connecting name the setting */
static void
worker_connect_context(void *arg pg_attribute_unused())
{
	errcontext("streamkafka worker connecting to database \"%s\" named by streamkafka.database",
			   sk_database);
	errhint("Create the database and the extension in it, or set streamkafka.database to a "
			"database that has the extension and restart; until then the worker runs "
			"without a database and dead letters wait in the queue.");
}

/* worker_connect_exit - exiting while connecting: the next start uses no database */
static void
worker_connect_exit(int code pg_attribute_unused(), Datum arg pg_attribute_unused())
{
	if (connecting)
		deadletter_connect_failed();
}

/*
 * worker_connect - connect to streamkafka.database, for the dead-letter
 * table; also lets pg_terminate_backend() restart us.  If the last try
 * failed (the database does not exist, refuses connections, ...), connect
 * to no database instead: the queue is still delivered and spilled at a
 * clean stop, and deadletter.c watches for the database to appear.
 */
static void
worker_connect(void)
{
	ErrorContextCallback context = {error_context_stack, worker_connect_context, NULL};

	if (deadletter_no_database())
	{
		BackgroundWorkerInitializeConnection(NULL, NULL, 0);
		deadletter_connected(false);
		return;
	}
	before_shmem_exit(worker_connect_exit, 0);
	error_context_stack = &context;
	connecting = true;
	BackgroundWorkerInitializeConnection(sk_database, NULL, 0);
	connecting = false;
	error_context_stack = context.previous;
	deadletter_connected(true);
}

/*
 * worker_recover - after an ERROR in the loop: log it, clean up what the
 * error left (transaction, locks, memory), walk again from the tail, and
 * pause a second so a repeating error does not spin
 */
static void
worker_recover(MemoryContext loop_context)
{
	HOLD_INTERRUPTS();
	/* the frames of the error's context callbacks (an SPI statement's) are gone */
	error_context_stack = NULL;
	EmitErrorReport();
	AbortCurrentTransaction();
	decoder_forget();
	LWLockReleaseAll();
	ConditionVariableCancelSleep();
	pgstat_report_wait_end();
	MemoryContextSwitchTo(TopMemoryContext);
	FlushErrorState();
	MemoryContextReset(loop_context);
	RESUME_INTERRUPTS();
	ereport(LOG,
			(errmsg("streamkafka worker goes on after the error above; "
					"its producer keeps running")));
	sender_resync();
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 WORKER_ERROR_PAUSE_MS, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
}

/*
 * the main loop, until a shutdown is requested, or streamkafka.database can
 * be connected to again (exit to be restarted connected to it)
 */
static void
worker_loop(WaitEventSet *events, MemoryContext loop_context)
{
	bool		progress;
	bool		progressed_before = false;

	while (!ShutdownRequestPending && !database_back)
	{
		MemoryContext old = MemoryContextSwitchTo(loop_context);

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
			worker_reload();
		progress = worker_step();
		database_back = deadletter_database_back();
		if (!progress)
			worker_sleep(events, progressed_before);
		progressed_before = progress;
		MemoryContextSwitchTo(old);
		MemoryContextReset(loop_context);
	}
}

void
streamkafka_worker_main(Datum main_arg pg_attribute_unused())
{
	WaitEventSet *events;
	MemoryContext loop_context;
	sigjmp_buf	local_sigjmp_buf;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	worker_connect();

	loop_context = AllocSetContextCreate(TopMemoryContext, "streamkafka worker loop",
										 ALLOCSET_DEFAULT_SIZES);
	worker_open_wake_pipe();
	events = SK_CreateWaitEventSet(3);
	AddWaitEventToSet(events, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(events, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(events, WL_SOCKET_READABLE, wake_pipe[0], NULL, NULL);

	metrics_worker_started(MyProcPid);
	breaker_reset();
	before_shmem_exit(worker_on_exit, 0);
	ring_consumer_attach(MyLatch);
	spill_forget_own();
	ereport(LOG, (errmsg("streamkafka worker started")));
	worker_start_producer(0);

	/* an ERROR in the loop comes back here */
	if (sigsetjmp(local_sigjmp_buf, 1) != 0)
		worker_recover(loop_context);
	PG_exception_stack = &local_sigjmp_buf;
	worker_loop(events, loop_context);

	/* an ERROR while shutting down ends the process (worker_on_exit) */
	PG_exception_stack = NULL;
	HOLD_INTERRUPTS();
	worker_shutdown();
	/* exit 1: if this was not a server shutdown, the postmaster restarts us */
	proc_exit(1);
}
