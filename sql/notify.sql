
-- Notifications (docs/notifications.md): who wants to be told what
-- (devices, preferences) and the webhooks the daemon chat-notify delivers.
-- Appended to sql/chat.sql by the Makefile into the install script; no
-- table here has a privilege for anyone but the owner.

-- Push devices: one row per token (the endpoint for webpush). A token
-- registered again, by anyone, is this row: it moves to the newest user.
CREATE TABLE chat.devices (
	device_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	user_id      bigint NOT NULL,
	kind         text NOT NULL CHECK (kind IN ('webpush', 'fcm', 'apns')),
	-- the endpoint (webpush) or the token (fcm, apns: lower-case hex)
	address      text NOT NULL,
	-- what a sender needs, checked: webpush {endpoint, keys: {p256dh, auth}},
	-- fcm {token}, apns {token, environment}
	token        jsonb NOT NULL,
	-- sha256 of address: the key (an FCM token may pass the 2,700 bytes a
	-- btree entry holds)
	address_hash bytea NOT NULL,
	created_at   timestamptz NOT NULL DEFAULT now(),
	updated_at   timestamptz NOT NULL DEFAULT now()
);
-- register_device: the same token again
CREATE UNIQUE INDEX devices_address ON chat.devices (kind, address_hash);
-- unregister_device, and a sender's devices of a user
CREATE INDEX devices_user ON chat.devices (user_id);

-- Preferences: only the keys a user set (nulls dropped); notify_prefs()
-- adds the defaults.
CREATE TABLE chat.notify_prefs (
	user_id    bigint PRIMARY KEY,
	prefs      jsonb NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now()
);

-- Webhook endpoints (operator only). Like chat.storage_config, not dumped:
-- a dump carries no secret (docs/security.md); add them again after a
-- restore. No CHECK constraint on a column near the secrets: a violated
-- constraint prints the whole row in the error and the log.
CREATE TABLE chat.webhooks (
	endpoint_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	url             text NOT NULL,
	-- "whsec_<base64>", newest first, at most 2: each signs every delivery
	secrets         text[] NOT NULL,
	-- NULL: every type
	event_types     text[],
	-- event_types as bits (webhooks.h), what the write path tests
	type_mask       integer NOT NULL,
	enabled         boolean NOT NULL DEFAULT true,
	disabled_reason text,
	disabled_at     timestamptz,
	-- the first failure since the last success: 72 h of it disables
	failing_since   timestamptz,
	-- deliveries given up after the last retry
	dropped         bigint NOT NULL DEFAULT 0,
	-- the daemon sending this endpoint's claimed deliveries, and until when:
	-- one at a time, so that a chat's events go in order
	leased_by       text,
	leased_until    timestamptz,
	created_at      timestamptz NOT NULL DEFAULT now()
);

-- An event, its body exactly as POSTed; deleted once every delivery of it
-- is done (delivered or dropped).
CREATE TABLE chat.webhook_events (
	event_id   bigserial PRIMARY KEY,
	type       text NOT NULL,
	chat_id    bigint,
	body       text NOT NULL,
	created_at timestamptz NOT NULL
);

-- An event still to deliver to an endpoint. No foreign keys (the write
-- path pays for none): rows are written by the extension only, and
-- remove_webhook deletes an endpoint's.
CREATE TABLE chat.webhook_deliveries (
	event_id    bigint NOT NULL,
	endpoint_id bigint NOT NULL,
	-- attempts begun (webhook_claim counts them)
	attempts    integer NOT NULL DEFAULT 0,
	-- due from; while leased, the end of the lease
	next_at     timestamptz NOT NULL,
	-- the daemon that claimed it; NULL once its result is in
	leased_by   text,
	last_status integer,
	last_error  text,
	-- webhook_result: is an event's last delivery done (the PK, by event_id)
	PRIMARY KEY (event_id, endpoint_id)
);
-- webhook_claim: an endpoint's due deliveries, oldest first
CREATE INDEX webhook_deliveries_due ON chat.webhook_deliveries (endpoint_id, next_at, event_id);
-- webhook_result: has the daemon reported on every delivery it claimed
CREATE INDEX webhook_deliveries_leased ON chat.webhook_deliveries (endpoint_id) WHERE leased_by IS NOT NULL;

-- Backends keep which event types some enabled endpoint takes (webhook_record.c);
-- a change of what that depends on tells every backend to read it again
-- (a relcache invalidation of chat.webhooks, sent at commit). The daemon's
-- updates (leases, failures) do not: they name none of these columns.
CREATE FUNCTION chat.webhooks_changed() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'chat_webhooks_changed';
CREATE TRIGGER webhooks_changed
AFTER INSERT OR UPDATE OF enabled, type_mask, event_types OR DELETE OR TRUNCATE ON chat.webhooks
FOR EACH STATEMENT EXECUTE FUNCTION chat.webhooks_changed();

SELECT pg_catalog.pg_extension_config_dump('chat.devices', '');
SELECT pg_catalog.pg_extension_config_dump('chat.devices_device_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('chat.notify_prefs', '');

-- Devices and preferences (extension/devices.c, notify_prefs.c): chat_app.
CREATE FUNCTION chat.register_device(user_id bigint, kind text, token jsonb)
RETURNS bigint LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_register_device';

CREATE FUNCTION chat.unregister_device(user_id bigint, device_id bigint)
RETURNS void LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_unregister_device';

CREATE FUNCTION chat.set_notify_prefs(user_id bigint, prefs jsonb)
RETURNS jsonb LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_set_notify_prefs';

CREATE FUNCTION chat.notify_prefs(user_id bigint)
RETURNS jsonb LANGUAGE c STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_notify_prefs';

-- Webhooks (extension/webhooks.c): the operator's. The two that take a
-- secret never repeat it in an error, and a failed call's statement (which
-- holds it) is not logged (log_min_error_statement), as configure_storage.
CREATE FUNCTION chat.add_webhook(url text, secret text, event_types text[] DEFAULT NULL)
RETURNS bigint LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
SET log_min_error_statement = panic
AS 'MODULE_PATHNAME', 'chat_add_webhook';

CREATE FUNCTION chat.remove_webhook(endpoint_id bigint)
RETURNS void LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_remove_webhook';

CREATE FUNCTION chat.rotate_webhook_secret(endpoint_id bigint, secret text)
RETURNS void LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
SET log_min_error_statement = panic
AS 'MODULE_PATHNAME', 'chat_rotate_webhook_secret';

CREATE FUNCTION chat.expire_webhook_secrets(endpoint_id bigint)
RETURNS void LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_expire_webhook_secrets';

CREATE FUNCTION chat.enable_webhook(endpoint_id bigint)
RETURNS void LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_enable_webhook';

CREATE FUNCTION chat.webhooks()
RETURNS SETOF jsonb LANGUAGE c STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_webhooks';

-- The daemon's (extension/webhook_claim.c, webhook_result.c): chat_notify.
CREATE FUNCTION chat.webhook_claim(worker text, max_rows int, per_endpoint int, lease_s int)
RETURNS TABLE (endpoint_id bigint, event_id bigint, url text, secrets text[], webhook_id text,
               body text, attempt int)
LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_webhook_claim';

CREATE FUNCTION chat.webhook_result(endpoint_id bigint, event_id bigint, status int, error text)
RETURNS text LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_webhook_result';

CREATE FUNCTION chat.webhook_backlog()
RETURNS TABLE (due bigint, oldest_due_s double precision, dropped bigint)
LANGUAGE c STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'chat_webhook_backlog';

-- chat.sql revoked PUBLIC's EXECUTE before these existed.
REVOKE ALL ON chat.devices, chat.notify_prefs, chat.webhooks, chat.webhook_events,
	chat.webhook_deliveries FROM PUBLIC;
REVOKE ALL ON SEQUENCE chat.devices_device_id_seq, chat.webhooks_endpoint_id_seq,
	chat.webhook_events_event_id_seq FROM PUBLIC;
REVOKE ALL ON FUNCTION
	chat.webhooks_changed(),
	chat.register_device(bigint, text, jsonb),
	chat.unregister_device(bigint, bigint),
	chat.set_notify_prefs(bigint, jsonb),
	chat.notify_prefs(bigint),
	chat.add_webhook(text, text, text[]),
	chat.remove_webhook(bigint),
	chat.rotate_webhook_secret(bigint, text),
	chat.expire_webhook_secrets(bigint),
	chat.enable_webhook(bigint),
	chat.webhooks(),
	chat.webhook_claim(text, int, int, int),
	chat.webhook_result(bigint, bigint, int, text),
	chat.webhook_backlog()
FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
	chat.register_device(bigint, text, jsonb),
	chat.unregister_device(bigint, bigint),
	chat.set_notify_prefs(bigint, jsonb),
	chat.notify_prefs(bigint)
TO chat_app;

-- The notifier's role: opens events (chat_event_reader) and works the
-- webhook queue through its three functions; no table, not the API.
DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'chat_notify') THEN
		CREATE ROLE chat_notify NOLOGIN;
	END IF;
END
$$;
GRANT USAGE ON SCHEMA chat TO chat_notify;
GRANT chat_event_reader TO chat_notify;
GRANT EXECUTE ON FUNCTION
	chat.webhook_claim(text, int, int, int),
	chat.webhook_result(bigint, bigint, int, text),
	chat.webhook_backlog()
TO chat_notify;
