/*
 * chat.c: module entry point and settings of the chat extension.
 */
#include "chat.h"
#include "maintain.h"
#include "queue.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

int			chat_max_body_length = 4000;
int			chat_idempotency_window = 7 * 24 * 3600;
int			chat_max_new_chats_per_hour = 30;
int			chat_presence_granularity = 300;
int			chat_event_mode = CHAT_EVENTS_DEFERRED;
int			chat_event_queue_size = 4096;

static const struct config_enum_entry event_mode_options[] = {
	{"deferred", CHAT_EVENTS_DEFERRED, false},
	{"direct", CHAT_EVENTS_DIRECT, false},
	{NULL, 0, false}
};

int			chat_premake_months = 3;
int			chat_retention_months = 0;
int			chat_retention_action = CHAT_RETENTION_DROP;
char	   *chat_archive_schema = NULL;
int			chat_maintenance_interval = 3600;
int			chat_push_delay = 10;
int			chat_push_interval = 30;
int			chat_maintenance_lock_timeout = 20;
int			chat_maintenance_lock_retries = 5;

static const struct config_enum_entry retention_actions[] = {
	{"drop", CHAT_RETENTION_DROP, false},
	{"detach", CHAT_RETENTION_DETACH, false},
	{NULL, 0, false}
};

void		_PG_init(void);

/* chat.max_body_length, chat.idempotency_window, chat.page_max_bytes */
static void
DefineMessageSettings(void)
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

	DefineCustomIntVariable("chat.page_max_bytes",
							"Most bytes of JSON in one page of history, catch_up or list_chats.",
							"A page stops before the row that would pass it (its first row always goes in) and its last row carries \"more\": true; pass its cursor or seq on for the rest.",
							&chat_page_max_bytes,
							CHAT_PAGE_MAX_BYTES_DEFAULT, 4096, 1024 * 1024,
							PGC_USERSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
	DefineCustomIntVariable("chat.max_new_chats_per_hour",
							"Chats one user may create (open_chat) in any hour.",
							"Reopening an existing chat does not count. 0 forbids new chats.",
							&chat_max_new_chats_per_hour,
							30, 0, 100000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("chat.presence_granularity",
							"Others see a user's last_seen rounded down to this many seconds.",
							"The exact time is kept; presence() and presence events carry the rounded one and a version that orders changes.",
							&chat_presence_granularity,
							300, 1, 86400,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("chat.push_delay",
							"How long after a message its push waits for the message to be read elsewhere.",
							"A push is sent only if the message is still unread when this has passed (docs/notifications.md).",
							&chat_push_delay,
							10, 0, 3600,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("chat.push_interval",
							"Shortest time between two alerting pushes of one chat to one user.",
							"Messages within it fold into the next push (\"3 new messages\").",
							&chat_push_interval,
							30, 0, 86400,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);

}

/* chat.premake_months and the other settings of partition maintenance */
static void
DefineMaintenanceSettings(void)
{
	DefineCustomIntVariable("chat.premake_months",
							"Months of chat.messages partitions made ahead of the current one.",
							NULL,
							&chat_premake_months,
							3, 0, 120,
							PGC_USERSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("chat.retention_months",
							"Months of messages kept; older partitions are retired by maintenance.",
							"0 keeps every month forever.",
							&chat_retention_months,
							0, 0, 1200,
							PGC_USERSET, 0,
							NULL, NULL, NULL);

	DefineCustomEnumVariable("chat.retention_action",
							 "What retention does with a partition past chat.retention_months.",
							 "drop: detach and drop it, with its attachments rows; detach: detach it and keep it in chat.archive_schema.",
							 &chat_retention_action,
							 CHAT_RETENTION_DROP, retention_actions,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("chat.archive_schema",
							   "Schema that keeps partitions retired with chat.retention_action = 'detach'.",
							   NULL,
							   &chat_archive_schema,
							   "chat_archive",
							   PGC_USERSET, 0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("chat.maintenance_lock_timeout",
							"Longest a maintenance lock request may wait, and so make others wait.",
							"Maintenance first polls for the lock without queueing, then queues for the rest of this time; on failure it retries and then defers the step to the next round.",
							&chat_maintenance_lock_timeout,
							20, 1, 60000,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("chat.maintenance_lock_retries",
							"Attempts at the locks of one maintenance step before it is deferred.",
							NULL,
							&chat_maintenance_lock_retries,
							5, 1, 100,
							PGC_USERSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("chat.maintenance_interval",
							"Time between two maintenance rounds of the background worker.",
							"0 stops the rounds; the worker needs shared_preload_libraries = 'chat'.",
							&chat_maintenance_interval,
							3600, 0, 30 * 24 * 3600,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
}

/* chat.event_mode; chat.event_queue_size and the queue when preloaded */
static void
DefineEventSettings(void)
{
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
}

/* Define the chat.* settings; when preloaded, set up the queue and register the maintenance launcher. */
void
_PG_init(void)
{
	DefineMessageSettings();
	DefineMaintenanceSettings();
	DefineEventSettings();
	MarkGUCPrefixReserved("chat");

	if (process_shared_preload_libraries_in_progress)
		ChatRegisterMaintenanceLauncher();
}
