/*
 * savepoints.c
 *		The marks of the subtransactions that published, for pending.c and
 *		txmeta.c: push one at a subtransaction's first event, restore it when
 *		the subtransaction rolls back, hand it to the parent when it commits.
 */
#include "postgres.h"

#include "savepoints.h"

/* no marks; arrays are allocated in context when the first one is pushed */
void
savepoints_init(SavepointMarks *marks, MemoryContext context, Size entry_size)
{
	marks->context = context;
	marks->entry_size = entry_size;
	marks->count = marks->max = 0;
	marks->levels = NULL;
	marks->entries = NULL;
}

/* no marks, the arrays kept for the next transaction */
void
savepoints_clear(SavepointMarks *marks)
{
	marks->count = 0;
}

static void *
entry(SavepointMarks *marks, int i)
{
	return marks->entries + i * marks->entry_size;
}

/*
 * savepoints_mark - the entry for the caller to fill with its state before
 * the first event of the subtransaction at nesting level, or NULL when none
 * is needed (the top level, or the subtransaction has its mark)
 */
void *
savepoints_mark(SavepointMarks *marks, int level)
{
	if (level <= 1 || (marks->count > 0 && marks->levels[marks->count - 1] >= level))
		return NULL;
	if (marks->count == marks->max)
	{
		marks->max = Max(8, marks->max * 2);
		if (marks->levels == NULL)
		{
			marks->levels = MemoryContextAlloc(marks->context, marks->max * sizeof(int));
			marks->entries = MemoryContextAlloc(marks->context,
												marks->max * marks->entry_size);
		}
		else
		{
			marks->levels = repalloc(marks->levels, marks->max * sizeof(int));
			marks->entries = repalloc(marks->entries, marks->max * marks->entry_size);
		}
	}
	marks->levels[marks->count] = level;
	return entry(marks, marks->count++);
}

/*
 * savepoints_rollback - the subtransaction at nesting level rolled back: the
 * entry holding the caller's state before it (valid until the next mark), or
 * NULL if neither it nor a subtransaction inside it published.  Its mark and
 * those of the subtransactions inside it are gone.
 */
void *
savepoints_rollback(SavepointMarks *marks, int level)
{
	int			i = marks->count;

	while (i > 0 && marks->levels[i - 1] >= level)
		i--;
	if (i == marks->count)
		return NULL;
	marks->count = i;
	return entry(marks, i);
}

/*
 * savepoints_commit - the subtransaction at nesting level committed: what it
 * published now belongs to its parent
 */
void
savepoints_commit(SavepointMarks *marks, int level)
{
	int			top = marks->count - 1;

	if (marks->count == 0 || marks->levels[top] != level)
		return;
	if (level - 1 <= 1 || (top > 0 && marks->levels[top - 1] == level - 1))
		marks->count--;			/* the parent already has its own mark */
	else
		marks->levels[top] = level - 1; /* the parent published nothing before */
}
