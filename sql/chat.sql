\echo Use "CREATE EXTENSION chat" to load this file. \quit

-- Schema of the chat extension. Every index serves a named query of the API
-- (docs/sql-reference.md, "Indexes"); nothing else is indexed.

CREATE TABLE chat.chats (
	chat_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	kind            text NOT NULL CHECK (kind IN ('listing', 'product', 'direct')),
	-- listing or storefront product id: stored here only, never in messages
	context_id      bigint,
	-- the two parties that opened it: buyer and seller, or for direct chats
	-- the lower and the higher user id, so either side finds the same chat
	user_a          bigint NOT NULL,
	user_b          bigint NOT NULL,
	created_at      timestamptz NOT NULL DEFAULT now(),
	-- summary kept by the write path, so listing chats never reads messages
	last_seq        bigint NOT NULL DEFAULT 0,
	last_rev        bigint NOT NULL DEFAULT 0,
	last_message_at timestamptz,
	last_sender_id  bigint,
	last_preview    text,
	last_deleted    boolean NOT NULL DEFAULT false,
	CHECK ((kind = 'direct') = (context_id IS NULL))
);
-- open_chat: get or create by the same arguments
CREATE UNIQUE INDEX chats_open_key ON chat.chats (kind, context_id, user_a, user_b) NULLS NOT DISTINCT;

CREATE TABLE chat.members (
	chat_id   bigint NOT NULL REFERENCES chat.chats ON DELETE CASCADE,
	user_id   bigint NOT NULL,
	role      text NOT NULL CHECK (role IN ('buyer', 'seller', 'member')),
	read_seq  bigint NOT NULL DEFAULT 0,
	unread    integer NOT NULL DEFAULT 0,
	archived  boolean NOT NULL DEFAULT false,
	muted     boolean NOT NULL DEFAULT false,
	-- the chat's last activity, copied here so list_chats walks one index
	sort_at   timestamptz NOT NULL,
	PRIMARY KEY (chat_id, user_id)
);
-- list_chats (keyset by last activity) and unread_total
CREATE INDEX members_user_list ON chat.members (user_id, archived, sort_at, chat_id);

CREATE TABLE chat.messages (
	chat_id       bigint NOT NULL,
	seq           bigint NOT NULL,
	-- the chat's change counter at this message's last change (catch_up cursor)
	rev           bigint NOT NULL,
	sender_id     bigint NOT NULL,
	body          text NOT NULL,
	client_id     uuid,
	created_at    timestamptz NOT NULL,
	edited_at     timestamptz,
	deleted       boolean NOT NULL DEFAULT false,
	n_attachments smallint NOT NULL DEFAULT 0,
	-- history pages, edits and deletes by seq
	PRIMARY KEY (chat_id, seq, created_at)
) PARTITION BY RANGE (created_at);
-- catch_up: changes after a cursor
CREATE INDEX messages_rev ON chat.messages (chat_id, rev);
-- send_message: idempotent client_id within chat.idempotency_window
CREATE INDEX messages_client_id ON chat.messages (chat_id, client_id) WHERE client_id IS NOT NULL;

CREATE TABLE chat.messages_default PARTITION OF chat.messages DEFAULT;

CREATE TABLE chat.attachments (
	attachment_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	chat_id       bigint NOT NULL REFERENCES chat.chats ON DELETE CASCADE,
	uploader_id   bigint NOT NULL,
	object_key    text NOT NULL UNIQUE,
	file_name     text NOT NULL,
	content_type  text NOT NULL,
	size          bigint NOT NULL CHECK (size >= 0),
	created_at    timestamptz NOT NULL DEFAULT now(),
	-- NULL while pending (uploaded, not yet sent with a message)
	message_seq   bigint
);
-- history / catch_up: attachments of a page of messages in one query
CREATE INDEX attachments_message ON chat.attachments (chat_id, message_seq) WHERE message_seq IS NOT NULL;

-- Object keys whose attachments rows retention deleted: the object store
-- still holds them. A cleaner deletes each object, then its row here.
CREATE TABLE chat.deleted_objects (
	object_key text PRIMARY KEY,
	deleted_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE chat.blocks (
	blocker_id bigint NOT NULL,
	blocked_id bigint NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	-- send_message / open_chat: is the sender blocked by a member
	PRIMARY KEY (blocker_id, blocked_id),
	CHECK (blocker_id <> blocked_id)
);

-- Presence across relays (extension/presence.c). A row per (user, relay)
-- while the user has a connection on that relay; online = any row.
CREATE TABLE chat.relays (
	relay_id     text PRIMARY KEY,
	started_at   timestamptz NOT NULL DEFAULT now(),
	heartbeat_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE chat.presence (
	-- the PK serves "is the user online anywhere" and the per-user changes
	user_id  bigint NOT NULL,
	relay_id text NOT NULL,
	since    timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (user_id, relay_id)
);
-- presence_sync / relay_gone: the users of one relay
CREATE INDEX presence_relay ON chat.presence (relay_id, user_id);

CREATE TABLE chat.last_seen (
	-- its row lock orders every presence change of one user
	user_id   bigint PRIMARY KEY,
	last_seen timestamptz NOT NULL
);

-- API: C functions, SECURITY DEFINER with a pinned search_path.

CREATE FUNCTION chat.open_chat(user_id bigint, kind text, context_id bigint, peer_id bigint)
RETURNS bigint LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'open_chat';

CREATE FUNCTION chat.send_message(user_id bigint, chat_id bigint, body text,
	client_id uuid DEFAULT NULL, attachment_ids bigint[] DEFAULT NULL)
RETURNS jsonb LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'send_message';

CREATE FUNCTION chat.edit_message(user_id bigint, chat_id bigint, seq bigint, body text)
RETURNS jsonb LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'edit_message';

CREATE FUNCTION chat.delete_message(user_id bigint, chat_id bigint, seq bigint)
RETURNS jsonb LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'delete_message';

CREATE FUNCTION chat.history(user_id bigint, chat_id bigint, before_seq bigint DEFAULT NULL, page_size int DEFAULT 50)
RETURNS SETOF jsonb LANGUAGE c STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'history';

CREATE FUNCTION chat.catch_up(user_id bigint, chat_id bigint, after bigint, page_size int DEFAULT 500)
RETURNS SETOF jsonb LANGUAGE c STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'catch_up';

CREATE FUNCTION chat.list_chats(user_id bigint, before text DEFAULT NULL, page_size int DEFAULT 50, archived bool DEFAULT false)
RETURNS SETOF jsonb LANGUAGE c STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'list_chats';

CREATE FUNCTION chat.mark_read(user_id bigint, chat_id bigint, seq bigint)
RETURNS jsonb LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'mark_read';

CREATE FUNCTION chat.unread_total(user_id bigint)
RETURNS bigint LANGUAGE c STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'unread_total';

CREATE FUNCTION chat.set_archived(user_id bigint, chat_id bigint, archived bool)
RETURNS void LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'set_archived';

CREATE FUNCTION chat.set_muted(user_id bigint, chat_id bigint, muted bool)
RETURNS void LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'set_muted';

CREATE FUNCTION chat.block_user(user_id bigint, other_id bigint)
RETURNS void LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'block_user';

CREATE FUNCTION chat.unblock_user(user_id bigint, other_id bigint)
RETURNS void LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'unblock_user';

CREATE FUNCTION chat.typing(user_id bigint, chat_id bigint)
RETURNS void LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'typing';

-- Presence and relays (extension/presence.c), called by chat-relay.
CREATE FUNCTION chat.relay_register(relay_id text)
RETURNS boolean LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'relay_register';

CREATE FUNCTION chat.relay_heartbeat(relay_id text, grace_s int DEFAULT 15)
RETURNS int LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'relay_heartbeat';

CREATE FUNCTION chat.relay_gone(relay_id text)
RETURNS int LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'relay_gone';

CREATE FUNCTION chat.presence_update(relay_id text, online bigint[], offline bigint[])
RETURNS void LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'presence_update';

CREATE FUNCTION chat.presence_sync(relay_id text, online bigint[])
RETURNS void LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'presence_sync';

CREATE FUNCTION chat.presence(user_id bigint, user_ids bigint[])
RETURNS SETOF jsonb LANGUAGE c STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'presence';

-- For the DBA: how events are being published in this database.
CREATE FUNCTION chat.publisher_status()
RETURNS jsonb LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'publisher_status';

-- Partition maintenance (DBA only: not granted to chat_app).

CREATE FUNCTION chat.maintain(at timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'maintain';

-- Commits after each step, so it cannot be SECURITY DEFINER nor pin settings.
CREATE PROCEDURE chat.maintain_procedure(at timestamptz DEFAULT now(), INOUT report jsonb DEFAULT NULL)
LANGUAGE c AS 'MODULE_PATHNAME', 'maintain_procedure';

CREATE FUNCTION chat.partitions()
RETURNS TABLE (partition regclass, is_default boolean, range_from timestamptz, range_to timestamptz,
               estimated_rows bigint, total_bytes bigint)
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'partitions';

-- The first partitions: this month and chat.premake_months ahead (UTC months),
-- made by maintenance itself, so they match what it makes later.
SELECT chat.maintain();

-- pg_dump keeps the data of extension tables only when told to.
SELECT pg_catalog.pg_extension_config_dump('chat.chats', '');
SELECT pg_catalog.pg_extension_config_dump('chat.chats_chat_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('chat.members', '');
SELECT pg_catalog.pg_extension_config_dump('chat.attachments', '');
SELECT pg_catalog.pg_extension_config_dump('chat.attachments_attachment_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('chat.blocks', '');
SELECT pg_catalog.pg_extension_config_dump('chat.deleted_objects', '');
SELECT pg_catalog.pg_extension_config_dump('chat.last_seen', '');
DO $$
DECLARE
	part regclass;
BEGIN
	FOR part IN SELECT inhrelid::regclass FROM pg_catalog.pg_inherits
				WHERE inhparent = 'chat.messages'::regclass LOOP
		PERFORM pg_catalog.pg_extension_config_dump(part, '');
	END LOOP;
END
$$;

-- The application role: EXECUTE on the API, no privilege on any table.
DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'chat_app') THEN
		CREATE ROLE chat_app NOLOGIN;
	END IF;
END
$$;

REVOKE ALL ON ALL TABLES IN SCHEMA chat FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA chat FROM PUBLIC;
REVOKE ALL ON ALL PROCEDURES IN SCHEMA chat FROM PUBLIC;
GRANT USAGE ON SCHEMA chat TO chat_app;
GRANT EXECUTE ON FUNCTION
	chat.open_chat(bigint, text, bigint, bigint),
	chat.send_message(bigint, bigint, text, uuid, bigint[]),
	chat.edit_message(bigint, bigint, bigint, text),
	chat.delete_message(bigint, bigint, bigint),
	chat.history(bigint, bigint, bigint, int),
	chat.catch_up(bigint, bigint, bigint, int),
	chat.list_chats(bigint, text, int, bool),
	chat.mark_read(bigint, bigint, bigint),
	chat.unread_total(bigint),
	chat.set_archived(bigint, bigint, bool),
	chat.set_muted(bigint, bigint, bool),
	chat.block_user(bigint, bigint),
	chat.unblock_user(bigint, bigint),
	chat.typing(bigint, bigint),
	chat.presence(bigint, bigint[])
TO chat_app;

-- The relay's role: the API plus the functions that say who is connected,
-- which no application should be able to call.
DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'chat_relay') THEN
		CREATE ROLE chat_relay NOLOGIN;
	END IF;
END
$$;
GRANT chat_app TO chat_relay;
GRANT EXECUTE ON FUNCTION
	chat.relay_register(text),
	chat.relay_heartbeat(text, int),
	chat.relay_gone(text),
	chat.presence_update(text, bigint[], bigint[]),
	chat.presence_sync(text, bigint[])
TO chat_relay;
