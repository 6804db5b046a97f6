/*
 * chat.c: module entry point and settings of the chat extension.
 */
#include "chat.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

int			chat_max_body_length = 4000;
int			chat_idempotency_window = 7 * 24 * 3600;
int			chat_event_mode = CHAT_EVENTS_DEFERRED;
int			chat_event_queue_size = 4096;

static const struct config_enum_entry event_mode_options[] = {
	{"deferred", CHAT_EVENTS_DEFERRED, false},
	{"direct", CHAT_EVENTS_DIRECT, false},
	{NULL, 0, false}
};

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

	DefineCustomEnumVariable("chat.event_mode",
							 "How events are published: deferred (publisher worker) or direct (NOTIFY at commit).",
							 "deferred needs chat in shared_preload_libraries; without it events are sent directly.",
							 &chat_event_mode,
							 CHAT_EVENTS_DEFERRED, event_mode_options,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	if (process_shared_preload_libraries_in_progress)
	{
		DefineCustomIntVariable("chat.event_queue_size",
								"Shared memory for events waiting for the publisher, per database.",
								NULL,
								&chat_event_queue_size,
								4096, 64, 1024 * 1024,
								PGC_POSTMASTER, GUC_UNIT_KB,
								NULL, NULL, NULL);
		ChatQueueInit();
	}

	MarkGUCPrefixReserved("chat");
}
