/*
 * publish.h
 *		Publishing one event: the path kafka_publish() and the table trigger
 *		share.
 */
#ifndef STREAMKAFKA_PUBLISH_H
#define STREAMKAFKA_PUBLISH_H

#include "event.h"

extern int64 publish(SkEvent *event, bool transactional);
extern bool publish_retry(SkEvent *event);

#endif							/* STREAMKAFKA_PUBLISH_H */
