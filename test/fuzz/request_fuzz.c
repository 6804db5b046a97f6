/*
 * request_fuzz.c: libFuzzer on the relay's request parsing
 * (relay/request_parse.c and the table of relay/request_types.c): a client
 * text frame to JSON, id and type, then the statement parameters of its
 * request type, exactly as request.c does before it touches the database.
 * Every refusal must carry a code and a reason of docs/protocol.md; every
 * accepted parameter must be within its row's limits.
 */
#include "request_parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Check an accepted request's parameters against its row. */
static void
check_params(const struct request_type *t, json_t *msg)
{
	char	   *out[REQUEST_MAX_PARAMS] = {0};
	int			n = 0;
	const char *e = request_params(t, msg, out, &n);

	if (n < 0 || n > REQUEST_MAX_PARAMS || (e && strlen(e) == 0))
		abort();
	for (int i = 0; i < n; i++)
	{
		if (out[i] == NULL)
		{
			if (t->params[i].required && !(e && i == n - 1))
				abort();		/* a required parameter may not be SQL NULL */
			continue;
		}
		if (t->params[i].kind == P_STR && strlen(out[i]) > t->params[i].max)
			abort();
		free(out[i]);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct parsed_request pr;
	struct request_error err;
	/* exactly size bytes: ASan sees any overread */
	char	   *copy = malloc(size ? size : 1);

	memcpy(copy, data, size);
	if (request_parse(copy, size, false, false, &pr, &err) == 0)
	{
		int			i = request_type_index(pr.type);

		if (pr.id == NULL || pr.msg == NULL)
			abort();
		if (i >= 0)
			check_params(&request_types[i], pr.msg);
	}
	else if (err.reason == NULL || err.message == NULL || err.code > E_INTERNAL)
		abort();
	request_parsed_free(&pr);
	free(copy);
	return 0;
}
