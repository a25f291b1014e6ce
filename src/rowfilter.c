/*
 * rowfilter.c
 *		The row filter of a streamed table (kafka_stream_table's row_filter):
 *		a boolean SQL expression over the table's columns, compiled once per
 *		trigger layout and evaluated against each changed row.
 *
 * The expression runs inside the trigger, that is as whichever role writes
 * the table.  So that setting up a stream cannot plant code that later runs
 * with a writer's privileges, it may use only the table's columns,
 * constants, and PostgreSQL's own immutable functions and operators over
 * built-in types (the rule PostgreSQL applies to publication row filters):
 * no user-defined function, operator or type, no subquery, no system column.
 * Names are looked up with search_path pg_catalog, as kafka_stream_table
 * does, so the writer's search_path cannot change what the filter means.
 */
#include "postgres.h"

#include "access/transam.h"
#include "catalog/pg_proc.h"
#include "executor/executor.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "parser/parse_collate.h"
#include "parser/parse_expr.h"
#include "parser/parse_relation.h"
#include "parser/parser.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "rowfilter.h"

/* ERROR: the filter uses something a row filter may not */
static void
rowfilter_refuse(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("the row filter of a Kafka stream cannot use %s", what),
			 errdetail("The filter runs as every role that writes the table, so it may use "
					   "only the table's columns, constants, and built-in immutable "
					   "functions and operators over built-in types."),
			 errhint("Write the condition with the table's columns, e.g. "
					 "row_filter => 'region = ''eu'' AND amount > 0'.")));
}

static void
rowfilter_check_function(Oid funcid)
{
	if (funcid >= FirstNormalObjectId)
		rowfilter_refuse("a user-defined function or operator");
	if (func_volatile(funcid) != PROVOLATILE_IMMUTABLE)
		rowfilter_refuse("a function or operator that is not immutable");
}

/* rowfilter_check_walker - ERROR at the first node a filter may not hold */
static bool
rowfilter_check_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	switch (nodeTag(node))
	{
		case T_Var:
			if (((Var *) node)->varattno <= 0)
				rowfilter_refuse("a system column or a whole-row reference");
			/* fall through */
		case T_Const:
			if (exprType(node) >= FirstNormalObjectId)
				rowfilter_refuse("a user-defined type");
			break;
		case T_FuncExpr:
			rowfilter_check_function(((FuncExpr *) node)->funcid);
			break;
		case T_OpExpr:
		case T_DistinctExpr:
		case T_NullIfExpr:
			set_opfuncid((OpExpr *) node);
			rowfilter_check_function(((OpExpr *) node)->opfuncid);
			break;
		case T_ScalarArrayOpExpr:
			set_sa_opfuncid((ScalarArrayOpExpr *) node);
			rowfilter_check_function(((ScalarArrayOpExpr *) node)->opfuncid);
			break;
		case T_CoerceViaIO:
			if (exprType(node) >= FirstNormalObjectId)
				rowfilter_refuse("a user-defined type");
			break;
		case T_BoolExpr:
		case T_NullTest:
		case T_BooleanTest:
		case T_RelabelType:
		case T_CollateExpr:
		case T_CaseExpr:
		case T_CaseWhen:
		case T_CaseTestExpr:
		case T_CoalesceExpr:
		case T_ArrayExpr:
		case T_List:
			break;
		default:
			rowfilter_refuse("this kind of expression (only columns, constants, operators, "
							 "functions, AND/OR/NOT, IS [NOT] NULL, CASE, COALESCE and ARRAY)");
	}
	return expression_tree_walker(node, rowfilter_check_walker, context);
}

/* rowfilter_parse - the expression of "SELECT <text>", refusing anything more */
static Node *
rowfilter_parse(const char *text)
{
	List	   *statements = raw_parser(psprintf("SELECT %s", text), RAW_PARSE_DEFAULT);
	SelectStmt *select;
	ResTarget  *target;

	if (list_length(statements) != 1)
		rowfilter_refuse("more than one statement");
	select = (SelectStmt *) ((RawStmt *) linitial(statements))->stmt;
	if (!IsA(select, SelectStmt) || select->op != SETOP_NONE ||
		list_length(select->targetList) != 1 || select->fromClause != NIL ||
		select->whereClause != NULL || select->groupClause != NIL ||
		select->havingClause != NULL || select->windowClause != NIL ||
		select->sortClause != NIL || select->limitCount != NULL ||
		select->limitOffset != NULL || select->lockingClause != NIL ||
		select->withClause != NULL || select->distinctClause != NIL ||
		select->intoClause != NULL || select->valuesLists != NIL)
		rowfilter_refuse("anything but one condition");
	target = linitial_node(ResTarget, select->targetList);
	if (target->name != NULL)
		rowfilter_refuse("a column alias");
	return target->val;
}

/* errors while compiling say which filter they are about */
static void
rowfilter_error_context(void *arg)
{
	errcontext("row filter \"%s\" of a Kafka stream (kafka_stream_table sets it)",
			   (const char *) arg);
}

void
rowfilter_compile(RowFilter *filter, Relation rel, const char *text)
{
	ParseState *pstate = make_parsestate(NULL);
	ParseNamespaceItem *item;
	Node	   *expr;
	int			guc_level = NewGUCNestLevel();
	ErrorContextCallback context = {error_context_stack, rowfilter_error_context,
	(void *) text};

	error_context_stack = &context;

	(void) set_config_option("search_path", "pg_catalog", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	item = addRangeTableEntryForRelation(pstate, rel, AccessShareLock, NULL, false, false);
	addNSItemToQuery(pstate, item, false, true, true);
	expr = transformExpr(pstate, rowfilter_parse(text), EXPR_KIND_WHERE);
	expr = coerce_to_boolean(pstate, expr, "the row filter");
	assign_expr_collations(pstate, expr);
	rowfilter_check_walker(expr, NULL);
	free_parsestate(pstate);
	AtEOXact_GUC(true, guc_level);
	error_context_stack = context.previous;

	filter->state = ExecInitExpr(expression_planner((Expr *) expr), NULL);
	filter->econtext = CreateStandaloneExprContext();
	filter->slot = MakeSingleTupleTableSlot(CreateTupleDescCopy(RelationGetDescr(rel)),
											&TTSOpsHeapTuple);
}

bool
rowfilter_matches(RowFilter *filter, HeapTuple tuple)
{
	bool		isnull;
	Datum		result;

	ExecStoreHeapTuple(tuple, filter->slot, false);
	filter->econtext->ecxt_scantuple = filter->slot;
	result = ExecEvalExprSwitchContext(filter->state, filter->econtext, &isnull);
	ResetExprContext(filter->econtext);
	ExecClearTuple(filter->slot);
	return !isnull && DatumGetBool(result);
}
