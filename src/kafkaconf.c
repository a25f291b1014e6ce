/*
 * kafkaconf.c
 *		The librdkafka configuration the streamkafka.* settings give: the
 *		worker's producer and every other client of the same cluster (the
 *		monitor's, kafka_test_consume's) are built from it.
 *
 * Plain C, no elog or palloc: secret settings of the form "file:PATH" are
 * read here, and only the path is ever logged.
 */
#include "postgres.h"

#include <signal.h>
#include <pthread.h>

#include <librdkafka/rdkafka.h>

#include "kafkaconf.h"
#include "parse.h"
#include "settings.h"

#define KAFKACONF_MAX_PAIRS	64

/* one librdkafka property */
typedef struct ConfPair
{
	const char *name;
	char		value[1024];
} ConfPair;

/*
 * secret_value - a secret setting's value: itself, or for "file:PATH" the
 * first line of that file (so that only the path is ever logged).  Plain C;
 * an unreadable file gives "" and librdkafka's authentication then fails.
 */
static void
secret_value(const char *setting, char *out, size_t outlen)
{
	FILE	   *file;

	out[0] = '\0';
	if (strncmp(setting, "file:", 5) != 0)
	{
		strlcpy(out, setting, outlen);
		return;
	}
	file = fopen(setting + 5, "r");
	if (file == NULL)
		return;
	if (fgets(out, outlen, file) == NULL)
		out[0] = '\0';
	fclose(file);
	out[strcspn(out, "\r\n")] = '\0';
}

/* settings_pairs - the producer properties the streamkafka.* settings ask for */
static int
settings_pairs(ConfPair *pairs)
{
	int			n = 0;

#define CONF(k, ...) \
	(pairs[n].name = (k), snprintf(pairs[n].value, sizeof(pairs[n].value), __VA_ARGS__), n++)

	if (settings_mock_mode())
		CONF("test.mock.num.brokers", "%d", 3);
	else
		CONF("bootstrap.servers", "%s", sk_brokers);
	CONF("client.id", "%s", sk_client_id);
	CONF("acks", "%d", sk_acks);
	CONF("enable.idempotence", "%s", sk_enable_idempotence ? "true" : "false");
	CONF("compression.codec", "%s", settings_compression_name(sk_compression));
	CONF("linger.ms", "%d", sk_linger_ms);
	CONF("message.timeout.ms", "%d", sk_message_timeout_ms);
	/* keys land on the partition a Java producer would choose */
	CONF("partitioner", "%s", "murmur2_random");
	CONF("queue.buffering.max.messages", "%d", SK_PRODUCER_WINDOW);
	CONF("queue.buffering.max.kbytes", "%d", 2097151);
	CONF("statistics.interval.ms", "%d", 1000);
	CONF("log.queue", "%s", "true");
	CONF("batch.size", "%d", sk_batch_size);
	CONF("batch.num.messages", "%d", sk_batch_num_messages);
	CONF("message.max.bytes", "%d", sk_message_max_bytes);
	CONF("request.timeout.ms", "%d", sk_request_timeout_ms);
	CONF("retries", "%d", sk_retries);
	CONF("retry.backoff.ms", "%d", sk_retry_backoff_ms);
	CONF("security.protocol", "%s", settings_security_protocol_name(sk_security_protocol));
	if (settings_security_uses_sasl(sk_security_protocol))
	{
		CONF("sasl.mechanisms", "%s", settings_sasl_mechanism_name(sk_sasl_mechanism));
		CONF("sasl.username", "%s", sk_sasl_username);
		pairs[n].name = "sasl.password";
		secret_value(sk_sasl_password, pairs[n++].value, sizeof(pairs[0].value));
	}
	if (settings_security_uses_ssl(sk_security_protocol))
	{
		if (sk_ssl_ca_location[0])
			CONF("ssl.ca.location", "%s", sk_ssl_ca_location);
		if (sk_ssl_certificate_location[0])
			CONF("ssl.certificate.location", "%s", sk_ssl_certificate_location);
		if (sk_ssl_key_location[0])
			CONF("ssl.key.location", "%s", sk_ssl_key_location);
		if (sk_ssl_key_password[0])
		{
			pairs[n].name = "ssl.key.password";
			secret_value(sk_ssl_key_password, pairs[n++].value, sizeof(pairs[0].value));
		}
		CONF("ssl.endpoint.identification.algorithm", "%s",
			 sk_ssl_verify_hostname ? "https" : "none");
	}
#undef CONF
	return n;
}

typedef struct PairList
{
	ConfPair   *pairs;
	int			n;
} PairList;

/* add_option_pair - append one rdkafka_options property to a PairList */
static void
add_option_pair(const char *name, const char *value, void *arg)
{
	PairList   *list = arg;

	if (list->n == KAFKACONF_MAX_PAIRS)
		return;
	list->pairs[list->n].name = strdup(name);
	if (list->pairs[list->n].name == NULL)
		return;					/* out of memory: the option is left out */
	if (parse_is_secret_property(name))
		secret_value(value, list->pairs[list->n].value, sizeof(list->pairs[list->n].value));
	else
		strlcpy(list->pairs[list->n].value, value, sizeof(list->pairs[list->n].value));
	list->n++;
}

/*
 * all_pairs - the streamkafka.* settings' properties, then rdkafka_options
 * (already checked); *first_option is where the latter begin
 */
static int
all_pairs(ConfPair *pairs, int *first_option)
{
	PairList	list = {pairs, 0};
	char		error[256];

	list.n = settings_pairs(pairs);
	*first_option = list.n;
	(void) parse_rdkafka_options(sk_rdkafka_options, add_option_pair, &list,
										  error, sizeof(error));
	return list.n;
}

/* free_option_names - free the names add_option_pair copied */
static void
free_option_names(ConfPair *pairs, int first_option, int n)
{
	for (int i = first_option; i < n; i++)
		free((char *) pairs[i].name);
}

/*
 * kafkaconf_fingerprint - every property the settings give, as one string,
 * to tell whether they changed
 */
void
kafkaconf_fingerprint(char *out, size_t outlen)
{
	ConfPair	pairs[KAFKACONF_MAX_PAIRS];
	int			first_option;
	int			n = all_pairs(pairs, &first_option);
	size_t		used = 0;

	out[0] = '\0';
	for (int i = 0; i < n && used < outlen; i++)
		used += snprintf(out + used, outlen - used, "%s=%s ", pairs[i].name, pairs[i].value);
	free_option_names(pairs, first_option, n);
}

/*
 * conf_set_pair - set one property; false with errstr filled if librdkafka
 * refuses it (for a secret property without the value or librdkafka's
 * reason, which may quote it)
 */
static bool
conf_set_pair(rd_kafka_conf_t *conf, const ConfPair *pair, char *errstr, size_t errlen)
{
	char		reason[512];

	if (rd_kafka_conf_set(conf, pair->name, pair->value, reason,
						  sizeof(reason)) == RD_KAFKA_CONF_OK)
		return true;
	if (parse_is_secret_property(pair->name))
		snprintf(errstr, errlen, "%s: the value was refused", pair->name);
	else
		snprintf(errstr, errlen, "%s=%s: %s", pair->name, pair->value, reason);
	return false;
}

/*
 * kafkaconf_producer - rd_kafka_conf_t with every property the settings
 * give, or NULL with errstr filled (a secret's value is never put in it)
 */
rd_kafka_conf_t *
kafkaconf_producer(char *errstr, size_t errlen)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	ConfPair	pairs[KAFKACONF_MAX_PAIRS];
	int			first_option;
	int			n = all_pairs(pairs, &first_option);

	for (int i = 0; i < n; i++)
	{
		if (!conf_set_pair(conf, &pairs[i], errstr, errlen))
		{
			rd_kafka_conf_destroy(conf);
			free_option_names(pairs, first_option, n);
			return NULL;
		}
	}
	free_option_names(pairs, first_option, n);
	return conf;
}

/*
 * kafkaconf_client - the settings' connection properties (security
 * included) for another client of the same cluster, e.g. the monitor's;
 * bootstrap is the cluster's address (the mock cluster's, in mock mode).
 * NULL with errstr filled if librdkafka refuses a property (never with a
 * secret's value).
 */
rd_kafka_conf_t *
kafkaconf_client(const char *bootstrap, char *errstr, size_t errlen)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	ConfPair	pairs[KAFKACONF_MAX_PAIRS];
	int			first_option;
	int			n = all_pairs(pairs, &first_option);
	bool		ok = true;

	for (int i = 0; i < n && ok; i++)
	{
		if (strcmp(pairs[i].name, "test.mock.num.brokers") == 0 ||
			strcmp(pairs[i].name, "statistics.interval.ms") == 0 ||
			strcmp(pairs[i].name, "bootstrap.servers") == 0)
			continue;
		ok = conf_set_pair(conf, &pairs[i], errstr, errlen);
	}
	free_option_names(pairs, first_option, n);
	if (ok)
		ok = rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap,
							   errstr, errlen) == RD_KAFKA_CONF_OK;
	if (!ok)
	{
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	return conf;
}

/*
 * kafkaconf_new_handle - rd_kafka_new with every signal blocked, so
 * librdkafka's threads get none; conf is consumed either way
 */
rd_kafka_t *
kafkaconf_new_handle(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *errstr, size_t errlen)
{
	sigset_t	all;
	sigset_t	saved;
	rd_kafka_t *handle;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &saved);
	handle = rd_kafka_new(type, conf, errstr, errlen);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (handle == NULL)
		rd_kafka_conf_destroy(conf);
	return handle;
}

