/*
 * request_types.c: every request type of the WebSocket protocol, one row
 * each: its name, the SQL function it calls, its parameters with their
 * types and limits, and how the result becomes the answer. Adding an API
 * call is one row here plus its SQL function in the extension.
 *
 * The SQL's $1 is always the user id of the verified token; $2… are the
 * parameters in the order of the row. Parameters travel as text, cast in
 * the SQL; an absent optional parameter is SQL NULL. A presence answer
 * subscribes the connection to the users in its second column: those the
 * database answered for (NULL with subscribe:false), whatever was asked.
 */
#include "request.h"

/* a parameter: kind, name, required, limit (bytes of a string, items of an array) */
#define INT(n)			{P_INT, n, true, 0}
#define OPT_INT(n)		{P_INT, n, false, 0}
#define STR(n, max)		{P_STR, n, true, max}
#define OPT_STR(n, max)	{P_STR, n, false, max}
#define BOOL(n)			{P_BOOL, n, true, 0}
#define OPT_BOOL(n)		{P_BOOL, n, false, 0}
#define INTS(n, max)	{P_INTS, n, true, max}
#define OPT_INTS(n, max) {P_INTS, n, false, max}
#define OBJ(n, max)		{P_OBJ, n, true, max}

const struct request_type request_types[] = {
	{"send", "SELECT chat.send_message($1::bigint, $2::bigint, $3::text, $4::uuid, $5::bigint[])", RK_VALUE,
	{INT("chat_id"), STR("body", 65536), OPT_STR("client_id", 64),
	OPT_INTS("attachment_ids", 100)}},
	{"edit", "SELECT chat.edit_message($1::bigint, $2::bigint, $3::bigint, $4::text)", RK_VALUE,
	{INT("chat_id"), INT("seq"), STR("body", 65536)}},
	{"delete", "SELECT chat.delete_message($1::bigint, $2::bigint, $3::bigint)", RK_VALUE,
	{INT("chat_id"), INT("seq")}},
	{"history", "SELECT chat.history($1::bigint, $2::bigint, $3::bigint, coalesce($4::int, 50))", RK_ROWS,
	{INT("chat_id"), OPT_INT("before_seq"), OPT_INT("page_size")}},
	{"catch_up", "SELECT chat.catch_up($1::bigint, $2::bigint, $3::bigint, coalesce($4::int, 500))", RK_ROWS,
	{INT("chat_id"), INT("after"), OPT_INT("page_size")}},
	{"chats", "SELECT chat.list_chats($1::bigint, $2::text, coalesce($3::int, 50), coalesce($4::bool, false))", RK_ROWS,
	{OPT_STR("before", 200), OPT_INT("page_size"), OPT_BOOL("archived")}},
	{"read", "SELECT chat.mark_read($1::bigint, $2::bigint, $3::bigint)", RK_VALUE,
	{INT("chat_id"), INT("seq")}},
	{"typing", "SELECT chat.typing($1::bigint, $2::bigint)", RK_VOID,
	{INT("chat_id")}},
	{"open", "SELECT chat.open_chat($1::bigint, $2::text, $3::bigint, $4::bigint)", RK_VALUE,
	{STR("kind", 32), OPT_INT("context_id"), INT("peer_id")}},
	{"presence",
		"SELECT p, CASE WHEN coalesce($3::bool, true) THEN (p->>'user_id')::bigint END "
		"FROM chat.presence($1::bigint, $2::bigint[]) p", RK_ROWS,
	{INTS("user_ids", 1000), OPT_BOOL("subscribe")}, true},
	{"unread", "SELECT chat.unread_total($1::bigint)", RK_VALUE},
	{"archive", "SELECT chat.set_archived($1::bigint, $2::bigint, $3::bool)", RK_VOID,
	{INT("chat_id"), BOOL("archived")}},
	{"mute", "SELECT chat.set_muted($1::bigint, $2::bigint, $3::bool)", RK_VOID,
	{INT("chat_id"), BOOL("muted")}},
	{"block", "SELECT chat.block_user($1::bigint, $2::bigint)", RK_VOID,
	{INT("other_id")}},
	{"unblock", "SELECT chat.unblock_user($1::bigint, $2::bigint)", RK_VOID,
	{INT("other_id")}},
	{"upload", "SELECT chat.attachment_upload($1::bigint, $2::bigint, $3::text, $4::text, $5::bigint)", RK_VALUE,
	{INT("chat_id"), STR("file_name", 1024), STR("content_type", 255),
	INT("size")}},
	{"attachment_url",
		"SELECT to_jsonb(chat.attachment_url($1::bigint, $2::bigint, $3::int, coalesce($4::bool, false)))", RK_VALUE,
	{INT("attachment_id"), OPT_INT("expires_s"), OPT_BOOL("inline")}},
	/* push devices (docs/notifications.md): token is PushSubscription.toJSON() for webpush */
	{"register_device", "SELECT chat.register_device($1::bigint, $2::text, $3::jsonb)", RK_VALUE,
	{STR("kind", 32), OBJ("token", 8192)}},
	{"unregister_device", "SELECT chat.unregister_device($1::bigint, $2::bigint)", RK_VOID,
	{INT("device_id")}},
	{NULL}
};
