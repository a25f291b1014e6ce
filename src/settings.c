/*
 * settings.c
 *		Defines the streamkafka.* settings.
 *
 * Sizes of shared memory are fixed at server start (PGC_POSTMASTER); producer
 * settings are PGC_SIGHUP: the worker re-reads them on pg_reload_conf() and
 * rebuilds its producer when they changed.  Values are range-checked here by
 * the GUC machinery; their combination is checked by librdkafka when the worker
 * builds the producer, and a rejected combination keeps the last good one.
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <limits.h>

#include <librdkafka/rdkafka.h>

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "compat.h"
#include "event.h"
#include "parse.h"
#include "settings.h"

char	   *sk_brokers = NULL;
int			sk_queue_size_kb = 64 * 1024;
int			sk_staging_size_kb = 64 * 1024;
int			sk_acks = SK_ACKS_ALL;
bool		sk_enable_idempotence = true;
int			sk_compression = SK_COMPRESSION_NONE;
int			sk_linger_ms = 5;
char	   *sk_client_id = NULL;
int			sk_message_timeout_ms = 300000;
int			sk_shutdown_timeout_ms = 10000;
int			sk_breaker_failure_threshold = 5;
int			sk_breaker_recovery_timeout_ms = 10000;
char	   *sk_database = NULL;
int			sk_max_topics = 100;
char	   *sk_lag_groups = NULL;
int			sk_lag_interval_ms = 30000;
int			sk_lag_alert_threshold = 10000;
int			sk_http_port = 0;
char	   *sk_http_listen_address = NULL;
char	   *sk_traceparent = NULL;
int			sk_batch_size = 1000000;
int			sk_batch_num_messages = 10000;
int			sk_message_max_bytes = 1000000;
int			sk_request_timeout_ms = 30000;
int			sk_retries = INT_MAX;
int			sk_retry_backoff_ms = 100;
char	   *sk_topic_prefix = NULL;
char	   *sk_default_headers = NULL;
char	   *sk_rdkafka_options = "";	/* the real values; the settings show them masked */
int			sk_overflow = SK_OVERFLOW_ERROR;
int			sk_enqueue_timeout_ms = 1000;
int			sk_database_queue_share = 100;
int			sk_durability = SK_DURABILITY_MEMORY;
char	   *sk_id_header = NULL;
char	   *sk_transaction_topic = NULL;
int			sk_wal_retention_alert_mb = 1024;
const SkPackedHeaders *sk_default_headers_packed = NULL;
int			sk_security_protocol = SK_SECURITY_PLAINTEXT;
int			sk_sasl_mechanism = SK_SASL_PLAIN;
char	   *sk_sasl_username = NULL;
char	   *sk_sasl_password = "";
char	   *sk_ssl_ca_location = NULL;
char	   *sk_ssl_certificate_location = NULL;
char	   *sk_ssl_key_location = NULL;
char	   *sk_ssl_key_password = "";
bool		sk_ssl_verify_hostname = true;
char	   *sk_allowed_topics = NULL;
uint32		sk_allowed_topics_generation = 0;

static const struct config_enum_entry security_protocol_options[] = {
	{"plaintext", SK_SECURITY_PLAINTEXT, false},
	{"ssl", SK_SECURITY_SSL, false},
	{"sasl_plaintext", SK_SECURITY_SASL_PLAINTEXT, false},
	{"sasl_ssl", SK_SECURITY_SASL_SSL, false},
	{NULL, 0, false}
};

static const struct config_enum_entry sasl_mechanism_options[] = {
	{"PLAIN", SK_SASL_PLAIN, false},
	{"SCRAM-SHA-256", SK_SASL_SCRAM_SHA_256, false},
	{"SCRAM-SHA-512", SK_SASL_SCRAM_SHA_512, false},
	{NULL, 0, false}
};

static const struct config_enum_entry overflow_options[] = {
	{"error", SK_OVERFLOW_ERROR, false},
	{"block", SK_OVERFLOW_BLOCK, false},
	{"drop_newest", SK_OVERFLOW_DROP_NEWEST, false},
	{"drop_oldest", SK_OVERFLOW_DROP_OLDEST, false},
	{NULL, 0, false}
};

static const struct config_enum_entry durability_options[] = {
	{"memory", SK_DURABILITY_MEMORY, false},
	{"wal", SK_DURABILITY_WAL, false},
	{NULL, 0, false}
};

static const struct config_enum_entry acks_options[] = {
	{"all", SK_ACKS_ALL, false},
	{"-1", SK_ACKS_ALL, true},
	{"1", SK_ACKS_LEADER, false},
	{"0", SK_ACKS_NONE, false},
	{NULL, 0, false}
};

static const struct config_enum_entry compression_options[] = {
	{"none", SK_COMPRESSION_NONE, false},
	{"gzip", SK_COMPRESSION_GZIP, false},
	{"snappy", SK_COMPRESSION_SNAPPY, false},
	{"lz4", SK_COMPRESSION_LZ4, false},
	{"zstd", SK_COMPRESSION_ZSTD, false},
	{NULL, 0, false}
};

/*
 * enum_option_name - the name of the first visible entry of options with
 * that value, or "unknown" if none has it
 */
static const char *
enum_option_name(const struct config_enum_entry *options, int value)
{
	for (const struct config_enum_entry *entry = options; entry->name != NULL; entry++)
	{
		if (entry->val == value && !entry->hidden)
			return entry->name;
	}
	return "unknown";
}

/*
 * settings_compression_name - librdkafka's name for a compression codec
 */
const char *
settings_compression_name(SkCompression codec)
{
	return enum_option_name(compression_options, codec);
}

/*
 * settings_mock_mode - true when no broker list is set: the worker then runs
 * librdkafka's embedded mock cluster
 */
bool
settings_mock_mode(void)
{
	return sk_brokers == NULL || sk_brokers[0] == '\0';
}

/*
 * settings_security_protocol_name - librdkafka's name for a security protocol
 */
const char *
settings_security_protocol_name(SkSecurityProtocol protocol)
{
	return enum_option_name(security_protocol_options, protocol);
}

/*
 * settings_security_uses_sasl - true if the protocol authenticates with SASL
 */
bool
settings_security_uses_sasl(SkSecurityProtocol protocol)
{
	return protocol == SK_SECURITY_SASL_PLAINTEXT || protocol == SK_SECURITY_SASL_SSL;
}

/*
 * settings_security_uses_ssl - true if the protocol encrypts with TLS
 */
bool
settings_security_uses_ssl(SkSecurityProtocol protocol)
{
	return protocol == SK_SECURITY_SSL || protocol == SK_SECURITY_SASL_SSL;
}

/*
 * settings_sasl_mechanism_name - librdkafka's name for a SASL mechanism
 */
const char *
settings_sasl_mechanism_name(SkSaslMechanism mechanism)
{
	return enum_option_name(sasl_mechanism_options, mechanism);
}

/*
 * Secrets.  A secret setting's value as PostgreSQL keeps it (SHOW, every
 * column of pg_settings, error messages) is masked by its check hook; the
 * real value travels in the hook's "extra" and the assign hook points the
 * sk_* variable the producer reads at it.  Masking only in a show hook would
 * leave the real value in pg_settings.reset_val for pg_read_all_settings.
 */
#define SK_SECRET_MASK "********"

static char *guc_rdkafka_options = NULL;
static char *guc_sasl_password = NULL;
static char *guc_ssl_key_password = NULL;

/* mask_setting - make *newval the masked form, and *extra the real value */
static bool
mask_setting(char **newval, void **extra, const char *masked)
{
	char	   *real = *newval;
	char	   *shown = SK_guc_strdup(masked);

	if (shown == NULL)
		return false;
	*extra = real;
	*newval = shown;
	return true;
}

static bool
check_secret(char **newval, void **extra, GucSource source pg_attribute_unused())
{
	return mask_setting(newval, extra, (*newval)[0] ? SK_SECRET_MASK : "");
}

static void
assign_sasl_password(const char *newval pg_attribute_unused(), void *extra)
{
	sk_sasl_password = extra ? (char *) extra : "";
}

static void
assign_ssl_key_password(const char *newval pg_attribute_unused(), void *extra)
{
	sk_ssl_key_password = extra ? (char *) extra : "";
}

/* rdkafka_options as shown: secret properties' values masked */
static void
append_shown_option(const char *name, const char *value, void *arg)
{
	StringInfo	buf = arg;

	appendStringInfo(buf, "%s%s=%s", buf->len > 0 ? "; " : "", name,
					 parse_is_secret_property(name) ? SK_SECRET_MASK : value);
}

/* options with secret values masked, or NULL if they do not parse */
static char *
masked_rdkafka_options(const char *options)
{
	StringInfoData buf;
	char		error[256];

	initStringInfo(&buf);
	if (!parse_rdkafka_options(options, append_shown_option, &buf, error, sizeof(error)))
		return NULL;
	return buf.data;
}

static void
assign_rdkafka_options(const char *newval pg_attribute_unused(), void *extra)
{
	sk_rdkafka_options = extra ? (char *) extra : "";
}

/*
 * settings_topic_allowed - may events go to this topic?
 */
bool
settings_topic_allowed(const char *topic, int len)
{
	return parse_topic_allowed(sk_allowed_topics, topic, len);
}

/* traceparent_well_formed - a W3C trace context: 2 hex - 32 hex - 16 hex - 2 hex */
static bool
traceparent_well_formed(const char *p)
{
	static const int field_len[] = {2, 32, 16, 2};

	for (int f = 0; f < 4; f++)
	{
		for (int i = 0; i < field_len[f]; i++, p++)
			if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
				return false;
		if (*p != (f < 3 ? '-' : '\0'))
			return false;
		if (f < 3)
			p++;
	}
	return true;
}

/* check_traceparent - a W3C trace context, or empty */
static bool
check_traceparent(char **newval, void **extra pg_attribute_unused(),
				  GucSource source pg_attribute_unused())
{
	if (*newval == NULL || **newval == '\0' || traceparent_well_formed(*newval))
		return true;
	GUC_check_errdetail("A traceparent is version-traceid-parentid-flags in lower-case hex, "
						"e.g. 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.");
	return false;
}

static bool
check_allowed_topics(char **newval, void **extra pg_attribute_unused(),
					 GucSource source pg_attribute_unused())
{
	for (const char *c = *newval; *c; c++)
	{
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
			  (*c >= '0' && *c <= '9') || strchr("._-*?, ", *c)))
		{
			GUC_check_errdetail("\"%c\" cannot be part of a topic pattern.", *c);
			GUC_check_errhint("List topic patterns separated by commas; "
							  "* matches any run of characters, ? one.");
			return false;
		}
	}
	return true;
}

static void
assign_allowed_topics(const char *newval pg_attribute_unused(), void *extra pg_attribute_unused())
{
	sk_allowed_topics_generation++;
}

/*
 * settings_overflow_name - the name of an overflow policy
 */
const char *
settings_overflow_name(SkOverflow policy)
{
	return enum_option_name(overflow_options, policy);
}

/* a property librdkafka accepts?  checked on a throw-away configuration */
typedef struct OptionCheck
{
	rd_kafka_conf_t *conf;
	bool		ok;
	char		error[512];
} OptionCheck;

static void
check_one_option(const char *name, const char *value, void *arg)
{
	OptionCheck *check = arg;
	char		reason[400];

	if (!check->ok)
		return;
	if (rd_kafka_conf_set(check->conf, name, value, reason, sizeof(reason)) != RD_KAFKA_CONF_OK)
	{
		if (parse_is_secret_property(name))
			snprintf(check->error, sizeof(check->error), "%s: the value was refused", name);
		else
			snprintf(check->error, sizeof(check->error), "%s=%s: %s", name, value, reason);
		check->ok = false;
	}
}

static bool
check_rdkafka_options(char **newval, void **extra, GucSource source pg_attribute_unused())
{
	OptionCheck check = {0};
	char	   *masked;
	bool		stored;

	check.conf = rd_kafka_conf_new();
	check.ok = true;
	if (!parse_rdkafka_options(*newval, check_one_option, &check,
										check.error, sizeof(check.error)))
		check.ok = false;
	rd_kafka_conf_destroy(check.conf);
	/* masked even when refused: PostgreSQL's error message quotes *newval */
	masked = masked_rdkafka_options(*newval);
	if (masked == NULL)
		masked = pstrdup(parse_is_secret_property(*newval) ? SK_SECRET_MASK : *newval);
	stored = mask_setting(newval, extra, masked);
	pfree(masked);
	if (check.ok && stored)
		return true;
	if (stored)
	{
		SK_guc_free(*extra);	/* the refused real value */
		*extra = NULL;
	}
	GUC_check_errdetail("%s", check.error);
	GUC_check_errhint("Give librdkafka producer properties as \"name=value; name=value\".");
	return false;
}

/*
 * settings_client_id_problem - why a client id cannot be used, or NULL:
 * librdkafka writes it unescaped into its statistics JSON, so quotes,
 * backslashes and control characters would make every report unreadable
 */
static const char *
settings_client_id_problem(const char *client_id)
{
	for (const unsigned char *c = (const unsigned char *) client_id; *c; c++)
		if (*c == '"' || *c == '\\' || *c < 0x20 || *c == 0x7f)
			return "A client id cannot contain double quotes, backslashes or control characters.";
	return NULL;
}

/* check_client_id - the client id librdkafka can report */
static bool
check_client_id(char **newval, void **extra pg_attribute_unused(),
				GucSource source pg_attribute_unused())
{
	const char *problem = settings_client_id_problem(*newval);

	if (problem != NULL)
	{
		GUC_check_errdetail("%s", problem);
		GUC_check_errhint("Use letters, digits and punctuation such as \".\", \"_\" and \"-\".");
		return false;
	}
	return true;
}

/* check_http_listen_address - an IPv4 address the endpoint can bind to */
static bool
check_http_listen_address(char **newval, void **extra pg_attribute_unused(),
						  GucSource source pg_attribute_unused())
{
	struct in_addr addr;

	if (inet_pton(AF_INET, *newval, &addr) != 1)
	{
		GUC_check_errdetail("\"%s\" is not an IPv4 address in dotted-decimal form.", *newval);
		GUC_check_errhint("Use an address such as 127.0.0.1, or 0.0.0.0 for every interface.");
		return false;
	}
	return true;
}

/* a topic setting: empty, or a legal topic name (of at most max_len bytes) */
static bool
check_topic_setting(const char *value, int max_len, const char *too_long)
{
	int			len = strlen(value);
	const char *problem;

	if (len == 0)
		return true;
	problem = parse_topic_problem(value, len);
	if (problem == NULL && len > max_len)
		problem = too_long;
	if (problem != NULL)
	{
		GUC_check_errdetail("%s", problem);
		GUC_check_errhint("Kafka topic names use ASCII letters, digits, \".\", \"_\" and \"-\".");
		return false;
	}
	return true;
}

static bool
check_topic_prefix(char **newval, void **extra pg_attribute_unused(),
				   GucSource source pg_attribute_unused())
{
	return check_topic_setting(*newval, SK_TOPIC_MAX_LEN - 1,
							   "The prefix leaves no room for a topic name.");
}

static bool
check_transaction_topic(char **newval, void **extra pg_attribute_unused(),
						GucSource source pg_attribute_unused())
{
	return check_topic_setting(*newval, SK_TOPIC_MAX_LEN, "The name is too long.");
}

/* streamkafka.id_header: empty, or a header name of printable ASCII */
static bool
check_id_header(char **newval, void **extra pg_attribute_unused(),
				GucSource source pg_attribute_unused())
{
	for (const char *c = *newval; *c != '\0'; c++)
	{
		if (*c <= ' ' || *c > '~')
		{
			GUC_check_errdetail("Header name \"%s\" has a space, a control character "
								"or a non-ASCII character.", *newval);
			GUC_check_errhint("Use a name such as \"event-id\", or empty for no header.");
			return false;
		}
	}
	return true;
}

/* parse and pack default headers; ERRORs are caught by the caller */
static pg_noinline SkPackedHeaders *
pack_default_headers(const char *json)
{
	Jsonb	   *headers = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(json)));
	StringInfoData buf;
	uint16		count;
	SkPackedHeaders *packed;

	initStringInfo(&buf);
	event_pack_headers(headers, &buf, &count);
	packed = SK_guc_malloc(offsetof(SkPackedHeaders, data) + buf.len);
	if (packed == NULL)
		return NULL;
	packed->len = buf.len;
	packed->count = count;
	memcpy(packed->data, buf.data, buf.len);
	return packed;
}

static bool
check_default_headers(char **newval, void **extra, GucSource source pg_attribute_unused())
{
	MemoryContext caller = CurrentMemoryContext;
	MemoryContext scratch;
	SkPackedHeaders *volatile packed = NULL;
	volatile bool ok = true;

	if ((*newval)[0] == '\0')
		return true;
	scratch = AllocSetContextCreate(CurrentMemoryContext, "streamkafka default_headers",
									ALLOCSET_SMALL_SIZES);
	MemoryContextSwitchTo(scratch);
	PG_TRY();
	{
		packed = pack_default_headers(*newval);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(scratch);
		edata = CopyErrorData();
		FlushErrorState();
		GUC_check_errdetail("%s%s%s", edata->message,
							edata->detail ? ": " : "", edata->detail ? edata->detail : "");
		GUC_check_errhint("Use a JSON object of strings, e.g. '{\"env\": \"prod\"}'.");
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(caller);
	MemoryContextDelete(scratch);
	*extra = packed;
	return ok && packed != NULL;
}

static void
assign_default_headers(const char *newval pg_attribute_unused(), void *extra)
{
	sk_default_headers_packed = extra;
}

/*
 * settings_define - register every streamkafka.* setting
 */
void
settings_define(void)
{
	DefineCustomStringVariable("streamkafka.brokers",
							   "Kafka bootstrap servers (host:port, comma separated).",
							   "Empty runs librdkafka's embedded mock cluster inside the worker.",
							   &sk_brokers, "",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("streamkafka.queue_size",
							"Size of the shared-memory event queue.",
							"Events wait here until Kafka acknowledges them; "
							"a transaction's events must fit in it at commit.",
							&sk_queue_size_kb, 64 * 1024, 1024, INT_MAX / 2,
							PGC_POSTMASTER, GUC_UNIT_KB, NULL, NULL, NULL);

	DefineCustomIntVariable("streamkafka.staging_size",
							"Shared memory lent to large transactions for their "
							"events until they commit.",
							"Touched once at server start, in 2MB chunks; a transaction that finds "
							"none free uses its own memory.  0 turns the pool off.",
							&sk_staging_size_kb, 64 * 1024, 0, INT_MAX / 2,
							PGC_POSTMASTER, GUC_UNIT_KB, NULL, NULL, NULL);

	DefineCustomEnumVariable("streamkafka.acks",
							 "Acknowledgements the producer waits for: all, 1 or 0.",
							 "enable_idempotence requires all.",
							 &sk_acks, SK_ACKS_ALL, acks_options,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomBoolVariable("streamkafka.enable_idempotence",
							 "Use the idempotent producer "
							 "(no duplicates from retries, order kept).",
							 NULL,
							 &sk_enable_idempotence, true,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomEnumVariable("streamkafka.compression",
							 "Compression codec for message batches.",
							 NULL,
							 &sk_compression, SK_COMPRESSION_NONE, compression_options,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("streamkafka.linger_ms",
							"How long the producer waits to fill a batch.",
							NULL,
							&sk_linger_ms, 5, 0, 900000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomStringVariable("streamkafka.client_id",
							   "Client id the producer reports to Kafka.",
							   NULL,
							   &sk_client_id, "streamkafka",
							   PGC_SIGHUP, 0, check_client_id, NULL, NULL);

	DefineCustomIntVariable("streamkafka.message_timeout_ms",
							"How long the producer retries one event before it becomes a "
							"dead letter (0 = forever).",
							NULL,
							&sk_message_timeout_ms, 300000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("streamkafka.shutdown_timeout_ms",
							"How long the worker waits for acknowledgements when it stops.",
							NULL,
							&sk_shutdown_timeout_ms, 10000, 0, 3600000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("streamkafka.breaker_failure_threshold",
							"Consecutive failures after which the circuit breaker opens.",
							"Failures: a delivery error, "
							"a statistics report with every broker down, "
							"all brokers down, authentication or name resolution errors.",
							&sk_breaker_failure_threshold, 5, 1, 1000000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("streamkafka.breaker_recovery_timeout_ms",
							"How long the circuit breaker stays open before "
							"it sends one probe event.",
							"A probe not acknowledged within this time counts as failed.",
							&sk_breaker_recovery_timeout_ms, 10000, 100, 3600000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("streamkafka.max_topics",
							"Topics counted one by one in kafka_topic_stats; "
							"further topics share one row.",
							NULL,
							&sk_max_topics, 100, 1, 10000,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("streamkafka.database",
							   "Database the worker connects to, to write dead letters into its "
							   "kafka_dead_letters table.",
							   "Create the extension in that database.",
							   &sk_database, "postgres",
							   PGC_POSTMASTER, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("streamkafka.batch_size",
							"Largest batch of messages the producer sends to one partition "
							"(librdkafka batch.size).",
							NULL,
							&sk_batch_size, 1000000, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_BYTE, NULL, NULL, NULL);

	DefineCustomIntVariable("streamkafka.batch_num_messages",
							"Most messages in one batch (librdkafka batch.num.messages).",
							NULL,
							&sk_batch_num_messages, 10000, 1, 1000000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("streamkafka.message_max_bytes",
							"Largest event (key, value and headers) kafka_publish accepts "
							"(librdkafka message.max.bytes).",
							"Keep it at or below the broker's and the topic's max.message.bytes.",
							&sk_message_max_bytes, 1000000, 1000, 1000000000,
							PGC_SIGHUP, GUC_UNIT_BYTE, NULL, NULL, NULL);

	DefineCustomIntVariable("streamkafka.request_timeout_ms",
							"How long the producer waits for a broker's answer to one request.",
							NULL,
							&sk_request_timeout_ms, 30000, 1, 900000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("streamkafka.retries",
							"How often the producer retries sending a batch "
							"(within message_timeout_ms).",
							NULL,
							&sk_retries, INT_MAX, 0, INT_MAX,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("streamkafka.retry_backoff_ms",
							"How long the producer waits before retrying a batch.",
							NULL,
							&sk_retry_backoff_ms, 100, 1, 300000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomStringVariable("streamkafka.topic_prefix",
							   "Prefix added to every topic name given to kafka_publish.",
							   NULL,
							   &sk_topic_prefix, "",
							   PGC_SIGHUP, 0, check_topic_prefix, NULL, NULL);

	DefineCustomStringVariable("streamkafka.default_headers",
							   "Headers (a JSON object) the worker adds to every event it sends.",
							   "Headers given to kafka_publish win over these.",
							   &sk_default_headers, "",
							   PGC_SIGHUP, 0, check_default_headers, assign_default_headers, NULL);

	DefineCustomStringVariable("streamkafka.rdkafka_options",
							   "Other librdkafka producer properties: \"name=value; name=value\".",
							   NULL,
							   &guc_rdkafka_options, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, check_rdkafka_options,
							   assign_rdkafka_options, NULL);

	DefineCustomEnumVariable("streamkafka.overflow",
							 "What happens when the queue is full: error, block, "
							 "drop_newest or drop_oldest.",
							 NULL,
							 &sk_overflow, SK_OVERFLOW_ERROR, overflow_options,
							 PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("streamkafka.database_queue_share",
							"Most of the queue, in percent, that one database's events may take.",
							"100: no limit.  A database over its share is treated as a full queue.",
							&sk_database_queue_share, 100, 1, 100,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomEnumVariable("streamkafka.durability",
							 "Where a committed event waits for Kafka: memory (the queue) "
							 "or wal (the WAL, kept by the slot \"streamkafka\").",
							 "wal needs wal_level = logical; see docs/durability.md.",
							 &sk_durability, SK_DURABILITY_MEMORY, durability_options,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("streamkafka.wal_retention_alert",
							"WAL kept for undelivered events (durable mode) past which "
							"kafka_health() says degraded.",
							"0: never.",
							&sk_wal_retention_alert_mb, 1024, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MB, NULL, NULL, NULL);

	DefineCustomStringVariable("streamkafka.id_header",
							   "The Kafka header that carries each event's id as decimal text.",
							   "Empty: no such header.",
							   &sk_id_header, "",
							   PGC_SIGHUP, 0, check_id_header, NULL, NULL);

	DefineCustomStringVariable("streamkafka.transaction_topic",
							   "The topic of the BEGIN and END events of transactions "
							   "that change streamed tables.",
							   "Empty: none, and change events carry no transaction block.",
							   &sk_transaction_topic, "",
							   PGC_SUSET, 0, check_transaction_topic, NULL, NULL);

	DefineCustomIntVariable("streamkafka.enqueue_timeout_ms",
							"How long a session waits for queue space "
							"(overflow = block or drop_oldest).",
							NULL,
							&sk_enqueue_timeout_ms, 1000, 0, 3600000,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomEnumVariable("streamkafka.security_protocol",
							 "How the producer talks to brokers: plaintext, ssl, "
							 "sasl_plaintext or sasl_ssl.",
							 NULL,
							 &sk_security_protocol, SK_SECURITY_PLAINTEXT,
							 security_protocol_options,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomEnumVariable("streamkafka.sasl_mechanism",
							 "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.",
							 NULL,
							 &sk_sasl_mechanism, SK_SASL_PLAIN, sasl_mechanism_options,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("streamkafka.sasl_username",
							   "SASL user name.",
							   NULL,
							   &sk_sasl_username, "",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("streamkafka.sasl_password",
							   "SASL password (shown as ********).",
							   "\"file:PATH\" reads it from the first line of a file, "
							   "so that it never appears in the log.",
							   &guc_sasl_password, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL,
							   check_secret, assign_sasl_password, NULL);

	DefineCustomStringVariable("streamkafka.ssl_ca_location",
							   "File of CA certificates that verify the brokers.",
							   NULL,
							   &sk_ssl_ca_location, "",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("streamkafka.ssl_certificate_location",
							   "Client certificate file (PEM), for brokers that ask for one.",
							   NULL,
							   &sk_ssl_certificate_location, "",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("streamkafka.ssl_key_location",
							   "Client private key file (PEM).",
							   NULL,
							   &sk_ssl_key_location, "",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("streamkafka.ssl_key_password",
							   "Password of the client private key (shown as ********).",
							   "\"file:PATH\" reads it from the first line of a file, "
							   "so that it never appears in the log.",
							   &guc_ssl_key_password, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL,
							   check_secret, assign_ssl_key_password, NULL);

	DefineCustomBoolVariable("streamkafka.ssl_verify_hostname",
							 "Check that a broker's certificate names the host connected to.",
							 NULL,
							 &sk_ssl_verify_hostname, true,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("streamkafka.allowed_topics",
							   "Topic patterns events may go to "
							   "(comma separated, * and ?); empty: any.",
							   "Publishing to any other topic fails with SQLSTATE 42501.",
							   &sk_allowed_topics, "",
							   PGC_SUSET, 0, check_allowed_topics, assign_allowed_topics, NULL);

	DefineCustomStringVariable("streamkafka.lag_groups",
							   "Consumer groups whose lag the monitor worker reads: "
							   "a comma-separated list, '*' for every group with offsets on our "
							   "topics, or empty for none.",
							   NULL,
							   &sk_lag_groups, "",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("streamkafka.lag_interval_ms",
							"How often the monitor worker refreshes consumer lag and "
							"topic metadata (0: never).",
							NULL,
							&sk_lag_interval_ms, 30000, 0, 86400000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("streamkafka.lag_alert_threshold",
							"Lag (messages, of one group on one topic) above which kafka_health() "
							"says degraded (0: no check).",
							NULL,
							&sk_lag_alert_threshold, 10000, 0, INT_MAX,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("streamkafka.http_port",
							"TCP port on which the monitor worker serves "
							"/metrics and /health (0: off).",
							NULL,
							&sk_http_port, 0, 0, 65535,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("streamkafka.http_listen_address",
							   "IPv4 address the /metrics and /health endpoint binds to.",
							   NULL,
							   &sk_http_listen_address, "127.0.0.1",
							   PGC_SIGHUP, 0, check_http_listen_address, NULL, NULL);

	DefineCustomStringVariable("streamkafka.traceparent",
							   "W3C trace context added as a traceparent header to the "
							   "events this session publishes.",
							   "Set it from the application's current span, e.g. "
							   "SET LOCAL streamkafka.traceparent = '00-...-...-01'.",
							   &sk_traceparent, "",
							   PGC_USERSET, 0, check_traceparent, NULL, NULL);

	MarkGUCPrefixReserved("streamkafka");
}
