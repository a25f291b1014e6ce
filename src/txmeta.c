/*
 * txmeta.c
 *		Transaction metadata of table streams (streamkafka.transaction_topic):
 *		counts a transaction's change events per table, gives each its place
 *		in the transaction, and sends a BEGIN and an END event to the
 *		transaction topic in Debezium's transaction metadata format.
 *
 * A transaction's first counted change event sends BEGIN just before it;
 * END, with the counts, is sent at PRE_COMMIT (pending.c calls
 * txmeta_pre_commit before it reserves the transaction's block).  Both are
 * transactional events like the changes: sent only if the transaction
 * commits, in the same queue block (memory mode) or WAL transaction
 * (durable mode), so a consumer never sees an END without its events.
 * Keyed by the transaction's id, BEGIN and END land in one partition, in
 * that order.
 *
 * Counted: every change event with row images or a TRUNCATE's.  Not
 * counted, as in Debezium: tombstones, snapshot rows (they belong to no
 * transaction) and kafka_publish's events.  A rolled-back savepoint's events
 * are not sent, so its counts are taken back (savepoints.c: a mark is pushed
 * only when a deeper subtransaction counts its first event).
 *
 * The setting is read once per transaction, at its first change event, so a
 * reload in the middle cannot leave a BEGIN without its END.
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "lib/stringinfo.h"
#include "storage/proc.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "publish.h"
#include "savepoints.h"
#include "settings.h"
#include "streamkafka.h"
#include "txmeta.h"

/* the change events of one table in the transaction */
typedef struct TableCount
{
	Oid			relid;
	char	   *collection;		/* "schema.table", as Debezium names it */
	uint64		count;
} TableCount;

/* the counts when a subtransaction counted its first event */
typedef struct TxMark
{
	bool		begun;
	uint64		total;
	int			ntables;
	uint64	   *counts;			/* tables[i].count for i < ntables */
} TxMark;

/* everything below belongs to the transaction with local id xact_lxid */
static LocalTransactionId xact_lxid = InvalidLocalTransactionId;
static MemoryContext xact_context = NULL;	/* reset when a new one starts */
static bool active;				/* a transaction topic was set at its first event */
static char *topic;				/* that topic */
static char id[24];				/* the transaction's id: its 64-bit xid */
static bool begun;				/* BEGIN is among its events */
static bool ended;				/* END is */
static uint64 total;
static TableCount *tables;
static int	ntables;
static int	max_tables;
static SavepointMarks marks;	/* of TxMark */

static void txmeta_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
									SubTransactionId parentSubid, void *arg);

/* start the current transaction's metadata at its first change event */
static void
txmeta_start(void)
{
	if (xact_context == NULL)
	{
		xact_context = AllocSetContextCreate(TopMemoryContext,
											 "streamkafka transaction metadata",
											 ALLOCSET_SMALL_SIZES);
		RegisterSubXactCallback(txmeta_subxact_callback, NULL);
	}
	MemoryContextReset(xact_context);
	xact_lxid = MyProc->SK_lxid;
	active = sk_transaction_topic[0] != '\0';
	begun = ended = false;
	total = 0;
	tables = NULL;
	ntables = max_tables = 0;
	savepoints_init(&marks, xact_context, sizeof(TxMark));
	if (!active)
		return;
	topic = MemoryContextStrdup(xact_context, sk_transaction_topic);
	snprintf(id, sizeof(id), UINT64_FORMAT,
			 U64FromFullTransactionId(GetTopFullTransactionId()));
}

/* true if the current transaction sends metadata and has counted events */
static bool
txmeta_counting(void)
{
	return xact_lxid == MyProc->SK_lxid && active && total > 0;
}

/* remember the counts before a subtransaction's first event */
static void
txmeta_mark_if_needed(void)
{
	TxMark	   *mark = savepoints_mark(&marks, GetCurrentTransactionNestLevel());

	if (mark == NULL)
		return;
	mark->begun = begun;
	mark->total = total;
	mark->ntables = ntables;
	mark->counts = MemoryContextAlloc(xact_context, Max(ntables, 1) * sizeof(uint64));
	for (int i = 0; i < ntables; i++)
		mark->counts[i] = tables[i].count;
}

/* take back the counts of a rolled-back subtransaction at nesting level */
static void
txmeta_rollback_to(int level)
{
	TxMark	   *mark = savepoints_rollback(&marks, level);

	if (mark == NULL)
		return;
	begun = mark->begun;
	total = mark->total;
	ntables = mark->ntables;
	for (int t = 0; t < ntables; t++)
		tables[t].count = mark->counts[t];
}

static void
txmeta_subxact_callback(SubXactEvent event,
						SubTransactionId mySubid pg_attribute_unused(),
						SubTransactionId parentSubid pg_attribute_unused(),
						void *arg pg_attribute_unused())
{
	if (marks.count == 0 || xact_lxid != MyProc->SK_lxid)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
		txmeta_rollback_to(GetCurrentTransactionNestLevel());
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
		savepoints_commit(&marks, GetCurrentTransactionNestLevel());
}

/* the transaction's entry for table relid, made at its first event */
static TableCount *
txmeta_table(Oid relid, const char *schema, const char *table)
{
	for (int i = 0; i < ntables; i++)
		if (tables[i].relid == relid)
			return &tables[i];
	if (ntables == max_tables)
	{
		max_tables = Max(8, max_tables * 2);
		tables = tables ? repalloc(tables, max_tables * sizeof(TableCount))
			: MemoryContextAlloc(xact_context, max_tables * sizeof(TableCount));
	}
	tables[ntables].relid = relid;
	tables[ntables].collection = MemoryContextAlloc(xact_context,
													strlen(schema) + strlen(table) + 2);
	sprintf(tables[ntables].collection, "%s.%s", schema, table);
	tables[ntables].count = 0;
	return &tables[ntables++];
}

/* send a BEGIN or END event (with the transaction) to the transaction topic */
static void
txmeta_send(const char *status)
{
	StringInfoData key;
	StringInfoData value;
	SkEvent		event = {0};
	bool		end = strcmp(status, "END") == 0;
	TimestampTz ts = end ? GetCurrentTimestamp() : GetCurrentTransactionStartTimestamp();

	initStringInfo(&key);
	initStringInfo(&value);
	appendStringInfo(&key, "{\"id\":\"%s\"}", id);
	appendStringInfo(&value, "{\"status\":\"%s\",\"id\":\"%s\",\"event_count\":", status, id);
	if (!end)
		appendStringInfoString(&value, "null,\"data_collections\":null");
	else
	{
		appendStringInfo(&value, UINT64_FORMAT ",\"data_collections\":[", total);
		for (int i = 0; i < ntables; i++)
		{
			if (tables[i].count == 0)
				continue;		/* all its events were rolled back */
			if (value.data[value.len - 1] == '}')
				appendStringInfoChar(&value, ',');
			appendStringInfoString(&value, "{\"data_collection\":");
			escape_json(&value, tables[i].collection);
			appendStringInfo(&value, ",\"event_count\":" UINT64_FORMAT "}", tables[i].count);
		}
		appendStringInfoChar(&value, ']');
	}
	appendStringInfo(&value, ",\"ts_ms\":" INT64_FORMAT "}", sk_unix_ms(ts));
	event.topic = topic;
	event.topic_len = strlen(topic);
	event.key = key.data;
	event.key_len = key.len;
	event.value = value.data;
	event.value_len = value.len;
	event.partition = -1;
	publish(&event, true);
	pfree(key.data);
	pfree(value.data);
}

/*
 * txmeta_count_change - count one change event of table relid in the
 * current transaction, sending BEGIN first if it is the first; false (and
 * order untouched) when the transaction sends no metadata
 */
bool
txmeta_count_change(Oid relid, const char *schema, const char *table, TxOrder *order)
{
	TableCount *entry;

	if (xact_lxid != MyProc->SK_lxid)
		txmeta_start();
	if (!active)
		return false;
	Assert(!ended);
	txmeta_mark_if_needed();
	if (!begun)
	{
		txmeta_send("BEGIN");
		begun = true;
	}
	entry = txmeta_table(relid, schema, table);
	entry->count++;
	total++;
	order->id = id;
	order->total_order = total;
	order->collection_order = entry->count;
	return true;
}

/*
 * txmeta_pre_commit - at PRE_COMMIT (or PRE_PREPARE): send the END event of
 * a transaction that counted change events
 */
void
txmeta_pre_commit(void)
{
	if (!txmeta_counting() || ended)
		return;
	txmeta_send("END");
	ended = true;
}
