/*
 * lag.c
 *		Consumer lag per group, topic and partition, and the partitions of
 *		the topics streamkafka publishes to, as the monitor worker last saw
 *		them (every streamkafka.lag_interval_ms); the SQL functions behind
 *		kafka_consumer_lag and kafka_topics.
 *
 * A refresh, in the monitor worker only (never in a SQL session, never in
 * the sending worker): cluster metadata for the partitions, leaders and
 * in-sync replicas of our topics (those in kafka_topic_stats); the groups of
 * streamkafka.lag_groups ('*': every group, keeping only its offsets on our
 * topics; a list: those groups, all their topics); each group's committed
 * offsets (admin API); each partition's high watermark.  lag = high
 * watermark - committed offset.  The new snapshot replaces the old one under
 * an LWLock.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "lag.h"
#include "parse.h"
#include "settings.h"
#include "streamkafka.h"
#include "topicstats.h"

typedef struct SkLagShared
{
	LWLock	   *lock;
	SkLagSnapshot snapshot;
} SkLagShared;

static SkLagShared *sk_lag = NULL;

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
	sk_lag->lock = &(GetNamedLWLockTranche("streamkafka"))[SK_LWLOCK_MONITOR].lock;
}

/* the topics we publish to (palloc'd names), from the topic statistics */
static List *
lag_our_topics(void)
{
	SkTopicRow *rows;
	int			n = topicstats_rows(&rows);
	List	   *names = NIL;

	for (int i = 0; i < n; i++)
		if (strcmp(rows[i].topic, "_other") != 0)
			names = lappend(names, pstrdup(rows[i].topic));
	return names;
}

static bool
lag_is_ours(List *ours, const char *topic)
{
	ListCell   *lc;

	foreach(lc, ours)
		if (strcmp(lfirst(lc), topic) == 0)
		return true;
	return false;
}

/* partitions of our topics from the cluster's metadata */
static void
lag_read_metadata(rd_kafka_t *rk, List *ours, int timeout_ms, SkLagSnapshot *snap)
{
	const struct rd_kafka_metadata *md;
	rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);

	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		snprintf(snap->last_error, sizeof(snap->last_error), "metadata: %s", rd_kafka_err2str(err));
		return;
	}
	for (int t = 0; t < md->topic_cnt; t++)
	{
		const struct rd_kafka_metadata_topic *topic = &md->topics[t];

		if (!lag_is_ours(ours, topic->topic))
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

/* wait for one admin result on queue; NULL (error recorded) on failure */
static rd_kafka_event_t *
lag_admin_result(rd_kafka_queue_t *queue, int timeout_ms, SkLagSnapshot *snap, const char *what)
{
	rd_kafka_event_t *event = rd_kafka_queue_poll(queue, timeout_ms);

	if (event == NULL)
	{
		snprintf(snap->last_error, sizeof(snap->last_error), "%s: no answer within %d ms", what, timeout_ms);
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

/* the groups to look at: streamkafka.lag_groups, '*' asking the cluster */
static List *
lag_groups(rd_kafka_t *rk, rd_kafka_queue_t *queue, int timeout_ms, SkLagSnapshot *snap)
{
	List	   *groups = NIL;
	rd_kafka_event_t *event;
	const rd_kafka_ConsumerGroupListing_t **listings;
	size_t		count;

	if (strcmp(sk_lag_groups, "*") != 0)
	{
		char	   *copy = pstrdup(sk_lag_groups);

		for (char *tok = strtok(copy, ", "); tok != NULL; tok = strtok(NULL, ", "))
			groups = lappend(groups, pstrdup(tok));
		return groups;
	}
	rd_kafka_ListConsumerGroups(rk, NULL, queue);
	if ((event = lag_admin_result(queue, timeout_ms, snap, "list groups")) == NULL)
		return NIL;
	listings = rd_kafka_ListConsumerGroups_result_valid(
		rd_kafka_event_ListConsumerGroups_result(event), &count);
	for (size_t i = 0; i < count; i++)
		groups = lappend(groups, pstrdup(rd_kafka_ConsumerGroupListing_group_id(listings[i])));
	rd_kafka_event_destroy(event);
	return groups;
}

/* one committed offset: a lag row, with the partition's high watermark */
static void
lag_add_row(rd_kafka_t *rk, const char *group, const rd_kafka_topic_partition_t *tp,
			int timeout_ms, SkLagSnapshot *snap)
{
	int64_t		low;
	int64_t		high;
	SkLagRow   *row;

	if (tp->offset < 0 || tp->err != RD_KAFKA_RESP_ERR_NO_ERROR ||
		snap->nlag >= SK_MAX_LAG_ROWS ||
		rd_kafka_query_watermark_offsets(rk, tp->topic, tp->partition, &low, &high,
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

/* one group's committed offsets */
static void
lag_read_group(rd_kafka_t *rk, rd_kafka_queue_t *queue, const char *group, List *ours,
			   int timeout_ms, SkLagSnapshot *snap)
{
	rd_kafka_ListConsumerGroupOffsets_t *request = rd_kafka_ListConsumerGroupOffsets_new(group, NULL);
	rd_kafka_event_t *event;
	const rd_kafka_group_result_t **results;
	size_t		count;
	bool		all_topics = strcmp(sk_lag_groups, "*") != 0;

	rd_kafka_ListConsumerGroupOffsets(rk, &request, 1, NULL, queue);
	rd_kafka_ListConsumerGroupOffsets_destroy(request);
	if ((event = lag_admin_result(queue, timeout_ms, snap, "list offsets")) == NULL)
		return;
	results = rd_kafka_ListConsumerGroupOffsets_result_groups(
		rd_kafka_event_ListConsumerGroupOffsets_result(event), &count);
	for (size_t g = 0; g < count; g++)
	{
		const rd_kafka_topic_partition_list_t *parts = rd_kafka_group_result_partitions(results[g]);

		for (int i = 0; parts != NULL && i < parts->cnt; i++)
			if (all_topics || lag_is_ours(ours, parts->elems[i].topic))
				lag_add_row(rk, group, &parts->elems[i], timeout_ms, snap);
	}
	rd_kafka_event_destroy(event);
}

/* the largest lag of a group on a topic (summed over partitions) */
static int64
lag_max_group_lag(const SkLagSnapshot *snap)
{
	int64		most = 0;

	for (int i = 0; i < snap->nlag; i++)
	{
		int64		sum = 0;

		for (int j = 0; j < snap->nlag; j++)
			if (strcmp(snap->lag[i].group_id, snap->lag[j].group_id) == 0 &&
				strcmp(snap->lag[i].topic, snap->lag[j].topic) == 0)
				sum += snap->lag[j].lag;
		most = Max(most, sum);
	}
	return most;
}

static int
lag_under_replicated(const SkLagSnapshot *snap)
{
	int			under = 0;

	for (int i = 0; i < snap->npartitions; i++)
		under += snap->partitions[i].nisr < snap->partitions[i].nreplicas;
	return under;
}

/*
 * lag_refresh - the monitor worker: a new snapshot of lag and partitions
 */
void
lag_refresh(rd_kafka_t *rk, int timeout_ms)
{
	SkLagSnapshot *snap = palloc0(sizeof(SkLagSnapshot));
	List	   *ours = lag_our_topics();
	rd_kafka_queue_t *queue = rd_kafka_queue_new(rk);
	ListCell   *lc;

	lag_read_metadata(rk, ours, timeout_ms, snap);
	if (sk_lag_groups[0] != '\0')
	{
		List	   *groups = lag_groups(rk, queue, timeout_ms, snap);

		foreach(lc, groups)
			lag_read_group(rk, queue, lfirst(lc), ours, timeout_ms, snap);
	}
	rd_kafka_queue_destroy(queue);
	snap->refreshed_at = GetCurrentTimestamp();
	snap->max_group_lag = lag_max_group_lag(snap);
	snap->under_replicated = lag_under_replicated(snap);
	LWLockAcquire(sk_lag->lock, LW_EXCLUSIVE);
	memcpy(&sk_lag->snapshot, snap, sizeof(SkLagSnapshot));
	LWLockRelease(sk_lag->lock);
	pfree(snap);
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

int64
monitor_max_lag(void)
{
	int64		lag;

	LWLockAcquire(sk_lag->lock, LW_SHARED);
	lag = sk_lag->snapshot.max_group_lag;
	LWLockRelease(sk_lag->lock);
	return lag;
}

int
monitor_under_replicated(void)
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
		values[5] = BoolGetDatum(r->nisr < r->nreplicas);
		values[6] = TimestampTzGetDatum(snap->refreshed_at);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
