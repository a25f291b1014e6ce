/*
 * savepoints.h
 *		A stack of marks, one per subtransaction that did something worth
 *		taking back: what its owner's state was before.  A subtransaction
 *		that rolls back restores the mark at its level; one that commits hands
 *		its mark to its parent.  Marks are pushed lazily, at a
 *		subtransaction's first event, so savepoints that publish nothing cost
 *		nothing.  pending.c (the events) and txmeta.c (their counts) keep one
 *		each; the caller's state in a mark is an entry of entry_size bytes.
 */
#ifndef STREAMKAFKA_SAVEPOINTS_H
#define STREAMKAFKA_SAVEPOINTS_H

typedef struct SavepointMarks
{
	MemoryContext context;		/* the marks' memory */
	Size		entry_size;		/* of the caller's state in one mark */
	int			count;
	int			max;
	int		   *levels;			/* nesting level of each mark's subtransaction */
	char	   *entries;		/* max entries of entry_size bytes */
} SavepointMarks;

extern void savepoints_init(SavepointMarks *marks, MemoryContext context, Size entry_size);
extern void savepoints_clear(SavepointMarks *marks);
extern void *savepoints_mark(SavepointMarks *marks, int level);
extern void *savepoints_rollback(SavepointMarks *marks, int level);
extern void savepoints_commit(SavepointMarks *marks, int level);

#endif							/* STREAMKAFKA_SAVEPOINTS_H */
