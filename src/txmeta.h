/*
 * txmeta.h
 *		Transaction metadata of table streams: BEGIN and END events on
 *		streamkafka.transaction_topic and each change event's place in its
 *		transaction.
 */
#ifndef STREAMKAFKA_TXMETA_H
#define STREAMKAFKA_TXMETA_H

/* a change event's place in its transaction (Debezium's "transaction" block) */
typedef struct TxOrder
{
	const char *id;				/* the transaction's id, as a decimal string */
	uint64		total_order;	/* 1, 2, ... among its change events */
	uint64		collection_order;	/* 1, 2, ... among those of its table */
} TxOrder;

extern bool txmeta_count_change(Oid relid, const char *schema, const char *table,
								TxOrder *order);
extern void txmeta_pre_commit(void);

#endif							/* STREAMKAFKA_TXMETA_H */
