/*
 * parse.c
 *		Parsers of user input that need nothing from PostgreSQL: Kafka topic
 *		names, the rdkafka_options list, allowed_topics patterns.  Plain C,
 *		no allocation failure can raise an ERROR, every input is bounded by
 *		its length; fuzzed by fuzz/fuzz_parse.c.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

/*
 * librdkafka properties that streamkafka.* settings own, or that the worker
 * relies on; rdkafka_options may not set them.
 */
static const char *const reserved_properties[] = {
	"bootstrap.servers", "metadata.broker.list", "client.id", "acks",
	"request.required.acks", "enable.idempotence", "compression.codec",
	"compression.type", "linger.ms", "queue.buffering.max.ms",
	"message.timeout.ms", "delivery.timeout.ms", "batch.size",
	"batch.num.messages", "message.max.bytes", "request.timeout.ms",
	"retries", "message.send.max.retries", "retry.backoff.ms",
	"queue.buffering.max.messages", "queue.buffering.max.kbytes",
	"statistics.interval.ms", "log.queue", "transactional.id",
	"test.mock.num.brokers", "security.protocol", "sasl.mechanisms",
	"sasl.mechanism", "sasl.username", "sasl.password", "ssl.ca.location",
	"ssl.certificate.location", "ssl.key.location", "ssl.key.password",
	"ssl.endpoint.identification.algorithm", NULL
};

/*
 * parse_topic_problem - NULL if topic is a legal Kafka topic name, else why
 * not (the rules of Kafka's org.apache.kafka.common.internals.Topic.validate)
 */
const char *
parse_topic_problem(const char *topic, int len)
{
	if (len <= 0)
		return "A topic name cannot be empty.";
	if (len > PARSE_TOPIC_MAX_LEN)
		return "A topic name cannot be longer than 249 characters.";
	if ((len == 1 && topic[0] == '.') ||
		(len == 2 && topic[0] == '.' && topic[1] == '.'))
		return "\".\" and \"..\" are not allowed as topic names.";
	for (int i = 0; i < len; i++)
	{
		char		c = topic[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return "The name contains a character Kafka does not allow.";
	}
	return NULL;
}

static char *
trim(char *s)
{
	char	   *end;

	while (isspace((unsigned char) *s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char) end[-1]))
		*--end = '\0';
	return s;
}

/*
 * parse_rdkafka_options - split "name=value; name=value" and call callback
 * for each pair.  False, with error filled, on a malformed entry or a
 * reserved property (callback is not called for later entries).
 */
bool
parse_rdkafka_options(const char *options, ParseOptionCallback callback,
					  void *arg, char *error, size_t errlen)
{
	char	   *copy = strdup(options ? options : "");
	char	   *saveptr = NULL;
	bool		ok = true;

	if (copy == NULL)
	{
		snprintf(error, errlen, "out of memory");
		return false;
	}
	for (char *entry = strtok_r(copy, ";", &saveptr); entry != NULL && ok;
		 entry = strtok_r(NULL, ";", &saveptr))
	{
		char	   *eq;
		char	   *name;

		entry = trim(entry);
		if (*entry == '\0')
			continue;
		eq = strchr(entry, '=');
		if (eq == NULL)
		{
			if (parse_is_secret_property(entry))
				snprintf(error, errlen, "An entry naming a secret is not of the form name=value.");
			else
				snprintf(error, errlen, "\"%.200s\" is not of the form name=value.", entry);
			ok = false;
			break;
		}
		*eq = '\0';
		name = trim(entry);
		if (*name == '\0')
		{
			snprintf(error, errlen, "An entry has no property name before \"=\".");
			ok = false;
			break;
		}
		for (int i = 0; reserved_properties[i] != NULL; i++)
		{
			if (strcmp(name, reserved_properties[i]) == 0)
			{
				snprintf(error, errlen,
						 "\"%s\" is set by streamkafka itself; "
						 "use the matching streamkafka.* setting.",
						 name);
				ok = false;
				break;
			}
		}
		if (ok)
			callback(name, trim(eq + 1), arg);
	}
	free(copy);
	return ok;
}

/*
 * glob_match - does text match pattern (* any run of characters, ? one)?
 * Backtracks to the last star only: O(pattern length x text length).
 */
static bool
glob_match(const char *pattern, int plen, const char *text, int tlen)
{
	int			p = 0;
	int			t = 0;
	int			star = -1;
	int			resume = 0;

	while (t < tlen)
	{
		if (p < plen && (pattern[p] == '?' || pattern[p] == text[t]))
		{
			p++;
			t++;
		}
		else if (p < plen && pattern[p] == '*')
		{
			star = p++;
			resume = t;
		}
		else if (star >= 0)
		{
			p = star + 1;
			t = ++resume;
		}
		else
			return false;
	}
	while (p < plen && pattern[p] == '*')
		p++;
	return p == plen;
}

/*
 * parse_topic_allowed - does topic match one of the comma separated patterns?
 * An empty or NULL list allows every topic.
 */
bool
parse_topic_allowed(const char *patterns, const char *topic, int len)
{
	const char *p = patterns;

	if (p == NULL || *p == '\0')
		return true;
	while (*p)
	{
		const char *end;
		const char *last;

		while (*p == ' ' || *p == ',')
			p++;
		end = p;
		while (*end && *end != ',')
			end++;
		last = end;
		while (last > p && last[-1] == ' ')
			last--;
		if (last > p && glob_match(p, (int) (last - p), topic, len))
			return true;
		p = end;
	}
	return false;
}

/*
 * parse_is_secret_property - must a librdkafka property's value never be
 * shown (in errors, logs, views)?
 */
bool
parse_is_secret_property(const char *name)
{
	return strstr(name, "password") != NULL || strstr(name, "secret") != NULL ||
		strstr(name, "key.pem") != NULL || strstr(name, "oauthbearer.config") != NULL;
}
