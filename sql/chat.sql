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
	-- who called open_chat to create it: chat.max_new_chats_per_hour
	opened_by       bigint,
	CHECK ((kind = 'direct') = (context_id IS NULL))
);
-- open_chat: get or create by the same arguments
CREATE UNIQUE INDEX chats_open_key ON chat.chats (kind, context_id, user_a, user_b) NULLS NOT DISTINCT;
-- open_chat: the chats a user created in the last hour
CREATE INDEX chats_opened_by ON chat.chats (opened_by, created_at);

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
	-- in list_chats: the opener's at once, the peer's from the first message
	listed    boolean NOT NULL DEFAULT true,
	-- has sent a message here (send_message): makes contacts
	sent      boolean NOT NULL DEFAULT false,
	-- email digests (docs/notifications.md): when the oldest message not
	-- read and not yet in an email arrived (NULL: nothing pending; set by
	-- send_message for the other members, cleared by sending, by mark_read
	-- reading everything and by chat.email_result), the last seq an email
	-- covered, and when this chat was last in an email to this member
	pending_since timestamptz,
	notified_seq  bigint NOT NULL DEFAULT 0,
	emailed_at    timestamptz,
	PRIMARY KEY (chat_id, user_id)
);
-- list_chats (keyset by last activity) and unread_total
CREATE INDEX members_user_list ON chat.members (user_id, archived, listed, sort_at, chat_id);
-- email_claim / email_backlog: the pending rows, oldest first (the key is
-- the scan's resume position, so it is unique)
CREATE INDEX members_pending ON chat.members (pending_since, chat_id, user_id) WHERE pending_since IS NOT NULL;

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
-- send_message: idempotent (sender, client_id) within chat.idempotency_window
CREATE INDEX messages_client_id ON chat.messages (chat_id, client_id, sender_id) WHERE client_id IS NOT NULL;

CREATE TABLE chat.messages_default PARTITION OF chat.messages DEFAULT;

CREATE TABLE chat.attachments (
	attachment_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	chat_id       bigint NOT NULL REFERENCES chat.chats ON DELETE CASCADE,
	uploader_id   bigint NOT NULL,
	-- made by the server (chat/<chat_id>/<random>), never from the file name
	object_key    text NOT NULL UNIQUE,
	-- the cleaned file name, as shown and offered for download
	file_name     text NOT NULL,
	content_type  text NOT NULL,
	size          bigint NOT NULL CHECK (size >= 0),
	created_at    timestamptz NOT NULL DEFAULT now(),
	-- NULL while pending (upload URL issued, not yet sent with a message)
	message_seq   bigint,
	-- 0-based place in the message's attachment_ids; NULL while pending
	position      smallint
);
-- history / catch_up: attachments of a page of messages in one query
CREATE INDEX attachments_message ON chat.attachments (chat_id, message_seq, position) WHERE message_seq IS NOT NULL;
-- attachment_upload: a user's pending uploads (the cap); expire_uploads
CREATE INDEX attachments_pending ON chat.attachments (uploader_id, created_at) WHERE message_seq IS NULL;

-- Object storage (one row). Read by the extension's SECURITY DEFINER
-- functions as the owner; no privilege for anyone else, so chat_app cannot
-- read the secret key. Deliberately without CHECK / NOT NULL constraints: a
-- violated constraint prints the whole failing row, secret included, in the
-- error and the server log. chat.configure_storage() validates instead.
-- Not registered with pg_extension_config_dump: dumps carry no secret;
-- configure again after a restore.
CREATE TABLE chat.storage_config (
	singleton            boolean PRIMARY KEY DEFAULT true,
	endpoint             text,      -- http(s)://host[:port] the database side reaches
	public_endpoint      text,      -- what browsers reach, when it differs
	bucket               text,
	region               text DEFAULT 'us-east-1',
	access_key           text,
	secret_key           text,
	virtual_host         boolean DEFAULT false,
	upload_url_lifetime  integer DEFAULT 900,      -- s, PUT URLs
	default_url_lifetime integer DEFAULT 900,      -- s, GET and DELETE URLs
	max_url_lifetime     integer DEFAULT 86400,    -- s, at most 604800 (S3: 7 days)
	max_upload_size      bigint DEFAULT 104857600, -- bytes over every kind (100 MB)
	max_pending_uploads  integer DEFAULT 20,       -- per user
	pending_upload_ttl   integer DEFAULT 86400     -- s until an unsent upload expires
);
INSERT INTO chat.storage_config DEFAULT VALUES;

-- Upload allow-list: content types by kind, each kind with its size limit
-- (the smaller of it and storage_config.max_upload_size applies). The owner
-- edits these tables directly. SVG and HTML are left out on purpose: served
-- from the bucket's origin they could run scripts.
CREATE TABLE chat.upload_kinds (
	kind     text PRIMARY KEY,
	max_size bigint NOT NULL CHECK (max_size > 0)
);
CREATE TABLE chat.upload_types (
	content_type text PRIMARY KEY
		CHECK (content_type ~ '^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$'),
	kind         text NOT NULL REFERENCES chat.upload_kinds ON UPDATE CASCADE
);
INSERT INTO chat.upload_kinds (kind, max_size) VALUES
	('image',     20 * 1024 * 1024),
	('video',    100 * 1024 * 1024),
	('audio',     50 * 1024 * 1024),
	('document',  50 * 1024 * 1024),
	('archive',  100 * 1024 * 1024);
INSERT INTO chat.upload_types (content_type, kind) VALUES
	('image/jpeg', 'image'), ('image/png', 'image'), ('image/gif', 'image'),
	('image/webp', 'image'), ('image/heic', 'image'), ('image/heif', 'image'),
	('image/avif', 'image'),
	('video/mp4', 'video'), ('video/webm', 'video'), ('video/quicktime', 'video'),
	('video/3gpp', 'video'),
	('audio/mpeg', 'audio'), ('audio/mp4', 'audio'), ('audio/aac', 'audio'),
	('audio/ogg', 'audio'), ('audio/webm', 'audio'), ('audio/wav', 'audio'),
	('audio/flac', 'audio'),
	('application/pdf', 'document'), ('text/plain', 'document'), ('text/csv', 'document'),
	('application/rtf', 'document'),
	('application/msword', 'document'),
	('application/vnd.openxmlformats-officedocument.wordprocessingml.document', 'document'),
	('application/vnd.ms-excel', 'document'),
	('application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', 'document'),
	('application/vnd.ms-powerpoint', 'document'),
	('application/vnd.openxmlformats-officedocument.presentationml.presentation', 'document'),
	('application/vnd.oasis.opendocument.text', 'document'),
	('application/vnd.oasis.opendocument.spreadsheet', 'document'),
	('application/vnd.oasis.opendocument.presentation', 'document'),
	('application/zip', 'archive'), ('application/x-7z-compressed', 'archive'),
	('application/gzip', 'archive'), ('application/x-tar', 'archive'),
	('application/vnd.rar', 'archive');

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
	relay_id      text PRIMARY KEY,
	started_at    timestamptz NOT NULL DEFAULT now(),
	heartbeat_at  timestamptz NOT NULL DEFAULT now(),
	-- relay_register: the backend of the relay's LISTEN connection, and
	-- when it registered (a backend started after that is not it: pid reuse)
	listen_pid    int,
	registered_at timestamptz,
	-- relay_heartbeat: the relay's own presence_grace; its LISTEN backend is
	-- terminated only after a silence longer than this and the sweeper's
	grace_s       int
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
	-- exact here; others see it rounded down to chat.presence_granularity
	last_seen timestamptz NOT NULL,
	-- one more at every change: orders changes whose rounded times are equal
	version   bigint NOT NULL DEFAULT 1
);

-- Pairs of users who have both sent a message in a chat they share, both
-- ways round; only they see each other's presence (presence.c). Added by
-- send_message at a member's first message in a chat.
CREATE TABLE chat.contacts (
	user_id  bigint NOT NULL,
	peer_id  bigint NOT NULL,
	since    timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (user_id, peer_id)
);

-- API: C functions, SECURITY DEFINER with a pinned search_path.

CREATE FUNCTION chat.open_chat(user_id bigint, kind text, context_id bigint, peer_id bigint)
RETURNS bigint LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_open_chat';

CREATE FUNCTION chat.send_message(user_id bigint, chat_id bigint, body text,
	client_id uuid DEFAULT NULL, attachment_ids bigint[] DEFAULT NULL)
RETURNS jsonb LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_send_message';

CREATE FUNCTION chat.edit_message(user_id bigint, chat_id bigint, seq bigint, body text)
RETURNS jsonb LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_edit_message';

CREATE FUNCTION chat.delete_message(user_id bigint, chat_id bigint, seq bigint)
RETURNS jsonb LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_delete_message';

CREATE FUNCTION chat.history(user_id bigint, chat_id bigint, before_seq bigint DEFAULT NULL, page_size int DEFAULT 50)
RETURNS SETOF jsonb LANGUAGE c STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_history';

CREATE FUNCTION chat.catch_up(user_id bigint, chat_id bigint, after bigint, page_size int DEFAULT 500)
RETURNS SETOF jsonb LANGUAGE c STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_catch_up';

CREATE FUNCTION chat.list_chats(user_id bigint, before text DEFAULT NULL, page_size int DEFAULT 50, archived bool DEFAULT false)
RETURNS SETOF jsonb LANGUAGE c STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_list_chats';

CREATE FUNCTION chat.mark_read(user_id bigint, chat_id bigint, seq bigint)
RETURNS jsonb LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_mark_read';

CREATE FUNCTION chat.unread_total(user_id bigint)
RETURNS bigint LANGUAGE c STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_unread_total';

CREATE FUNCTION chat.set_archived(user_id bigint, chat_id bigint, archived bool)
RETURNS void LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_set_archived';

CREATE FUNCTION chat.set_muted(user_id bigint, chat_id bigint, muted bool)
RETURNS void LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_set_muted';

CREATE FUNCTION chat.block_user(user_id bigint, other_id bigint)
RETURNS void LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_block_user';

CREATE FUNCTION chat.unblock_user(user_id bigint, other_id bigint)
RETURNS void LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_unblock_user';

CREATE FUNCTION chat.typing(user_id bigint, chat_id bigint)
RETURNS void LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_typing';

-- Attachments (extension/attachment.c, s3_sign.c).

CREATE FUNCTION chat.attachment_upload(user_id bigint, chat_id bigint, file_name text,
	content_type text, size bigint)
RETURNS jsonb LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_attachment_upload';

CREATE FUNCTION chat.attachment_url(user_id bigint, attachment_id bigint,
	expires_s int DEFAULT NULL, inline bool DEFAULT false)
RETURNS text LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_attachment_url';

-- Maintenance (not for chat_app): chat.maintain() calls it.
CREATE FUNCTION chat.expire_uploads(at timestamptz DEFAULT now(), max_rows int DEFAULT 1000)
RETURNS jsonb LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_expire_uploads';

-- The low-level signer: every key is an argument, so it needs no privilege
-- and gets none for chat_app.
CREATE FUNCTION chat.s3_presign(method text, endpoint text, bucket text, key text,
	expires_s int, at timestamptz, region text, access_key text, secret_key text,
	virtual_host bool DEFAULT false, signed_headers jsonb DEFAULT NULL,
	query_params jsonb DEFAULT NULL)
RETURNS text LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'chat_s3_presign';

-- Storage settings without the secret (the owner's view; not for chat_app).
CREATE FUNCTION chat.storage_settings()
RETURNS jsonb LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
	SELECT to_jsonb(c) - 'singleton' - 'secret_key'
		|| jsonb_build_object('secret_key_set', c.secret_key IS NOT NULL)
	FROM chat.storage_config c WHERE c.singleton
$$;

-- Change storage settings: keys of `settings` replace those columns (null
-- clears). secret_key_file reads the secret from a server file, so it never
-- appears in SQL text. Errors never repeat the secret, and the statement is
-- not logged with them (log_min_error_statement); see docs/operations.md
-- for log_statement.
CREATE FUNCTION chat.configure_storage(settings jsonb)
RETURNS jsonb LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET log_min_error_statement = panic
AS $$
DECLARE
	cfg chat.storage_config;
	k text;
BEGIN
	IF settings IS NULL OR jsonb_typeof(settings) <> 'object' THEN
		RAISE EXCEPTION 'settings must be a json object' USING ERRCODE = '22023';
	END IF;
	FOR k IN SELECT jsonb_object_keys(settings) LOOP
		IF k NOT IN ('endpoint', 'public_endpoint', 'bucket', 'region', 'access_key',
				'secret_key', 'secret_key_file', 'virtual_host', 'upload_url_lifetime',
				'default_url_lifetime', 'max_url_lifetime', 'max_upload_size',
				'max_pending_uploads', 'pending_upload_ttl') THEN
			RAISE EXCEPTION 'unknown storage setting "%"', k USING ERRCODE = '22023',
				HINT = 'See chat.storage_settings() for the names.';
		END IF;
	END LOOP;
	IF settings ? 'secret_key_file' THEN
		IF settings ? 'secret_key' THEN
			RAISE EXCEPTION 'give secret_key or secret_key_file, not both' USING ERRCODE = '22023';
		END IF;
		settings := (settings - 'secret_key_file')
			|| jsonb_build_object('secret_key',
				btrim(pg_read_file(settings ->> 'secret_key_file'), E' \t\r\n'));
	END IF;

	SELECT * INTO cfg FROM chat.storage_config WHERE singleton FOR UPDATE;
	IF NOT FOUND THEN
		INSERT INTO chat.storage_config DEFAULT VALUES RETURNING * INTO cfg;
	END IF;
	cfg := jsonb_populate_record(cfg, settings);

	IF cfg.upload_url_lifetime IS NULL OR cfg.upload_url_lifetime NOT BETWEEN 1 AND 604800 THEN
		RAISE EXCEPTION 'upload_url_lifetime must be between 1 and 604800 seconds' USING ERRCODE = '22023';
	END IF;
	IF cfg.max_url_lifetime IS NULL OR cfg.max_url_lifetime NOT BETWEEN 1 AND 604800 THEN
		RAISE EXCEPTION 'max_url_lifetime must be between 1 and 604800 seconds (7 days, the S3 limit)'
			USING ERRCODE = '22023';
	END IF;
	IF cfg.default_url_lifetime IS NULL OR cfg.default_url_lifetime NOT BETWEEN 1 AND cfg.max_url_lifetime THEN
		RAISE EXCEPTION 'default_url_lifetime must be between 1 and max_url_lifetime (% seconds)',
			cfg.max_url_lifetime USING ERRCODE = '22023';
	END IF;
	IF cfg.max_upload_size IS NULL OR cfg.max_upload_size < 1 THEN
		RAISE EXCEPTION 'max_upload_size must be a positive number of bytes' USING ERRCODE = '22023';
	END IF;
	IF cfg.max_pending_uploads IS NULL OR cfg.max_pending_uploads < 1 THEN
		RAISE EXCEPTION 'max_pending_uploads must be positive' USING ERRCODE = '22023';
	END IF;
	IF cfg.pending_upload_ttl IS NULL OR cfg.pending_upload_ttl < 60 THEN
		RAISE EXCEPTION 'pending_upload_ttl must be at least 60 seconds' USING ERRCODE = '22023';
	END IF;
	IF cfg.virtual_host IS NULL THEN
		RAISE EXCEPTION 'virtual_host must be true or false' USING ERRCODE = '22023';
	END IF;
	IF cfg.region IS NULL THEN
		RAISE EXCEPTION 'region must not be null' USING ERRCODE = '22023';
	END IF;
	IF cfg.public_endpoint IS NOT NULL AND cfg.endpoint IS NULL THEN
		RAISE EXCEPTION 'public_endpoint needs endpoint' USING ERRCODE = '22023';
	END IF;
	-- endpoint, bucket and region formats: sign a dummy request with a dummy secret
	IF cfg.endpoint IS NOT NULL OR cfg.bucket IS NOT NULL THEN
		PERFORM chat.s3_presign('GET', coalesce(cfg.endpoint, 'https://example.com'),
			coalesce(cfg.bucket, 'example'), 'check', 1, now(), cfg.region, 'check', 'check',
			cfg.virtual_host);
		PERFORM chat.s3_presign('GET', coalesce(cfg.public_endpoint, 'https://example.com'),
			coalesce(cfg.bucket, 'example'), 'check', 1, now(), cfg.region, 'check', 'check',
			cfg.virtual_host);
	END IF;
	IF cfg.access_key = '' OR cfg.secret_key = '' THEN
		RAISE EXCEPTION 'access_key and secret_key must not be empty' USING ERRCODE = '22023';
	END IF;

	UPDATE chat.storage_config SET
		endpoint = cfg.endpoint, public_endpoint = cfg.public_endpoint, bucket = cfg.bucket,
		region = cfg.region, access_key = cfg.access_key, secret_key = cfg.secret_key,
		virtual_host = cfg.virtual_host, upload_url_lifetime = cfg.upload_url_lifetime,
		default_url_lifetime = cfg.default_url_lifetime, max_url_lifetime = cfg.max_url_lifetime,
		max_upload_size = cfg.max_upload_size, max_pending_uploads = cfg.max_pending_uploads,
		pending_upload_ttl = cfg.pending_upload_ttl
	WHERE singleton;
	RETURN chat.storage_settings();
END
$$;

-- Presence and relays (extension/presence.c), called by chat-relay.
CREATE FUNCTION chat.relay_register(relay_id text)
RETURNS boolean LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_relay_register';

CREATE FUNCTION chat.relay_heartbeat(relay_id text, grace_s int DEFAULT 15)
RETURNS int LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_relay_heartbeat';

CREATE FUNCTION chat.relay_gone(relay_id text)
RETURNS int LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_relay_gone';

CREATE FUNCTION chat.presence_update(relay_id text, online bigint[], offline bigint[])
RETURNS void LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_presence_update';

CREATE FUNCTION chat.presence_sync(relay_id text, online bigint[])
RETURNS void LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_presence_sync';

CREATE FUNCTION chat.presence(user_id bigint, user_ids bigint[])
RETURNS SETOF jsonb LANGUAGE c STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_presence';

-- For the DBA: how events are being published in this database.
CREATE FUNCTION chat.publisher_status()
RETURNS jsonb LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'chat_publisher_status';

-- Partition maintenance (DBA only: not granted to chat_app).

CREATE FUNCTION chat.maintain(at timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_maintain';

-- Commits after each step, so it cannot be SECURITY DEFINER nor pin settings.
CREATE PROCEDURE chat.maintain_procedure(at timestamptz DEFAULT now(), INOUT report jsonb DEFAULT NULL)
LANGUAGE c AS 'MODULE_PATHNAME', 'chat_maintain_procedure';

CREATE FUNCTION chat.partitions()
RETURNS TABLE (partition regclass, is_default boolean, range_from timestamptz, range_to timestamptz,
               estimated_rows bigint, total_bytes bigint)
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'chat_partitions';

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
SELECT pg_catalog.pg_extension_config_dump('chat.contacts', '');
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
	chat.attachment_upload(bigint, bigint, text, text, bigint),
	chat.attachment_url(bigint, bigint, int, bool),
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

-- Sealed events (extension/seal.c, docs/security.md). LISTEN and NOTIFY
-- have no privileges, so every payload of chat_events is sealed under a key
-- that only the extension's owner and chat_event_reader can read.
CREATE SEQUENCE chat.event_seq;
CREATE TABLE chat.event_keys (
	id          int PRIMARY KEY,
	key         bytea NOT NULL CHECK (length(key) = 32),
	created_at  timestamptz NOT NULL DEFAULT now(),
	-- the extension seals with the newest key whose active_from has come
	active_from timestamptz NOT NULL
);
REVOKE ALL ON chat.event_keys, chat.event_seq FROM PUBLIC;

CREATE FUNCTION chat.rotate_event_key(lead interval DEFAULT '2 minutes')
RETURNS int LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_rotate_event_key';

-- Delete the keys before the current one once it has sealed for longer than keep.
CREATE FUNCTION chat.retire_event_keys(keep interval DEFAULT '1 hour')
RETURNS int LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
	WITH cur AS (SELECT id, active_from FROM chat.event_keys WHERE active_from <= now()
				 ORDER BY active_from DESC, id DESC LIMIT 1),
	gone AS (DELETE FROM chat.event_keys k USING cur
			 WHERE k.id <> cur.id AND k.active_from <= cur.active_from
			   AND cur.active_from <= now() - keep
			 RETURNING 1)
	SELECT count(*)::int FROM gone
$$;

-- What a listener needs to open payloads: every key (pending ones too, so
-- that it knows a key before the extension seals with it) and the number
-- of the last payload sealed (it accepts only later ones).
CREATE FUNCTION chat.event_keyring()
RETURNS TABLE (last_seq bigint, key_id int, key bytea, active_from timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
	SELECT (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM chat.event_seq),
		   k.id, k.key, k.active_from
	FROM (SELECT 1) AS one LEFT JOIN chat.event_keys AS k ON true
	ORDER BY k.id
$$;

CREATE FUNCTION chat.event_seal(payload text)
RETURNS text LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_event_seal';

CREATE FUNCTION chat.event_open(sealed text)
RETURNS text LANGUAGE c STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_event_open';

-- A message too large for its event, for the recipients among user_ids
-- that are members of the chat (and only for them): a listener never
-- fetches on the say-so of a payload.
CREATE FUNCTION chat.event_message(chat_id bigint, seq bigint, user_ids bigint[])
RETURNS TABLE (message jsonb, members bigint[])
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
	SELECT h.m, ids.v
	FROM (SELECT array_agg(m.user_id ORDER BY m.user_id) AS v
		  FROM chat.members AS m
		  WHERE m.chat_id = event_message.chat_id AND m.user_id = ANY (event_message.user_ids)) AS ids
	CROSS JOIN LATERAL chat.history(ids.v[1], event_message.chat_id, event_message.seq + 1, 1) AS h(m)
	WHERE ids.v IS NOT NULL AND (h.m ->> 'seq')::bigint = event_message.seq
$$;

-- For the DBA: what is open to whom (docs/security.md).
CREATE FUNCTION chat.security_report()
RETURNS TABLE (item text, status text, detail text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r record;
	db text := current_database();
BEGIN
	item := 'public_connect';
	IF EXISTS (SELECT FROM pg_database AS d WHERE d.datname = db
			   AND (d.datacl IS NULL OR EXISTS (SELECT FROM aclexplode(d.datacl) AS a
												WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT'))) THEN
		status := 'open';
		detail := format('every role may connect to database %I: REVOKE CONNECT ON DATABASE %I FROM PUBLIC', db, db);
	ELSE
		status := 'ok';
		detail := 'PUBLIC may not connect';
	END IF;
	RETURN NEXT;

	FOR r IN SELECT rolname, rolsuper, pg_has_role(oid, 'chat_app', 'MEMBER') AS app,
					pg_has_role(oid, 'chat_event_reader', 'MEMBER') AS reader
			 FROM pg_roles
			 WHERE rolcanlogin AND has_database_privilege(oid, db, 'CONNECT')
			 ORDER BY rolname LOOP
		item := 'can_connect';
		status := CASE WHEN r.rolsuper THEN 'superuser' WHEN r.app OR r.reader THEN 'ok' ELSE 'open' END;
		detail := format('role %I may connect%s', r.rolname,
						 CASE WHEN r.rolsuper THEN ' (superuser: reads everything, keys included)'
							  WHEN r.reader THEN ' and open events (chat_event_reader)'
							  WHEN r.app THEN ' (chat_app: the API)'
							  ELSE ', has no chat role, and may LISTEN and NOTIFY on chat_events' END);
		RETURN NEXT;
	END LOOP;

	FOR r IN SELECT line_number, type, database, user_name, address, auth_method
			 FROM pg_hba_file_rules WHERE auth_method = 'trust' ORDER BY line_number LOOP
		item := 'trust_auth';
		status := 'open';
		detail := format('pg_hba.conf line %s (%s, database %s, user %s%s) lets anyone who reaches it log in as any role without a password',
						 r.line_number, r.type, array_to_string(r.database, ','), array_to_string(r.user_name, ','),
						 coalesce(', address ' || r.address, ''));
		RETURN NEXT;
	END LOOP;

	item := 'event_key';
	SELECT k.id, k.active_from INTO r FROM chat.event_keys AS k WHERE k.active_from <= now()
	ORDER BY k.active_from DESC, k.id DESC LIMIT 1;
	IF NOT FOUND THEN
		status := 'open';
		detail := 'no active event key: events cannot be published; SELECT chat.rotate_event_key(''0'')';
	ELSE
		status := CASE WHEN r.active_from < now() - interval '90 days' THEN 'old' ELSE 'ok' END;
		detail := format('events are sealed with key %s, active since %s (%s keys kept)', r.id, r.active_from,
						 (SELECT count(*) FROM chat.event_keys));
	END IF;
	RETURN NEXT;
END
$$;

DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'chat_event_reader') THEN
		CREATE ROLE chat_event_reader NOLOGIN;
	END IF;
END
$$;
REVOKE ALL ON FUNCTION chat.rotate_event_key(interval), chat.retire_event_keys(interval),
	chat.event_keyring(), chat.event_seal(text), chat.event_open(text), chat.event_message(bigint, bigint, bigint[]),
	chat.security_report() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION chat.event_keyring(), chat.event_message(bigint, bigint, bigint[])
TO chat_event_reader;
GRANT chat_event_reader TO chat_relay;
SELECT chat.rotate_event_key('0');
