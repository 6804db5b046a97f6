/*
 * email_message_test.c: the message builder (email_message.c) alone, under
 * the sanitizers: a claim (one row of chat.email_claim, JSON) on stdin,
 * the message on stdout. `make -C relay email-test` builds it
 * (relay/build/notify-email-test); test/notify/test_email_message.py feeds
 * it claims the database cannot easily make (attachments, long or hostile
 * text, bad addresses) and parses what it writes.
 *
 *   notify-email-test FROM UNSUBSCRIBE_URL APP_URL < claim.json
 *     exit 0: the message on stdout; 1: "error: ..." (nothing sent)
 */
#include "alloc.h"
#include "email_message.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

int
main(int argc, char **argv)
{
	json_error_t err;
	json_t	   *claim;
	struct email_settings s;
	const char *error = NULL;
	size_t		len;
	char	   *msg;

	if (argc != 4)
	{
		fprintf(stderr, "usage: %s FROM UNSUBSCRIBE_URL APP_URL < claim.json\n", argv[0]);
		return 2;
	}
	claim = json_loadf(stdin, 0, &err);
	if (claim == NULL)
	{
		fprintf(stderr, "not JSON: %s\n", err.text);
		return 2;
	}
	s = (struct email_settings) {.from = argv[1], .unsubscribe_url = argv[2], .app_url = argv[3], .now = 1765152000};
	msg = email_message_build(claim, &s, &len, &error);
	json_decref(claim);
	if (msg == NULL)
	{
		printf("error: %s\n", error);
		return 1;
	}
	fwrite(msg, 1, len, stdout);
	free(msg);
	return 0;
}
