/*
 * lag.c
 *		Consumer lag per group, topic and partition, and the partitions of
 *		the topics streamkafka publishes to, as the monitor worker last saw
 *		them (every streamkafka.lag_interval_ms); the SQL functions behind
 *		kafka_consumer_lag and kafka_topics.
 *
 * A refresh, in the monitor worker only (never in a SQL session, never in
 * the sending worker), on a thread of its own so that the worker keeps
 * serving HTTP meanwhile: cluster metadata for the partitions, leaders and
 * in-sync replicas of our topics (those in kafka_topic_stats); the groups of
 * streamkafka.lag_groups that the cluster lists ('*': every group, keeping
 * only its offsets on our topics; a list: those groups, all their topics);
 * each group's committed offsets (admin API); each partition's high
 * watermark.  lag = high watermark - committed offset.  Each admin request
 * has a queue of its own and an id, and only an answer naming the group
 * asked is taken: a late answer is never taken for another request's
 * (another group's).  Every call is bounded, and so is the whole refresh.
 * The new snapshot replaces the old one under an LWLock.
 */
#include "postgres.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "fmgr.h"
#include "funcapi.h"
#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "lag.h"
#include "locks.h"
#include "parse.h"
#include "settings.h"
#include "streamkafka.h"
#include "topicstats.h"

#define LAG_MAX_GROUPS			4096
#define LAG_POLL_SLICE_MS		100

typedef struct SkLagShared
{
	LWLock	   *lock;
	SkLagSnapshot snapshot;
} SkLagShared;

static SkLagShared *sk_lag = NULL;

/*
 * A refresh in progress (the monitor worker's): what its thread reads, set
 * up before the thread starts, and the snapshot it fills, all malloc'd.  The
 * thread makes librdkafka calls only; the worker's thread publishes the
 * snapshot once the thread wrote a byte to the done pipe.
 */
typedef struct LagJob
{
	bool		running;
	pthread_t	thread;
	rd_kafka_t *rk;
	int			timeout_ms;		/* bound of each librdkafka call */
	struct timespec deadline;	/* bound of the whole refresh (monotonic) */
	pg_atomic_uint32 stop;		/* set by the worker: give up */
	char	  **ours;			/* the topics we publish to */
	int			nours;
	char	   *groups_setting; /* streamkafka.lag_groups when it started */
	bool		every_group;	/* lag_groups = '*' */
	char	  **groups;
	int			ngroups;
	uintptr_t	request_id;		/* opaque of the latest admin request */
	SkLagSnapshot *snap;
} LagJob;

static LagJob job;
static int	lag_done_pipe[2] = {-1, -1};

Size
lag_shmem_size(void)
{
	return MAXALIGN(sizeof(SkLagShared));
}

void
lag_shmem_init(void)
{
	bool		found;

	sk_lag = ShmemInitStruct("streamkafka lag", lag_shmem_size(), &found);
	if (!found)
		memset(sk_lag, 0, sizeof(SkLagShared));
	sk_lag->lock = sk_lwlock(SK_LWLOCK_MONITOR);
}

/* the topics we publish to (malloc'd names), from the topic statistics */
static int
lag_our_topics(char ***names)
{
	SkTopicRow *rows;
	int			n = topicstats_rows(&rows);
	int			kept = 0;

	*names = malloc(Max(n, 1) * sizeof(char *));
	if (*names == NULL)
	{
		pfree(rows);
		return 0;
	}
	for (int i = 0; i < n; i++)
		if (strcmp(rows[i].topic, SK_OVERFLOW_TOPIC) != 0 &&
			((*names)[kept] = strdup(rows[i].topic)) != NULL)
			kept++;
	pfree(rows);
	return kept;
}

/* lag_free_names - free what lag_our_topics made */
static void
lag_free_names(char **names, int n)
{
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* lag_is_ours - is topic one of the job's topics? */
static bool
lag_is_ours(const LagJob *job, const char *topic)
{
	for (int i = 0; i < job->nours; i++)
		if (strcmp(job->ours[i], topic) == 0)
			return true;
	return false;
}

/* lag_ms_left - milliseconds until the job's deadline, at most cap, 0 if stopped */
static int
lag_ms_left(LagJob *job, int cap)
{
	struct timespec now;
	int64		left;

	if (pg_atomic_read_u32(&job->stop) != 0)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	left = (int64) (job->deadline.tv_sec - now.tv_sec) * 1000 +
		(job->deadline.tv_nsec - now.tv_nsec) / 1000000;
	return (int) Max(Min(left, cap), 0);
}

/* lag_read_metadata - partitions of our topics from the cluster's metadata */
static void
lag_read_metadata(LagJob *job)
{
	SkLagSnapshot *snap = job->snap;
	const struct rd_kafka_metadata *md;
	int			timeout_ms = lag_ms_left(job, job->timeout_ms);
	rd_kafka_resp_err_t err;

	if (timeout_ms == 0)
		return;
	err = rd_kafka_metadata(job->rk, 1, NULL, &md, timeout_ms);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		snprintf(snap->last_error, sizeof(snap->last_error), "metadata: %s", rd_kafka_err2str(err));
		return;
	}
	for (int t = 0; t < md->topic_cnt; t++)
	{
		const struct rd_kafka_metadata_topic *topic = &md->topics[t];

		if (!lag_is_ours(job, topic->topic))
			continue;
		for (int p = 0; p < topic->partition_cnt && snap->npartitions < SK_MAX_PARTITION_ROWS; p++)
		{
			const struct rd_kafka_metadata_partition *part = &topic->partitions[p];
			SkPartitionRow *row = &snap->partitions[snap->npartitions++];

			strlcpy(row->topic, topic->topic, sizeof(row->topic));
			row->partition = part->id;
			row->leader = part->leader;
			row->nreplicas = Min(part->replica_cnt, SK_MAX_REPLICAS);
			row->nisr = Min(part->isr_cnt, SK_MAX_REPLICAS);
			memcpy(row->replicas, part->replicas, row->nreplicas * sizeof(int32));
			memcpy(row->isr, part->isrs, row->nisr * sizeof(int32));
		}
	}
	rd_kafka_metadata_destroy(md);
}

/*
 * lag_admin_options - options of one admin request: its id.  librdkafka's
 * own request timeout stays at its default: a coordinator request that times
 * out inside librdkafka 2.0 can abort the process (an assertion on the
 * request's enqueue-once counter), so the refresh stops waiting on its side
 * and the late answer goes to the request's own queue, destroyed by then.
 */
static rd_kafka_AdminOptions_t *
lag_admin_options(LagJob *job, rd_kafka_admin_op_t op)
{
	rd_kafka_AdminOptions_t *options = rd_kafka_AdminOptions_new(job->rk, op);

	rd_kafka_AdminOptions_set_opaque(options, (void *) (uintptr_t) ++job->request_id);
	return options;
}

/*
 * lag_admin_result - wait on the request's own queue for its answer: an
 * event of the expected type carrying the request's id; anything else is
 * discarded.  NULL (error recorded) on failure, timeout or stop.
 */
static rd_kafka_event_t *
lag_admin_result(LagJob *job, rd_kafka_queue_t *queue, rd_kafka_event_type_t type,
				 int timeout_ms, const char *what)
{
	SkLagSnapshot *snap = job->snap;
	rd_kafka_event_t *event = NULL;
	int			slice;

	while ((slice = lag_ms_left(job, Min(timeout_ms, LAG_POLL_SLICE_MS))) > 0)
	{
		event = rd_kafka_queue_poll(queue, slice);
		if (event != NULL && rd_kafka_event_type(event) == type &&
			rd_kafka_event_opaque(event) == (void *) (uintptr_t) job->request_id)
			break;
		if (event != NULL)
		{
			job->snap->stale_answers++;
			rd_kafka_event_destroy(event);
		}
		event = NULL;
		timeout_ms -= slice;
	}
	if (event == NULL)
	{
		snprintf(snap->last_error, sizeof(snap->last_error), "%s: no answer in time", what);
		return NULL;
	}
	if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		snprintf(snap->last_error, sizeof(snap->last_error), "%s: %s", what,
				 rd_kafka_event_error_string(event));
		rd_kafka_event_destroy(event);
		return NULL;
	}
	return event;
}

/* lag_add_group - one more group name for the job (malloc'd) */
static void
lag_add_group(LagJob *job, const char *name)
{
	if (job->ngroups == LAG_MAX_GROUPS || (job->groups[job->ngroups] = strdup(name)) == NULL)
		return;
	job->ngroups++;
}

/* lag_is_unsupported - an error that says the cluster cannot list groups */
static bool
lag_is_unsupported(rd_kafka_resp_err_t err)
{
	return err == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE ||
		err == RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION ||
		err == RD_KAFKA_RESP_ERR_INVALID_REQUEST;
}

/* lag_add_listed - every group the lag_groups list names */
static void
lag_add_listed(LagJob *job)
{
	char	   *copy = strdup(job->groups_setting);
	char	   *save = NULL;

	if (copy == NULL)
		return;
	for (char *tok = strtok_r(copy, ", ", &save); tok != NULL; tok = strtok_r(NULL, ", ", &save))
		lag_add_group(job, tok);
	free(copy);
}

/* lag_is_listed - does the lag_groups list name the group? */
static bool
lag_is_listed(const LagJob *job, const char *group)
{
	char	   *copy = strdup(job->groups_setting);
	char	   *save = NULL;
	bool		listed = false;

	if (copy == NULL)
		return false;
	for (char *tok = strtok_r(copy, ", ", &save); tok != NULL && !listed;
		 tok = strtok_r(NULL, ", ", &save))
		listed = strcmp(tok, group) == 0;
	free(copy);
	return listed;
}

/*
 * lag_list_groups - the groups to look at: those the cluster knows, all of
 * them for '*', else those lag_groups lists.  Offsets are never asked for a
 * group the cluster does not know: librdkafka 2.0 crashes on the answer
 * (NOT_COORDINATOR for an unknown group, in rd_kafka_handle_OffsetFetch).  A
 * cluster that cannot list groups (the mock cluster) is asked for the listed
 * groups directly.
 */
static void
lag_list_groups(LagJob *job)
{
	rd_kafka_queue_t *queue;
	rd_kafka_AdminOptions_t *options;
	rd_kafka_event_t *event;
	const rd_kafka_ConsumerGroupListing_t **listings;
	size_t		count;
	int			timeout_ms = lag_ms_left(job, job->timeout_ms);

	if (timeout_ms == 0)
		return;
	queue = rd_kafka_queue_new(job->rk);
	options = lag_admin_options(job, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS);
	rd_kafka_ListConsumerGroups(job->rk, options, queue);
	event = lag_admin_result(job, queue, RD_KAFKA_EVENT_LISTCONSUMERGROUPS_RESULT,
							 timeout_ms, "list groups");
	if (event != NULL)
	{
		const rd_kafka_error_t **errors;
		size_t		nerrors;
		bool		unsupported = false;

		listings = rd_kafka_ListConsumerGroups_result_valid(
			rd_kafka_event_ListConsumerGroups_result(event), &count);
		errors = rd_kafka_ListConsumerGroups_result_errors(
			rd_kafka_event_ListConsumerGroups_result(event), &nerrors);
		for (size_t i = 0; i < nerrors; i++)
			unsupported |= lag_is_unsupported(rd_kafka_error_code(errors[i]));
		for (size_t i = 0; i < count; i++)
		{
			const char *group = rd_kafka_ConsumerGroupListing_group_id(listings[i]);

			if (job->every_group || lag_is_listed(job, group))
				lag_add_group(job, group);
		}
		if (count == 0 && unsupported && !job->every_group)
			lag_add_listed(job);
		rd_kafka_event_destroy(event);
	}
	rd_kafka_AdminOptions_destroy(options);
	rd_kafka_queue_destroy(queue);
}

/* lag_add_row - one committed offset: a lag row, with the partition's high watermark */
static void
lag_add_row(LagJob *job, const char *group, const rd_kafka_topic_partition_t *tp)
{
	SkLagSnapshot *snap = job->snap;
	int64_t		low;
	int64_t		high;
	SkLagRow   *row;
	int			timeout_ms;

	if (tp->offset < 0 || tp->err != RD_KAFKA_RESP_ERR_NO_ERROR ||
		snap->nlag >= SK_MAX_LAG_ROWS ||
		(timeout_ms = lag_ms_left(job, job->timeout_ms)) == 0 ||
		rd_kafka_query_watermark_offsets(job->rk, tp->topic, tp->partition, &low, &high,
										 timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return;
	row = &snap->lag[snap->nlag++];
	strlcpy(row->group_id, group, sizeof(row->group_id));
	strlcpy(row->topic, tp->topic, sizeof(row->topic));
	row->partition = tp->partition;
	row->committed_offset = tp->offset;
	row->high_watermark = high;
	row->lag = Max(high - tp->offset, 0);
}

/*
 * lag_read_group - one group's committed offsets, asked on a queue of the
 * request's own (a late answer to an earlier request cannot reach it); only
 * an answer naming the group is taken
 */
static void
lag_read_group(LagJob *job, const char *group)
{
	rd_kafka_ListConsumerGroupOffsets_t *request;
	rd_kafka_AdminOptions_t *options;
	rd_kafka_queue_t *queue;
	rd_kafka_event_t *event;
	const rd_kafka_group_result_t **results;
	size_t		count;
	int			timeout_ms = lag_ms_left(job, job->timeout_ms);

	if (timeout_ms == 0)
		return;
	queue = rd_kafka_queue_new(job->rk);
	options = lag_admin_options(job, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
	request = rd_kafka_ListConsumerGroupOffsets_new(group, NULL);
	rd_kafka_ListConsumerGroupOffsets(job->rk, &request, 1, options, queue);
	rd_kafka_ListConsumerGroupOffsets_destroy(request);
	event = lag_admin_result(job, queue, RD_KAFKA_EVENT_LISTCONSUMERGROUPOFFSETS_RESULT,
							 timeout_ms, "list offsets");
	if (event != NULL)
	{
		results = rd_kafka_ListConsumerGroupOffsets_result_groups(
			rd_kafka_event_ListConsumerGroupOffsets_result(event), &count);
		for (size_t g = 0; g < count; g++)
		{
			const rd_kafka_topic_partition_list_t *parts =
				rd_kafka_group_result_partitions(results[g]);

			if (strcmp(rd_kafka_group_result_name(results[g]), group) != 0)
			{
				job->snap->stale_answers++;
				continue;
			}
			for (int i = 0; parts != NULL && i < parts->cnt; i++)
				if (!job->every_group || lag_is_ours(job, parts->elems[i].topic))
					lag_add_row(job, group, &parts->elems[i]);
		}
		rd_kafka_event_destroy(event);
	}
	rd_kafka_AdminOptions_destroy(options);
	rd_kafka_queue_destroy(queue);
}

/*
 * lag_group_sum - the lag of row i's group on row i's topic, summed over the
 * topic's partitions; *first is false if an earlier row has the same group
 * and topic.  Plain C (the refresh thread calls it).
 */
int64
lag_group_sum(const SkLagSnapshot *snap, int i, bool *first)
{
	int64		sum = 0;

	*first = true;
	for (int j = 0; j < snap->nlag; j++)
	{
		if (strcmp(snap->lag[i].group_id, snap->lag[j].group_id) == 0 &&
			strcmp(snap->lag[i].topic, snap->lag[j].topic) == 0)
		{
			*first &= j >= i;
			sum += snap->lag[j].lag;
		}
	}
	return sum;
}

/*
 * lag_topic_under_replicated - how many partitions of row i's topic are
 * under-replicated; *first is false if an earlier row has the same topic
 */
int
lag_topic_under_replicated(const SkLagSnapshot *snap, int i, bool *first)
{
	int			under = 0;

	*first = true;
	for (int j = 0; j < snap->npartitions; j++)
	{
		if (strcmp(snap->partitions[i].topic, snap->partitions[j].topic) == 0)
		{
			*first &= j >= i;
			under += lag_partition_under_replicated(&snap->partitions[j]);
		}
	}
	return under;
}

/* snapshot_max_group_lag - the largest lag of a group on a topic */
static int64
snapshot_max_group_lag(const SkLagSnapshot *snap)
{
	int64		most = 0;
	bool		first;

	for (int i = 0; i < snap->nlag; i++)
		most = Max(most, lag_group_sum(snap, i, &first));
	return most;
}

/* snapshot_under_replicated - how many partitions are under-replicated */
static int
snapshot_under_replicated(const SkLagSnapshot *snap)
{
	int			under = 0;

	for (int i = 0; i < snap->npartitions; i++)
		under += lag_partition_under_replicated(&snap->partitions[i]);
	return under;
}

/*
 * lag_thread_main - the refresh thread: librdkafka calls and plain C only
 * (no PostgreSQL call), into the job's own snapshot; says it is done by a
 * byte on the done pipe
 */
static void *
lag_thread_main(void *arg)
{
	LagJob	   *job = arg;
	char		done = 'd';

	lag_read_metadata(job);
	if (job->groups_setting[0] != '\0')
	{
		lag_list_groups(job);
		for (int g = 0; g < job->ngroups; g++)
			lag_read_group(job, job->groups[g]);
	}
	job->snap->max_group_lag = snapshot_max_group_lag(job->snap);
	job->snap->under_replicated = snapshot_under_replicated(job->snap);
	while (write(lag_done_pipe[1], &done, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

/* lag_free_job - release what the job holds; its thread has ended */
static void
lag_free_job(void)
{
	lag_free_names(job.ours, job.nours);
	for (int g = 0; g < job.ngroups; g++)
		free(job.groups[g]);
	free(job.groups);
	free(job.groups_setting);
	free(job.snap);
	memset(&job, 0, sizeof(job));
}

/* lag_open_pipe - the done pipe, made once, both ends non-blocking */
static bool
lag_open_pipe(void)
{
	if (lag_done_pipe[0] >= 0)
		return true;
	if (pipe(lag_done_pipe) != 0)
		return false;
	for (int i = 0; i < 2; i++)
	{
		fcntl(lag_done_pipe[i], F_SETFL, O_NONBLOCK);
		fcntl(lag_done_pipe[i], F_SETFD, FD_CLOEXEC);
	}
	return true;
}

/*
 * lag_refresh_start - the monitor worker: start a refresh of lag and
 * partitions on a thread of its own, each librdkafka call bounded by
 * timeout_ms and the whole by budget_ms; false (logged) if it cannot start
 */
bool
lag_refresh_start(rd_kafka_t *rk, int timeout_ms, int budget_ms)
{
	sigset_t	all;
	sigset_t	saved;
	int			err;

	Assert(!job.running);
	if (!lag_open_pipe())
	{
		ereport(LOG, (errmsg("streamkafka monitor could not create a pipe: %m")));
		return false;
	}
	job.rk = rk;
	job.timeout_ms = timeout_ms;
	job.nours = lag_our_topics(&job.ours);
	job.groups_setting = strdup(sk_lag_groups);
	job.every_group = strcmp(sk_lag_groups, "*") == 0;
	job.groups = malloc(LAG_MAX_GROUPS * sizeof(char *));
	job.snap = calloc(1, sizeof(SkLagSnapshot));
	pg_atomic_init_u32(&job.stop, 0);
	clock_gettime(CLOCK_MONOTONIC, &job.deadline);
	job.deadline.tv_sec += budget_ms / 1000;
	job.deadline.tv_nsec += (long) (budget_ms % 1000) * 1000000;
	if (job.deadline.tv_nsec >= 1000000000)
	{
		job.deadline.tv_sec++;
		job.deadline.tv_nsec -= 1000000000;
	}
	if (job.ours == NULL || job.groups_setting == NULL || job.groups == NULL || job.snap == NULL)
	{
		lag_free_job();
		ereport(LOG, (errmsg("streamkafka monitor is out of memory for a lag refresh")));
		return false;
	}
	/* the thread gets no signal: they are the worker's */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &saved);
	err = pthread_create(&job.thread, NULL, lag_thread_main, &job);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (err != 0)
	{
		lag_free_job();
		ereport(LOG, (errmsg("streamkafka monitor could not start a thread: %s", strerror(err))));
		return false;
	}
	job.running = true;
	return true;
}

/*
 * lag_refresh_fd - readable when the running refresh is done;
 * PGINVALID_SOCKET when none runs
 */
pgsocket
lag_refresh_fd(void)
{
	return job.running ? lag_done_pipe[0] : PGINVALID_SOCKET;
}

/* lag_refresh_running - does a refresh run now? */
bool
lag_refresh_running(void)
{
	return job.running;
}

/* lag_refresh_join - wait for the thread to end, drain the done pipe */
static void
lag_refresh_join(void)
{
	char		drain[16];

	pthread_join(job.thread, NULL);
	while (read(lag_done_pipe[0], drain, sizeof(drain)) > 0)
		;
	job.running = false;
}

/*
 * lag_refresh_finish - if the running refresh is done, make its snapshot
 * the one readers see and copy its error (empty if none) into error; true
 * if it was done
 */
bool
lag_refresh_finish(char *error, size_t errlen)
{
	char		byte;

	if (!job.running)
		return false;
	if (read(lag_done_pipe[0], &byte, 1) != 1)
		return false;
	lag_refresh_join();
	job.snap->refreshed_at = GetCurrentTimestamp();
	if (job.snap->stale_answers > 0)
		ereport(DEBUG1, (errmsg("streamkafka monitor discarded %d stale answers",
								job.snap->stale_answers)));
	strlcpy(error, job.snap->last_error, errlen);
	LWLockAcquire(sk_lag->lock, LW_EXCLUSIVE);
	memcpy(&sk_lag->snapshot, job.snap, sizeof(SkLagSnapshot));
	LWLockRelease(sk_lag->lock);
	lag_free_job();
	return true;
}

/*
 * lag_refresh_cancel - stop the running refresh, if any, and discard it:
 * the thread ends once its librdkafka call in progress returns (each is
 * bounded by the refresh's timeout)
 */
void
lag_refresh_cancel(void)
{
	if (!job.running)
		return;
	pg_atomic_write_u32(&job.stop, 1);
	lag_refresh_join();
	lag_free_job();
}

SkLagSnapshot *
lag_snapshot(void)
{
	SkLagSnapshot *copy = palloc(sizeof(SkLagSnapshot));

	LWLockAcquire(sk_lag->lock, LW_SHARED);
	memcpy(copy, &sk_lag->snapshot, sizeof(SkLagSnapshot));
	LWLockRelease(sk_lag->lock);
	return copy;
}

/* lag_max_group_lag - the largest lag of a group on a topic, last refreshed */
int64
lag_max_group_lag(void)
{
	int64		lag;

	LWLockAcquire(sk_lag->lock, LW_SHARED);
	lag = sk_lag->snapshot.max_group_lag;
	LWLockRelease(sk_lag->lock);
	return lag;
}

/* lag_under_replicated - under-replicated partitions, last refreshed */
int
lag_under_replicated(void)
{
	int			under;

	LWLockAcquire(sk_lag->lock, LW_SHARED);
	under = sk_lag->snapshot.under_replicated;
	LWLockRelease(sk_lag->lock);
	return under;
}

static Datum
int4_array(const int32 *values, int n)
{
	Datum	   *datums = palloc(Max(n, 1) * sizeof(Datum));

	for (int i = 0; i < n; i++)
		datums[i] = Int32GetDatum(values[i]);
	return PointerGetDatum(construct_array(datums, n, INT4OID, 4, true, TYPALIGN_INT));
}

PG_FUNCTION_INFO_V1(streamkafka_consumer_lag);

/*
 * streamkafka_consumer_lag - the rows of kafka_consumer_lag
 */
Datum
streamkafka_consumer_lag(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SkLagSnapshot *snap;

	streamkafka_require_preload();
	SK_InitMaterializedSRF(fcinfo);
	snap = lag_snapshot();
	for (int i = 0; i < snap->nlag; i++)
	{
		SkLagRow   *r = &snap->lag[i];
		Datum		values[7];
		bool		nulls[7] = {0};

		values[0] = CStringGetTextDatum(r->group_id);
		values[1] = CStringGetTextDatum(r->topic);
		values[2] = Int32GetDatum(r->partition);
		values[3] = Int64GetDatum(r->committed_offset);
		values[4] = Int64GetDatum(r->high_watermark);
		values[5] = Int64GetDatum(r->lag);
		values[6] = TimestampTzGetDatum(snap->refreshed_at);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(streamkafka_topics);

/*
 * streamkafka_topics - the rows of kafka_topics
 */
Datum
streamkafka_topics(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SkLagSnapshot *snap;

	streamkafka_require_preload();
	SK_InitMaterializedSRF(fcinfo);
	snap = lag_snapshot();
	for (int i = 0; i < snap->npartitions; i++)
	{
		SkPartitionRow *r = &snap->partitions[i];
		Datum		values[7];
		bool		nulls[7] = {0};

		values[0] = CStringGetTextDatum(r->topic);
		values[1] = Int32GetDatum(r->partition);
		values[2] = Int32GetDatum(r->leader);
		nulls[2] = r->leader < 0;
		values[3] = int4_array(r->replicas, r->nreplicas);
		values[4] = int4_array(r->isr, r->nisr);
		values[5] = BoolGetDatum(lag_partition_under_replicated(r));
		values[6] = TimestampTzGetDatum(snap->refreshed_at);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
