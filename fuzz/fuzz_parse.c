/*
 * fuzz_parse.c
 *		libFuzzer target for the input parsers of src/parse.c: topic names,
 *		rdkafka_options lists, allowed_topics patterns.  Besides crashes,
 *		undefined behaviour and leaks (sanitizers), it checks what the
 *		parsers promise: a topic accepted is 1 to 249 legal characters and
 *		not "." or ".."; an option passed on has a name without "=" and is
 *		not reserved; "*" allows every topic and a topic always matches
 *		itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

static void
check(int condition)
{
	if (!condition)
		abort();
}

static void
check_option(const char *name, const char *value, void *arg)
{
	(void) arg;
	check(name[0] != '\0' && strchr(name, '=') == NULL && strchr(name, ';') == NULL);
	check(strcmp(name, "bootstrap.servers") != 0 && strcmp(name, "sasl.password") != 0);
	check(strchr(value, ';') == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *text = malloc(size + 1);
	char		error[256];
	int			len = (int) (size > 1000 ? 1000 : size);

	memcpy(text, data, size);
	text[size] = '\0';

	if (parse_topic_problem(text, len) == NULL)
	{
		check(len >= 1 && len <= PARSE_TOPIC_MAX_LEN);
		check(!(len == 1 && text[0] == '.') && !(len == 2 && text[0] == '.' && text[1] == '.'));
		for (int i = 0; i < len; i++)
			check(strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", text[i]) != NULL
				  && text[i] != '\0');
		check(parse_topic_allowed("*", text, len));
		check(parse_topic_allowed(NULL, text, len));
		if (strchr(text, '*') == NULL && strchr(text, '?') == NULL && strchr(text, ',') == NULL)
			check(parse_topic_allowed(text, text, len));
	}

	(void) parse_rdkafka_options(text, check_option, NULL, error, sizeof(error));
	(void) parse_topic_allowed(text, "orders.eu-1", 11);
	(void) parse_topic_allowed("a*b*c*d*e*f*g*h*?*x, orders.*", text, len);
	(void) parse_is_secret_property(text);

	free(text);
	return 0;
}
