/*
 * rowjson.c
 *		Writes a row (or some of its columns) as a JSON object, byte for byte
 *		as row_to_json() does, but with each column's conversion chosen once
 *		(rowjson_init) instead of looked up for every row: the common types
 *		have a direct path, every other type goes through to_json() itself.
 *
 * The result matches PostgreSQL's JSON mapping: numbers as numbers (numeric
 * exactly as written; NaN and infinities as strings), timestamps in ISO 8601,
 * json and jsonb nested, arrays as arrays, domains as their base type.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgroids.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"

#include "rowjson.h"

static RowJsonKind
kind_of(Oid base_type)
{
	switch (base_type)
	{
		case INT2OID:
			return RJ_INT2;
		case INT4OID:
			return RJ_INT4;
		case INT8OID:
			return RJ_INT8;
		case BOOLOID:
			return RJ_BOOL;
		case NUMERICOID:
		case FLOAT4OID:
		case FLOAT8OID:
			return RJ_NUMBER;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
			return RJ_TEXT;
		case JSONOID:
			return RJ_JSON;
		case JSONBOID:
			return RJ_JSONB;
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return RJ_DATETIME;
		default:
			return RJ_OTHER;
	}
}

/* to_json() for one column type: it reads its argument type from fn_expr */
static void
init_to_json(FmgrInfo *func, Form_pg_attribute att)
{
	fmgr_info_cxt(F_TO_JSON, func, CurrentMemoryContext);
	func->fn_expr = (Node *) makeFuncExpr(F_TO_JSON, JSONOID,
										  list_make1(makeNullConst(att->atttypid,
																   att->atttypmod,
																   att->attcollation)),
										  InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
}

/*
 * rowjson_init - prepare the columns attnums (all live columns when
 * nattnums is 0) of desc.  Allocates in CurrentMemoryContext.
 */
void
rowjson_init(RowJson *rj, TupleDesc desc, const AttrNumber *attnums, int nattnums)
{
	int			n = nattnums > 0 ? nattnums : desc->natts;

	rj->columns = palloc0(sizeof(RowJsonColumn) * n);
	rj->ncolumns = 0;
	for (int i = 0; i < n; i++)
	{
		AttrNumber	attnum = nattnums > 0 ? attnums[i] : i + 1;
		Form_pg_attribute att = TupleDescAttr(desc, attnum - 1);
		RowJsonColumn *col;
		StringInfoData key;

		if (att->attisdropped)
			continue;
		col = &rj->columns[rj->ncolumns++];
		col->attnum = attnum;
		col->base_type = getBaseType(att->atttypid);
		col->kind = kind_of(col->base_type);
		initStringInfo(&key);
		escape_json(&key, NameStr(att->attname));
		appendStringInfoChar(&key, ':');
		col->key = key.data;
		if (col->kind == RJ_NUMBER)
		{
			Oid			output;
			bool		varlena;

			getTypeOutputInfo(col->base_type, &output, &varlena);
			fmgr_info_cxt(output, &col->func, CurrentMemoryContext);
		}
		else if (col->kind == RJ_OTHER)
			init_to_json(&col->func, att);
	}
}

/* a number's text, unquoted if JSON accepts it as a number */
static void
append_number(StringInfo buf, const char *text)
{
	const char *p = text[0] == '-' ? text + 1 : text;

	if (*p >= '0' && *p <= '9')
		appendStringInfoString(buf, text);
	else
		escape_json(buf, text);
}

/* the escape escape_json() writes for a byte that needs one */
static void
append_escape(StringInfo buf, unsigned char c)
{
	switch (c)
	{
		case '\b':
			appendStringInfoString(buf, "\\b");
			break;
		case '\f':
			appendStringInfoString(buf, "\\f");
			break;
		case '\n':
			appendStringInfoString(buf, "\\n");
			break;
		case '\r':
			appendStringInfoString(buf, "\\r");
			break;
		case '\t':
			appendStringInfoString(buf, "\\t");
			break;
		case '"':
			appendStringInfoString(buf, "\\\"");
			break;
		case '\\':
			appendStringInfoString(buf, "\\\\");
			break;
		default:
			appendStringInfo(buf, "\\u%04x", (int) c);
			break;
	}
}

/*
 * append_text - a text value as a JSON string, byte for byte as
 * escape_json() writes it, but read in place (no C-string copy) and copied
 * in runs between the bytes that need an escape
 */
static void
append_text(StringInfo buf, Datum value)
{
	text	   *t = DatumGetTextPP(value);
	const unsigned char *p = (const unsigned char *) VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);
	int			run = 0;

	enlargeStringInfo(buf, len + 2);
	appendStringInfoCharMacro(buf, '"');
	for (int i = 0; i < len; i++)
	{
		if (p[i] >= 0x20 && p[i] != '"' && p[i] != '\\')
			continue;
		appendBinaryStringInfo(buf, (const char *) p + run, i - run);
		append_escape(buf, p[i]);
		run = i + 1;
	}
	appendBinaryStringInfo(buf, (const char *) p + run, len - run);
	appendStringInfoCharMacro(buf, '"');
}

static void
append_value(StringInfo buf, const RowJsonColumn *col, Datum value)
{
	char		digits[MAXDATELEN + 1];

	switch (col->kind)
	{
		case RJ_INT2:
			appendBinaryStringInfo(buf, digits, pg_ltoa(DatumGetInt16(value), digits));
			break;
		case RJ_INT4:
			appendBinaryStringInfo(buf, digits, pg_ltoa(DatumGetInt32(value), digits));
			break;
		case RJ_INT8:
			appendBinaryStringInfo(buf, digits, pg_lltoa(DatumGetInt64(value), digits));
			break;
		case RJ_BOOL:
			appendStringInfoString(buf, DatumGetBool(value) ? "true" : "false");
			break;
		case RJ_NUMBER:
			append_number(buf, OutputFunctionCall((FmgrInfo *) &col->func, value));
			break;
		case RJ_TEXT:
			append_text(buf, value);
			break;
		case RJ_JSON:
			{
				text	   *json = DatumGetTextPP(value);

				appendBinaryStringInfo(buf, VARDATA_ANY(json), VARSIZE_ANY_EXHDR(json));
				break;
			}
		case RJ_JSONB:
			{
				Jsonb	   *jsonb = DatumGetJsonbP(value);

				appendStringInfoString(buf, JsonbToCString(NULL, &jsonb->root, VARSIZE(jsonb)));
				break;
			}
		case RJ_DATETIME:
			appendStringInfoChar(buf, '"');
			appendStringInfoString(buf, JsonEncodeDateTime(digits, value, col->base_type, NULL));
			appendStringInfoChar(buf, '"');
			break;
		case RJ_OTHER:
			{
				text	   *json = DatumGetTextPP(FunctionCall1((FmgrInfo *) &col->func, value));

				appendBinaryStringInfo(buf, VARDATA_ANY(json), VARSIZE_ANY_EXHDR(json));
				break;
			}
	}
}

/*
 * rowjson_append - append the JSON object of a deformed row (values and
 * isnull indexed by attnum - 1)
 */
void
rowjson_append(StringInfo buf, const RowJson *rj, const Datum *values, const bool *isnull)
{
	appendStringInfoChar(buf, '{');
	for (int i = 0; i < rj->ncolumns; i++)
	{
		const RowJsonColumn *col = &rj->columns[i];

		if (i > 0)
			appendStringInfoChar(buf, ',');
		appendStringInfoString(buf, col->key);
		if (isnull[col->attnum - 1])
			appendStringInfoString(buf, "null");
		else
			append_value(buf, col, values[col->attnum - 1]);
	}
	appendStringInfoChar(buf, '}');
}
