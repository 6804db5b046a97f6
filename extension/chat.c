/*
 * chat.c: module entry point and settings of the chat extension.
 */
#include "chat.h"

#include "fmgr.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

int			chat_max_body_length = 4000;
int			chat_idempotency_window = 7 * 24 * 3600;

void		_PG_init(void);

/* Define the chat.* settings. */
void
_PG_init(void)
{
	DefineCustomIntVariable("chat.max_body_length",
							"Longest message body accepted, in characters.",
							NULL,
							&chat_max_body_length,
							4000, 1, 100000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("chat.idempotency_window",
							"How long a client_id is remembered for idempotent sends.",
							"A send repeating a client_id used in the same chat within this window returns the first message.",
							&chat_idempotency_window,
							7 * 24 * 3600, 60, 365 * 24 * 3600,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("chat");
}
