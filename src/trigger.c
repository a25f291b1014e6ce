/*
 * trigger.c
 *		streamkafka_trigger(): turns a table's INSERT, UPDATE, DELETE and
 *		TRUNCATE into Kafka events, queued with the transaction (sent only if
 *		it commits, in commit order).
 *
 * Attached by kafka_stream_table() as an AFTER ... FOR EACH ROW trigger (and
 * an AFTER TRUNCATE statement trigger) with these arguments:
 *   topic, format ("json" or "debezium"), then any number of "k#N=column"
 *   (the key columns) and "c#N=column" (the columns in the row images; none:
 *   all), "tombstones" (a null-valued event after each delete) and
 *   "w=condition" (the row filter, see rowfilter.c).  N is
 *   the column's attribute number in the table the stream was set up on, so
 *   a renamed column is followed; a dropped image column leaves the images,
 *   a dropped key column stops the stream with an error saying so.
 *   Triggers made by 0.2.0 name columns only ("k=column").
 *
 * Row images are written by rowjson.c exactly as row_to_json() writes them,
 * so the JSON mapping of every type is PostgreSQL's: numeric exact,
 * timestamps ISO 8601, arrays as arrays, json/jsonb nested, domains as their
 * base type, enums as strings, TOASTed values in full.  Each trigger's layout
 * (columns, their conversions, the envelope's fixed parts) is cached until
 * the table changes; a row is deformed once for its image and its key.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "parser/parse_relation.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "event.h"
#include "pending.h"
#include "publish.h"
#include "rowfilter.h"
#include "rowjson.h"
#include "ring.h"
#include "settings.h"
#include "streamkafka.h"
#include "trigger.h"
#include "txmeta.h"

typedef enum ChangeFormat
{
	FORMAT_JSON,
	FORMAT_DEBEZIUM
} ChangeFormat;

/* the kind of change an event describes (an UPDATE of the key is two) */
typedef enum ChangeOp
{
	CHANGE_NONE,
	CHANGE_INSERT,
	CHANGE_UPDATE,
	CHANGE_DELETE,
	CHANGE_TRUNCATE,
	CHANGE_READ,				/* a row of a snapshot */
	CHANGE_READ_LAST			/* the last row of a snapshot */
} ChangeOp;

/* what one trigger needs, cached by trigger OID */
typedef struct TriggerLayout
{
	Oid			trigger_oid;	/* hash key */
	Oid			relid;
	bool		valid;
	MemoryContext context;		/* everything below; NULL before the first build */
	ChangeFormat format;
	char	   *topic;
	char	   *database;
	char	   *schema;
	char	   *table;
	char	   *names;			/* json: "database":..,"schema":..,"table":.., */
	RowJson		columns;		/* the row images */
	RowJson		key;
	bool		has_key;		/* false: keyless events */
	bool		tombstones;		/* a null-valued event after each delete */
	bool		has_filter;		/* false: every row */
	RowFilter	filter;
	Datum	   *values;			/* a deformed row */
	bool	   *isnull;
	/* the envelope around the row images, for the last kind of change seen */
	StringInfoData ends;		/* its head, then its tail */
	int			ends_head_len;
	ChangeOp	ends_op;
	TransactionId ends_xid;
	int64		ends_ts_us;
} TriggerLayout;

static HTAB *layouts = NULL;
static MemoryContext layout_context = NULL;

/* invalidate cached layouts of a relation (any relation: relid InvalidOid) */
static void
layouts_invalidate(Datum arg pg_attribute_unused(), Oid relid)
{
	HASH_SEQ_STATUS seq;
	TriggerLayout *layout;

	if (layouts == NULL)
		return;
	hash_seq_init(&seq, layouts);
	while ((layout = hash_seq_search(&seq)) != NULL)
		if (relid == InvalidOid || layout->relid == relid)
			layout->valid = false;
}

static void
layouts_init(void)
{
	HASHCTL		ctl = {0};

	layout_context = AllocSetContextCreate(TopMemoryContext, "streamkafka trigger layouts",
										   ALLOCSET_SMALL_SIZES);
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(TriggerLayout);
	ctl.hcxt = layout_context;
	layouts = hash_create("streamkafka trigger layouts", 16, &ctl,
						  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	CacheRegisterRelcacheCallback(layouts_invalidate, (Datum) 0);
}

static void
trigger_error(const char *message, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s", message),
			 detail ? errdetail("%s", detail) : 0,
			 errhint("Attach the trigger with kafka_stream_table().")));
}

/* ERROR: the trigger names a column the table does not have */
static void
column_missing(Relation rel, const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 errmsg("column \"%s\" of relation \"%s\" does not exist",
					name, RelationGetRelationName(rel)),
			 errhint("The table changed after kafka_stream_table(); call it again.")));
}

/* the attribute number of column "name" of rel, or ERROR */
static AttrNumber
column_attnum(Relation rel, const char *name)
{
	AttrNumber	attnum = attnameAttNum(rel, name, false);

	if (attnum == InvalidAttrNumber || attnum < 0)
		column_missing(rel, name);
	return attnum;
}

/*
 * trigger_root_relation - the table kafka_stream_table() attached the trigger
 * to: for a trigger cloned onto a partition, its topmost parent trigger's table
 */
static Oid
trigger_root_relation(Trigger *trigger, Relation rel)
{
	Oid			trigger_oid = trigger->tgoid;
	Oid			relid = RelationGetRelid(rel);
	Relation	catalog;

	if (!trigger->tgisclone)
		return relid;
	catalog = table_open(TriggerRelationId, AccessShareLock);
	for (;;)
	{
		ScanKeyData key;
		SysScanDesc scan;
		HeapTuple	tuple;
		Form_pg_trigger form;

		ScanKeyInit(&key, Anum_pg_trigger_oid, BTEqualStrategyNumber, F_OIDEQ,
					ObjectIdGetDatum(trigger_oid));
		scan = systable_beginscan(catalog, TriggerOidIndexId, true, NULL, 1, &key);
		tuple = systable_getnext(scan);
		if (!HeapTupleIsValid(tuple))
		{
			systable_endscan(scan);
			break;
		}
		form = (Form_pg_trigger) GETSTRUCT(tuple);
		relid = form->tgrelid;
		trigger_oid = form->tgparentid;
		systable_endscan(scan);
		if (!OidIsValid(trigger_oid))
			break;
	}
	table_close(catalog, AccessShareLock);
	return relid;
}

/*
 * column_by_number - the attribute number in rel of the column that was
 * number root_attnum of the root table when the stream was set up ("k#3=id":
 * root_attnum 3, name "id" then); InvalidAttrNumber if it was dropped
 */
static AttrNumber
column_by_number(Relation rel, Oid root_relid, const char *arg)
{
	char	   *end;
	long		root_attnum = strtol(arg, &end, 10);
	HeapTuple	tuple;
	Form_pg_attribute att;
	AttrNumber	attnum = InvalidAttrNumber;

	if (end == arg || *end != '=' || root_attnum <= 0 || root_attnum > MaxAttrNumber)
		trigger_error("malformed streamkafka_trigger column argument", arg);
	tuple = SearchSysCache2(ATTNUM, ObjectIdGetDatum(root_relid), Int16GetDatum(root_attnum));
	if (!HeapTupleIsValid(tuple))
		return InvalidAttrNumber;
	att = (Form_pg_attribute) GETSTRUCT(tuple);
	if (!att->attisdropped)
		attnum = root_relid == RelationGetRelid(rel) ? att->attnum :
			column_attnum(rel, NameStr(att->attname));
	ReleaseSysCache(tuple);
	return attnum;
}

/* ERROR: a key column of the stream was dropped */
static void
key_column_dropped(Relation rel, const char *arg)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 errmsg("a key column of the Kafka stream of table \"%s\" was dropped",
					RelationGetRelationName(rel)),
			 errdetail("The stream was set up with key column \"%s\".", strchr(arg, '=') + 1),
			 errhint("Call kafka_stream_table() again to choose the key columns.")));
}

static char *
json_names(const TriggerLayout *layout)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "\"database\":");
	escape_json(&buf, layout->database);
	appendStringInfoString(&buf, ",\"schema\":");
	escape_json(&buf, layout->schema);
	appendStringInfoString(&buf, ",\"table\":");
	escape_json(&buf, layout->table);
	appendStringInfoChar(&buf, ',');
	return buf.data;
}

/* build the layout of a trigger from its arguments */
static void
layout_build(TriggerLayout *layout, Trigger *trigger, Relation rel)
{
	MemoryContext old = MemoryContextSwitchTo(layout->context);
	TupleDesc	desc = RelationGetDescr(rel);
	int			nargs = trigger->tgnargs;
	char	  **args = trigger->tgargs;
	AttrNumber *key_attnums = palloc(sizeof(AttrNumber) * nargs);
	AttrNumber *column_attnums = palloc(sizeof(AttrNumber) * nargs);
	int			nkeys = 0;
	int			ncolumns = 0;
	int			listed_columns = 0;
	Oid			root_relid = InvalidOid;

	layout->tombstones = false;
	layout->has_filter = false;
	if (nargs < 2)
		trigger_error("streamkafka_trigger needs at least a topic and a format", NULL);
	if (strcmp(args[1], "json") == 0)
		layout->format = FORMAT_JSON;
	else if (strcmp(args[1], "debezium") == 0)
		layout->format = FORMAT_DEBEZIUM;
	else
		trigger_error("unknown change event format", args[1]);
	event_check_topic(args[0], strlen(args[0]));
	for (int i = 2; i < nargs; i++)
	{
		if (strncmp(args[i], "k#", 2) == 0)
		{
			if (root_relid == InvalidOid)
				root_relid = trigger_root_relation(trigger, rel);
			key_attnums[nkeys] = column_by_number(rel, root_relid, args[i] + 2);
			if (key_attnums[nkeys++] == InvalidAttrNumber)
				key_column_dropped(rel, args[i]);
		}
		else if (strncmp(args[i], "c#", 2) == 0)
		{
			if (root_relid == InvalidOid)
				root_relid = trigger_root_relation(trigger, rel);
			column_attnums[ncolumns] = column_by_number(rel, root_relid, args[i] + 2);
			listed_columns++;
			if (column_attnums[ncolumns] != InvalidAttrNumber)
				ncolumns++;
		}
		else if (strcmp(args[i], "tombstones") == 0)
			layout->tombstones = true;
		else if (strncmp(args[i], "w=", 2) == 0)
		{
			rowfilter_compile(&layout->filter, rel, args[i] + 2);
			layout->has_filter = true;
		}
		else if (strncmp(args[i], "k=", 2) == 0)
			key_attnums[nkeys++] = column_attnum(rel, args[i] + 2);
		else if (strncmp(args[i], "c=", 2) == 0)
			column_attnums[ncolumns++] = column_attnum(rel, args[i] + 2);
		else
			trigger_error("unknown streamkafka_trigger argument", args[i]);
	}
	if (listed_columns > 0 && ncolumns == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("every column of the Kafka stream of table \"%s\" was dropped",
						RelationGetRelationName(rel)),
				 errhint("Call kafka_stream_table() again to choose the columns.")));

	layout->relid = RelationGetRelid(rel);
	layout->topic = pstrdup(args[0]);
	layout->database = get_database_name(MyDatabaseId);
	layout->schema = get_namespace_name(RelationGetNamespace(rel));
	layout->table = pstrdup(RelationGetRelationName(rel));
	layout->names = json_names(layout);
	rowjson_init(&layout->columns, desc, column_attnums, ncolumns);
	layout->has_key = nkeys > 0;
	if (layout->has_key)
		rowjson_init(&layout->key, desc, key_attnums, nkeys);
	layout->values = palloc(sizeof(Datum) * desc->natts);
	layout->isnull = palloc(sizeof(bool) * desc->natts);
	initStringInfo(&layout->ends);
	layout->ends_op = CHANGE_NONE;
	layout->valid = true;
	MemoryContextSwitchTo(old);
}

static TriggerLayout *
layout_get(Trigger *trigger, Relation rel)
{
	bool		found;
	TriggerLayout *layout;

	if (layouts == NULL)
		layouts_init();
	layout = hash_search(layouts, &trigger->tgoid, HASH_ENTER, &found);
	if (!found)
		layout->context = NULL;
	if (!found || !layout->valid)
	{
		/* a stale layout's memory goes with its context */
		layout->valid = false;
		if (layout->context != NULL)
			MemoryContextDelete(layout->context);
		layout->context = AllocSetContextCreate(layout_context, "streamkafka trigger layout",
												ALLOCSET_SMALL_SIZES);
		layout_build(layout, trigger, rel);
	}
	return layout;
}

/*
 * append_image - append the JSON image of a row, or null; with a key buffer
 * and a key, also write the row's key (from the same deformed values)
 */
static void
append_image(StringInfo buf, TriggerLayout *layout, HeapTuple tuple, TupleDesc desc,
			 StringInfo key)
{
	if (tuple == NULL)
	{
		appendStringInfoString(buf, "null");
		return;
	}
	heap_deform_tuple(tuple, desc, layout->values, layout->isnull);
	rowjson_append(buf, &layout->columns, layout->values, layout->isnull);
	if (layout->has_key)
		rowjson_append(key, &layout->key, layout->values, layout->isnull);
}

static const char *
op_name(ChangeOp op, ChangeFormat format)
{
	switch (op)
	{
		case CHANGE_INSERT:
			return format == FORMAT_JSON ? "insert" : "c";
		case CHANGE_UPDATE:
			return format == FORMAT_JSON ? "update" : "u";
		case CHANGE_DELETE:
			return format == FORMAT_JSON ? "delete" : "d";
		case CHANGE_READ:
		case CHANGE_READ_LAST:
			return format == FORMAT_JSON ? "read" : "r";
		default:
			return format == FORMAT_JSON ? "truncate" : "t";
	}
}

static ChangeOp
trigger_op(TriggerData *td)
{
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		return CHANGE_INSERT;
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		return CHANGE_UPDATE;
	if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		return CHANGE_DELETE;
	return CHANGE_TRUNCATE;
}

static void
append_json_field(StringInfo buf, const char *name, const char *value)
{
	appendStringInfo(buf, "\"%s\":", name);
	escape_json(buf, value);
	appendStringInfoChar(buf, ',');
}

/* "name":xid, (null for a snapshot's rows: they belong to no transaction) */
static void
append_xid_field(StringInfo buf, const char *name, TransactionId xid)
{
	if (TransactionIdIsValid(xid))
		appendStringInfo(buf, "\"%s\":%u,", name, xid);
	else
		appendStringInfo(buf, "\"%s\":null,", name);
}

/* Debezium's times of a change: "ts_ms":..,"ts_us":..,"ts_ns":.. */
static void
append_debezium_times(StringInfo buf, int64 ts_us)
{
	appendStringInfo(buf, "\"ts_ms\":" INT64_FORMAT ",\"ts_us\":" INT64_FORMAT
					 ",\"ts_ns\":" INT64_FORMAT, ts_us / 1000, ts_us, ts_us * 1000);
}

/*
 * envelope_ends - make layout->ends the envelope's head and tail for this
 * change: they depend only on the operation, the transaction and the
 * statement's start, so a statement writing a million rows builds them once.
 * The tail stops before the transaction block: envelope_close() ends it.
 */
static void
envelope_ends(TriggerLayout *layout, ChangeOp op)
{
	StringInfo	buf = &layout->ends;
	int64		ts_us = sk_unix_us(GetCurrentStatementStartTimestamp());
	int64		ts_ms = ts_us / 1000;
	TransactionId xid = GetTopTransactionIdIfAny();

	if (op == layout->ends_op && xid == layout->ends_xid && ts_us == layout->ends_ts_us)
		return;
	resetStringInfo(buf);
	appendStringInfoChar(buf, '{');
	if (layout->format == FORMAT_JSON)
	{
		append_json_field(buf, "op", op_name(op, layout->format));
		appendStringInfoString(buf, layout->names);
		append_xid_field(buf, "txid", xid);
		appendStringInfo(buf, "\"ts_ms\":" INT64_FORMAT ",\"before\":", ts_ms);
		layout->ends_head_len = buf->len;
	}
	else
	{
		appendStringInfoString(buf, "\"before\":");
		layout->ends_head_len = buf->len;
		appendStringInfoString(buf, ",\"source\":{");
		append_json_field(buf, "version", "streamkafka-" STREAMKAFKA_VERSION);
		append_json_field(buf, "connector", "postgresql");
		append_json_field(buf, "name", layout->database);
		append_debezium_times(buf, ts_us);
		appendStringInfo(buf, ",\"snapshot\":\"%s\",\"sequence\":null,",
						 op == CHANGE_READ ? "true" : op == CHANGE_READ_LAST ? "last" : "false");
		append_json_field(buf, "db", layout->database);
		append_json_field(buf, "schema", layout->schema);
		append_json_field(buf, "table", layout->table);
		append_xid_field(buf, "txId", xid);
		appendStringInfoString(buf, "\"lsn\":null,\"xmin\":null},");
		append_json_field(buf, "op", op_name(op, layout->format));
		append_debezium_times(buf, ts_us);
	}
	layout->ends_op = op;
	layout->ends_xid = xid;
	layout->ends_ts_us = ts_us;
}

/* the buffers one change is written into, kept for the backend's life */
typedef struct ChangeBuffers
{
	StringInfoData value;
	StringInfoData before_key;	/* the key of the before image */
	StringInfoData after_key;	/* the key of the after image */
	StringInfoData headers;		/* packed: a key change's __debezium.* header */
	uint16		nheaders;
} ChangeBuffers;

static ChangeBuffers *
change_buffers(void)
{
	static ChangeBuffers *buffers = NULL;

	if (buffers == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		buffers = palloc(sizeof(ChangeBuffers));
		initStringInfo(&buffers->value);
		initStringInfo(&buffers->before_key);
		initStringInfo(&buffers->after_key);
		initStringInfo(&buffers->headers);
		buffers->nheaders = 0;
		MemoryContextSwitchTo(old);
	}
	return buffers;
}

/*
 * build_envelope - the envelope of one change (head, before image, after
 * image, tail) in buffers->value, and the keys of its images
 */
static void
build_envelope(ChangeBuffers *buffers, TriggerLayout *layout, TupleDesc desc, ChangeOp op,
			   HeapTuple before, HeapTuple after)
{
	resetStringInfo(&buffers->value);
	resetStringInfo(&buffers->before_key);
	resetStringInfo(&buffers->after_key);
	envelope_ends(layout, op);
	appendBinaryStringInfo(&buffers->value, layout->ends.data, layout->ends_head_len);
	append_image(&buffers->value, layout, before, desc, &buffers->before_key);
	appendStringInfoString(&buffers->value, ",\"after\":");
	append_image(&buffers->value, layout, after, desc, &buffers->after_key);
	appendBinaryStringInfo(&buffers->value, layout->ends.data + layout->ends_head_len,
						   layout->ends.len - layout->ends_head_len);
}

/*
 * envelope_close - end an envelope with its place in the transaction when
 * streamkafka.transaction_topic is set (counting the event; sending the
 * transaction's BEGIN first if it is the first), else with none: a null
 * transaction block in Debezium's envelope, no block in ours
 */
static void
envelope_close(StringInfo value, TriggerLayout *layout, Relation rel, bool transactional)
{
	TxOrder		order;

	if (transactional &&
		txmeta_count_change(RelationGetRelid(rel), layout->schema, layout->table, &order))
	{
		appendStringInfoString(value, ",\"transaction\":{\"id\":");
		escape_json(value, order.id);
		appendStringInfo(value, ",\"total_order\":" UINT64_FORMAT
						 ",\"data_collection_order\":" UINT64_FORMAT "}}",
						 order.total_order, order.collection_order);
	}
	else if (layout->format == FORMAT_DEBEZIUM)
		appendStringInfoString(value, ",\"transaction\":null}");
	else
		appendStringInfoChar(value, '}');
}

/*
 * queue_change - queue one event of the stream with the transaction, or at
 * once (a snapshot's row); value NULL is a tombstone, key NULL none
 */
static void
queue_change(TriggerLayout *layout, Relation rel, const StringInfo value, const StringInfo key,
			 bool transactional)
{
	ChangeBuffers *buffers = change_buffers();
	SkEvent		event = {0};

	if (value != NULL)
		envelope_close(value, layout, rel, transactional);
	if (value != NULL && buffers->nheaders > 0)
	{
		event.headers = buffers->headers.data;
		event.headers_len = buffers->headers.len;
		event.nheaders = buffers->nheaders;
	}
	event.value = value ? value->data : NULL;
	event.value_len = value ? value->len : -1;
	event.key = key ? key->data : NULL;
	event.key_len = key ? key->len : -1;
	event.topic = layout->topic;
	event.topic_len = strlen(layout->topic);
	event.partition = -1;
	/* a snapshot's row is not dropped: the consumer's copy would miss it */
	event.never_dropped = !transactional;
	if (transactional)
		pending_note_table(RelationGetRelid(rel));
	publish(&event, transactional);
}

static void queue_row_change(ChangeBuffers *buffers, TriggerLayout *layout, Relation rel,
							 ChangeOp op, HeapTuple before, HeapTuple after);

/* the header the next row event carries (NULL name: none) */
static void
set_key_header(ChangeBuffers *buffers, const char *name, const char *key, int key_len)
{
	resetStringInfo(&buffers->headers);
	buffers->nheaders = 0;
	if (name == NULL)
		return;
	event_append_header(&buffers->headers, name, strlen(name), key, key_len);
	buffers->nheaders = 1;
}

/*
 * queue_key_change - an UPDATE that changed the key: a delete under the old
 * key (and its tombstone) carrying the new key in a __debezium.newkey
 * header, then an insert under the new key carrying the old one in
 * __debezium.oldkey, as Debezium sends them
 */
static void
queue_key_change(ChangeBuffers *buffers, TriggerLayout *layout, Relation rel,
				 HeapTuple before, HeapTuple after)
{
	/* copies: building each event rewrites the buffers' keys */
	char	   *old_key = pnstrdup(buffers->before_key.data, buffers->before_key.len);
	char	   *new_key = pnstrdup(buffers->after_key.data, buffers->after_key.len);

	set_key_header(buffers, "__debezium.newkey", new_key, strlen(new_key));
	queue_row_change(buffers, layout, rel, CHANGE_DELETE, before, NULL);
	set_key_header(buffers, "__debezium.oldkey", old_key, strlen(old_key));
	queue_row_change(buffers, layout, rel, CHANGE_INSERT, NULL, after);
	set_key_header(buffers, NULL, NULL, 0);
	pfree(old_key);
	pfree(new_key);
}

/*
 * queue_row_change - the events of one row change.  A delete is followed by
 * a tombstone (same key, null value) when the stream has them, so a
 * compacted topic forgets the row.  An UPDATE that changes the key is a
 * delete under the old key (and its tombstone) then an insert under the
 * new one, so a consumer keyed by the key learns the old key is gone.
 */
static void
queue_row_change(ChangeBuffers *buffers, TriggerLayout *layout, Relation rel, ChangeOp op,
				 HeapTuple before, HeapTuple after)
{
	TupleDesc	desc = RelationGetDescr(rel);
	StringInfo	before_key = layout->has_key ? &buffers->before_key : NULL;
	StringInfo	after_key = layout->has_key ? &buffers->after_key : NULL;

	build_envelope(buffers, layout, desc, op, before, after);
	if (op == CHANGE_UPDATE && layout->has_key &&
		(buffers->before_key.len != buffers->after_key.len ||
		 memcmp(buffers->before_key.data, buffers->after_key.data,
				buffers->after_key.len) != 0))
	{
		queue_key_change(buffers, layout, rel, before, after);
		return;
	}
	queue_change(layout, rel, &buffers->value, after ? after_key : before_key, true);
	if (op == CHANGE_DELETE && layout->tombstones && layout->has_key)
		queue_change(layout, rel, NULL, before_key, true);
}

/*
 * filtered_change - what a stream with a row filter sees of a row change:
 * only the images that match.  An UPDATE into the filter is an insert, out
 * of it a delete, so a consumer's copy stays equal to the filtered table;
 * CHANGE_NONE when no image matches.
 */
static ChangeOp
filtered_change(TriggerLayout *layout, ChangeOp op, HeapTuple *before, HeapTuple *after)
{
	if (!layout->has_filter)
		return op;
	if (*before != NULL && !rowfilter_matches(&layout->filter, *before))
		*before = NULL;
	if (*after != NULL && !rowfilter_matches(&layout->filter, *after))
		*after = NULL;
	if (*before != NULL && *after != NULL)
		return CHANGE_UPDATE;
	if (*after != NULL)
		return CHANGE_INSERT;
	return *before != NULL ? CHANGE_DELETE : CHANGE_NONE;
}

PG_FUNCTION_INFO_V1(streamkafka_trigger);

/*
 * streamkafka_trigger - queue the events of one change with the transaction
 */
Datum
streamkafka_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TriggerLayout *layout;
	ChangeOp	op;
	HeapTuple	before;
	HeapTuple	after;
	ChangeBuffers *buffers;

	streamkafka_require_preload();
	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("streamkafka_trigger must be fired as an AFTER trigger"),
				 errhint("Attach it with kafka_stream_table().")));
	layout = layout_get(td->tg_trigger, td->tg_relation);
	buffers = change_buffers();
	set_key_header(buffers, NULL, NULL, 0);	/* none left by an error */
	op = trigger_op(td);
	if (!TRIGGER_FIRED_FOR_ROW(td->tg_event))
	{
		/* a TRUNCATE: no row images, no key */
		build_envelope(buffers, layout, RelationGetDescr(td->tg_relation), op, NULL, NULL);
		queue_change(layout, td->tg_relation, &buffers->value, NULL, true);
		return PointerGetDatum(NULL);
	}
	before = op == CHANGE_INSERT ? NULL : td->tg_trigtuple;
	after = op == CHANGE_UPDATE ? td->tg_newtuple : op == CHANGE_INSERT ? td->tg_trigtuple : NULL;
	op = filtered_change(layout, op, &before, &after);
	if (op != CHANGE_NONE)
		queue_row_change(buffers, layout, td->tg_relation, op, before, after);
	return PointerGetDatum(NULL);
}

/*
 * trigger_snapshot_row - queue one row of a snapshot of the table the
 * trigger streams, at once, as that stream's envelope would carry it (op r,
 * or "read"); returns the bytes of its key and value, 0 if the stream's row
 * filter leaves the row out
 */
uint64
trigger_snapshot_row(Trigger *trigger, Relation rel, HeapTuple row, bool last)
{
	TriggerLayout *layout = layout_get(trigger, rel);
	ChangeBuffers *buffers = change_buffers();

	if (layout->has_filter && !rowfilter_matches(&layout->filter, row))
		return 0;
	set_key_header(buffers, NULL, NULL, 0);
	build_envelope(buffers, layout, RelationGetDescr(rel), last ? CHANGE_READ_LAST : CHANGE_READ,
				   NULL, row);
	queue_change(layout, rel, &buffers->value, layout->has_key ? &buffers->after_key : NULL,
				 false);
	return buffers->value.len + (layout->has_key ? buffers->after_key.len : 0);
}

PG_FUNCTION_INFO_V1(streamkafka_check_topic);

/*
 * streamkafka_check_topic - kafka_check_topic(): ERROR unless the name is a
 * legal Kafka topic (the check kafka_publish makes)
 */
Datum
streamkafka_check_topic(PG_FUNCTION_ARGS)
{
	text	   *topic;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("Kafka topic must not be null")));
	topic = PG_GETARG_TEXT_PP(0);
	event_check_topic(VARDATA_ANY(topic), VARSIZE_ANY_EXHDR(topic));
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(streamkafka_check_row_filter);

/*
 * streamkafka_check_row_filter - kafka_check_row_filter(tbl, row_filter):
 * ERROR unless the condition compiles as the stream's trigger will compile
 * it (so kafka_stream_table fails at the call, not at every later write)
 */
Datum
streamkafka_check_row_filter(PG_FUNCTION_ARGS)
{
	MemoryContext scratch = AllocSetContextCreate(CurrentMemoryContext,
												  "streamkafka row filter check",
												  ALLOCSET_SMALL_SIZES);
	MemoryContext old;
	Relation	rel;
	RowFilter	filter;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_VOID();
	rel = table_open(PG_GETARG_OID(0), AccessShareLock);
	old = MemoryContextSwitchTo(scratch);
	rowfilter_compile(&filter, rel, text_to_cstring(PG_GETARG_TEXT_PP(1)));
	FreeExprContext(filter.econtext, true);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(scratch);
	table_close(rel, AccessShareLock);
	PG_RETURN_VOID();
}
