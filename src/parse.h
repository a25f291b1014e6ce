/*
 * parse.h
 *		Parsers of user input that need nothing from PostgreSQL, so that they
 *		can be fuzzed on their own (fuzz/).
 */
#ifndef STREAMKAFKA_PARSE_H
#define STREAMKAFKA_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#define PARSE_TOPIC_MAX_LEN	249

typedef void (*ParseOptionCallback) (const char *name, const char *value, void *arg);

extern const char *parse_topic_problem(const char *topic, int len);
extern bool parse_rdkafka_options(const char *options, ParseOptionCallback callback,
								  void *arg, char *error, size_t errlen);
extern bool parse_topic_allowed(const char *patterns, const char *topic, int len);
extern bool parse_is_secret_property(const char *name);

#endif							/* STREAMKAFKA_PARSE_H */
