-- Events on channel chat_events: payloads of message / edit / delete / read /
-- typing events, publication if and only if the transaction commits, no
-- event for calls that change nothing, inline messages only when they fit
-- NOTIFY's 8000-byte limit, seq order within a chat.
--
-- Events need committed transactions, so the calls run over dblink:
-- connection 'listener' runs LISTEN chat_events, connection 'sender' makes
-- the API calls (each dblink call commits on its own). The listener is
-- polled every 10 ms for a bounded time (pg_temp.collect_until). To show
-- that something published nothing, a typing event is sent right after it
-- as a marker: events arrive in commit order, so if the marker is the only
-- new event of the chat, nothing came before it.
-- Users 9000..9099 (and user 0); the committed rows are deleted at the end.
BEGIN;
\ir _helpers.psql
SELECT plan(99);

-- The recipients of an event: the "to" of its envelope, in the order published.
CREATE FUNCTION pg_temp.recipients(e jsonb) RETURNS bigint[]
LANGUAGE sql AS $$
	SELECT recipients FROM events WHERE event = e ORDER BY n DESC LIMIT 1
$$;

-- The newest collected event of chat c with this type.
CREATE FUNCTION pg_temp.last_event(c bigint, type text) RETURNS jsonb
LANGUAGE sql AS $$
	SELECT event FROM events WHERE event @> jsonb_build_object('chat_id', c, 'type', type) ORDER BY n DESC LIMIT 1
$$;

-- Its payload as published.
CREATE FUNCTION pg_temp.last_payload(c bigint, type text) RETURNS text
LANGUAGE sql AS $$
	SELECT payload FROM events WHERE event @> jsonb_build_object('chat_id', c, 'type', type) ORDER BY n DESC LIMIT 1
$$;

-- Its envelope's bytes.
CREATE FUNCTION pg_temp.last_env(c bigint, type text) RETURNS text
LANGUAGE sql AS $$
	SELECT env FROM events WHERE event @> jsonb_build_object('chat_id', c, 'type', type) ORDER BY n DESC LIMIT 1
$$;

-- Run SQL on the sender connection (committed on return); returns the
-- first column of the result, or the command status.
CREATE FUNCTION pg_temp.remote(sql text) RETURNS text
LANGUAGE sql AS $$ SELECT string_agg(r, ',') FROM dblink('sender', sql) AS t(r text) $$;

-- Send the typing marker of user 9001 and count the chat's events that
-- arrive up to and including it.
CREATE FUNCTION pg_temp.events_until_marker(c bigint) RETURNS int
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_temp.remote(format('SELECT chat.typing(9001, %s)', c));
	RETURN pg_temp.collect_until(c, jsonb_build_object('chat_id', c, 'type', 'typing', 'user_id', 9001));
END
$$;

SELECT is(dblink_connect('listener', pg_temp.connstr()), 'OK', 'listener connected');
SELECT is(dblink_exec('listener', 'LISTEN chat_events'), 'LISTEN', 'listener listens on chat_events');
SELECT is(dblink_connect('sender', pg_temp.connstr()), 'OK', 'sender connected');
-- (Leftovers of an interrupted earlier run would skew the counts.)
SELECT is(pg_temp.remote($$DELETE FROM chat.messages WHERE chat_id IN (SELECT chat_id FROM chat.chats
			WHERE user_a BETWEEN 9000 AND 9099 OR (user_a = 0 AND user_b BETWEEN 9000 AND 9099));
		DELETE FROM chat.chats WHERE user_a BETWEEN 9000 AND 9099 OR (user_a = 0 AND user_b BETWEEN 9000 AND 9099);
		DELETE FROM chat.blocks WHERE blocker_id BETWEEN 9000 AND 9099$$) ~ '^DELETE', true, 'no leftovers of users 9000..9099');
SELECT id AS c FROM dblink('sender', $$SELECT chat.open_chat(9000, 'direct', NULL, 9001)$$) AS t(id bigint) \gset

-- A committed send publishes a message event with the message inline.
SELECT m AS m1 FROM dblink('sender', format($$SELECT chat.send_message(9000, %s, 'hello')$$, :c)) AS t(m jsonb) \gset
SELECT is(pg_temp.collect_until(:c, jsonb_build_object('chat_id', :c::bigint, 'type', 'message')), 1,
	'a committed send publishes one event');
SELECT pg_temp.last_event(:c, 'message') AS e \gset
SELECT is(jsonb_build_array(:'e'::jsonb -> 'v', :'e'::jsonb -> 'type', :'e'::jsonb -> 'chat_id'),
	jsonb_build_array(1, 'message', :c::bigint), 'the event has v 1, type message, the chat id');
SELECT is(pg_temp.recipients(:'e'), ARRAY[9000, 9001]::bigint[], 'its recipients are every member, the sender included');
SELECT is(jsonb_build_array(:'e'::jsonb -> 'message' -> 'body', :'e'::jsonb -> 'message' -> 'seq',
		:'e'::jsonb -> 'message' -> 'sender_id', :'e'::jsonb -> 'message' -> 'chat_id'),
	jsonb_build_array('hello', 1, 9000, :c::bigint), 'the message rides inline: body, seq, sender, chat');
SELECT is(:'e'::jsonb -> 'message', :'m1'::jsonb, 'the inline message is the object send_message returned');
SELECT is(:'e'::jsonb -> 'inline', 'true'::jsonb, 'the event says inline: true');
SELECT cmp_ok(octet_length(pg_temp.last_payload(:c, 'message')), '<', 8000, 'the payload is under 8000 bytes');
SELECT is(pg_temp.last_env(:c, 'message'),
	format('{"to":[9000,9001],"ev":{"v":1,"type":"message","chat_id":%s,"seq":1,"cursor":1,"sender_id":9000,'
		'"inline":true,"message":%s}}', :c, :'m1'::jsonb::text),
	'the envelope byte for byte: "to" ascending, then "ev", the event with the message as jsonb prints it');
SELECT is(ARRAY(SELECT jsonb_object_keys(:'e'::jsonb) ORDER BY 1),
	ARRAY['chat_id', 'cursor', 'inline', 'message', 'sender_id', 'seq', 'type', 'v'],
	'the event has no recipients key: exactly what clients receive');

-- A rolled-back send publishes nothing (and stores nothing).
SELECT is(pg_temp.remote(format($$BEGIN; SELECT chat.send_message(9000, %s, 'never'); ROLLBACK$$, :c)), 'ROLLBACK',
	'a send inside a transaction that rolls back');
SELECT is(pg_temp.events_until_marker(:c), 1, 'the rolled-back send published nothing: the next event is the marker');
SELECT is((SELECT last_seq FROM chat.chats WHERE chat_id = :c), 1::bigint, 'and stored nothing');
SELECT is(pg_temp.remote(format($$BEGIN; SELECT chat.edit_message(9000, %s, 1, 'never'); SELECT chat.mark_read(9001, %s, 1);
		SELECT chat.typing(9000, %s); SELECT chat.delete_message(9000, %s, 1); ROLLBACK$$, :c, :c, :c, :c)), 'ROLLBACK',
	'an edit, a read, typing and a delete inside a transaction that rolls back');
SELECT is(pg_temp.events_until_marker(:c), 1, 'none of them published anything');

-- typing: to the other members, with the typing user.
SELECT pg_temp.last_event(:c, 'typing') AS e \gset
SELECT is(jsonb_build_array(:'e'::jsonb -> 'v', :'e'::jsonb -> 'type', :'e'::jsonb -> 'chat_id', :'e'::jsonb -> 'user_id'),
	jsonb_build_array(1, 'typing', :c::bigint, 9001), 'typing event: v, type, chat, the typing user');
SELECT is(pg_temp.recipients(:'e'), ARRAY[9000]::bigint[], 'typing goes to the other member only');
SELECT is(pg_temp.last_env(:c, 'typing'), format('{"to":[9000],"ev":{"v":1,"type":"typing","chat_id":%s,"user_id":9001}}', :c),
	'typing envelope, byte for byte');

-- edit: the edited message inline.
SELECT lives_ok(format($$SELECT pg_temp.remote('SELECT chat.edit_message(9000, %s, 1, ''hello (edited)'')')$$, :c), 'an edit commits');
SELECT is(pg_temp.collect_until(:c, jsonb_build_object('chat_id', :c::bigint, 'type', 'edit')), 1, 'it publishes one event');
SELECT pg_temp.last_event(:c, 'edit') AS e \gset
SELECT is(jsonb_build_array(:'e'::jsonb -> 'v', :'e'::jsonb -> 'chat_id', :'e'::jsonb -> 'message' -> 'seq',
		:'e'::jsonb -> 'message' -> 'body', :'e'::jsonb -> 'message' -> 'deleted'),
	jsonb_build_array(1, :c::bigint, 1, 'hello (edited)', false), 'edit event: the message with its new body');
SELECT isnt(:'e'::jsonb -> 'message' -> 'edited_at', 'null'::jsonb, 'edit event: edited_at is set');
SELECT is(pg_temp.recipients(:'e'), ARRAY[9000, 9001]::bigint[], 'edit event: to every member');

-- read: who read up to which seq.
SELECT lives_ok(format($$SELECT pg_temp.remote('SELECT chat.mark_read(9001, %s, 1)')$$, :c), 'the recipient marks message 1 read');
SELECT is(pg_temp.collect_until(:c, jsonb_build_object('chat_id', :c::bigint, 'type', 'read')), 1, 'it publishes one event');
SELECT pg_temp.last_event(:c, 'read') AS e \gset
SELECT is(jsonb_build_array(:'e'::jsonb -> 'v', :'e'::jsonb -> 'chat_id', :'e'::jsonb -> 'user_id', :'e'::jsonb -> 'seq'),
	jsonb_build_array(1, :c::bigint, 9001, 1), 'read event: the reader and the seq read');
SELECT is(pg_temp.recipients(:'e'), ARRAY[9000, 9001]::bigint[], 'read event: to every member (the reader''s other devices too)');
SELECT is(pg_temp.last_env(:c, 'read'), format('{"to":[9000,9001],"ev":{"v":1,"type":"read","chat_id":%s,"user_id":9001,"seq":1}}', :c),
	'read envelope, byte for byte');
SELECT lives_ok(format($$SELECT pg_temp.remote('SELECT chat.mark_read(9001, %s, 1)')$$, :c), 'marking the same seq read again');
SELECT is(pg_temp.events_until_marker(:c), 1, 'a mark_read that moves nothing publishes nothing');

-- delete: the message, deleted, body cleared.
SELECT lives_ok(format($$SELECT pg_temp.remote('SELECT chat.delete_message(9000, %s, 1)')$$, :c), 'a delete commits');
SELECT is(pg_temp.collect_until(:c, jsonb_build_object('chat_id', :c::bigint, 'type', 'delete')), 1, 'it publishes one event');
SELECT pg_temp.last_event(:c, 'delete') AS e \gset
SELECT is(jsonb_build_array(:'e'::jsonb -> 'v', :'e'::jsonb -> 'chat_id', :'e'::jsonb -> 'message' -> 'seq',
		:'e'::jsonb -> 'message' -> 'body', :'e'::jsonb -> 'message' -> 'deleted'),
	jsonb_build_array(1, :c::bigint, 1, '', true), 'delete event: the message, body empty, deleted true');
SELECT is(pg_temp.recipients(:'e'), ARRAY[9000, 9001]::bigint[], 'delete event: to every member');
SELECT lives_ok(format($$SELECT pg_temp.remote('SELECT chat.delete_message(9000, %s, 1)')$$, :c), 'deleting it again');
SELECT is(pg_temp.events_until_marker(:c), 1, 'a second delete publishes nothing');

-- An idempotent retry publishes nothing.
SELECT lives_ok(format($$SELECT pg_temp.remote('SELECT chat.send_message(9001, %s, ''with id'', ''d1eebc99-9c0b-4ef8-bb6d-6bb9bd380a44'')')$$, :c),
	'a send with a client_id');
SELECT is(pg_temp.collect_until(:c, jsonb_build_object('chat_id', :c::bigint, 'type', 'message', 'message', jsonb_build_object('body', 'with id'))), 1,
	'publishes its event');
SELECT lives_ok(format($$SELECT pg_temp.remote('SELECT chat.send_message(9001, %s, ''with id'', ''d1eebc99-9c0b-4ef8-bb6d-6bb9bd380a44'')')$$, :c),
	'the retry');
SELECT is(pg_temp.events_until_marker(:c), 1, 'the retry publishes nothing');

-- Calls that change no message or read cursor publish nothing.
SELECT lives_ok(format($$SELECT pg_temp.remote('SELECT count(*) FROM (SELECT chat.open_chat(9000, ''direct'', NULL, 9001), chat.open_chat(9000, ''listing'', 90, 9001),
		chat.set_archived(9000, %s, true), chat.set_archived(9000, %s, false), chat.set_muted(9001, %s, true), chat.set_muted(9001, %s, false),
		chat.block_user(9000, 9002), chat.unblock_user(9000, 9002), chat.unread_total(9001),
		(SELECT count(*) FROM chat.history(9000, %s)), (SELECT count(*) FROM chat.catch_up(9000, %s, 0)),
		(SELECT count(*) FROM chat.list_chats(9000))) s')$$, :c, :c, :c, :c, :c, :c), 'open_chat, set_archived, set_muted, block_user, unblock_user, reads');
SELECT is(pg_temp.events_until_marker(:c), 1, 'none of them published anything');
SELECT is((SELECT count(*) FROM events WHERE (event ->> 'chat_id')::bigint <> :c::bigint), 0::bigint,
	'(nor anything for another chat)');

-- Refused calls publish nothing.
SELECT is((pg_temp.try(format($$SELECT pg_temp.remote('SELECT chat.send_message(9002, %s, ''intruder'')')$$, :c))).state,
	'42501', 'a non-member''s send is refused');
SELECT is(pg_temp.events_until_marker(:c), 1, 'and publishes nothing');

-- A 4000-character Cyrillic message (8000 bytes) does not fit a NOTIFY
-- payload: it is stored whole and announced by ids only.
SELECT m AS big FROM dblink('sender', format($$SELECT chat.send_message(9000, %s, repeat('ж', 4000))$$, :c)) AS t(m jsonb) \gset
SELECT is(pg_temp.collect_until(:c, jsonb_build_object('chat_id', :c::bigint, 'type', 'message', 'seq', (:'big'::jsonb ->> 'seq')::bigint)), 1,
	'the long message publishes one event');
SELECT pg_temp.last_event(:c, 'message') AS e \gset
SELECT is((SELECT array[char_length(body), octet_length(body)] FROM chat.messages
		WHERE chat_id = :c AND seq = (:'big'::jsonb ->> 'seq')::bigint), ARRAY[4000, 8000],
	'the long message is stored whole: 4000 characters, 8000 bytes');
SELECT is(jsonb_build_array(:'e'::jsonb -> 'type', :'e'::jsonb -> 'chat_id', :'e'::jsonb -> 'seq', :'e'::jsonb -> 'inline'),
	jsonb_build_array('message', :c::bigint, :'big'::jsonb -> 'seq', false), 'its event carries the ids and inline: false');
SELECT ok(NOT (:'e'::jsonb ? 'message'), 'its event carries no message');
SELECT is(pg_temp.recipients(:'e'), ARRAY[9000, 9001]::bigint[], 'its event has the recipients');
SELECT cmp_ok(octet_length(pg_temp.last_payload(:c, 'message')), '<', 8000, 'its payload is under 8000 bytes');
SELECT is(pg_temp.last_env(:c, 'message'),
	format('{"to":[9000,9001],"ev":{"v":1,"type":"message","chat_id":%s,"seq":%s,"cursor":%s,"sender_id":9000,"inline":false}}',
		:c, :'big'::jsonb ->> 'seq', :'big'::jsonb ->> 'cursor'),
	'its envelope byte for byte: the event ends with ,"inline":false}');
SELECT is((left(substr(pg_temp.last_env(:c, 'message'), length('{"to":[9000,9001],"ev":') + 1),
			-length(',"inline":false}}')) || ',"inline":true,"message":' || (:'big'::jsonb)::text || '}')::jsonb,
	:'e'::jsonb - 'inline' || jsonb_build_object('inline', true, 'message', :'big'::jsonb),
	'the head before ,"inline":false plus ,"inline":true,"message":<message>} is the inline form');
SELECT is((SELECT char_length(m ->> 'body') FROM chat.history(9001, :c, (:'e'::jsonb ->> 'seq')::bigint + 1, 1) m), 4000,
	'a listener fetches it with history(before_seq => seq + 1, page_size => 1)');
SELECT lives_ok(format($$SELECT pg_temp.remote('SELECT chat.edit_message(9000, %s, %s, repeat(''щ'', 4000))')$$, :c, :'big'::jsonb ->> 'seq'),
	'the long message is edited to another long body');
SELECT is(pg_temp.collect_until(:c, jsonb_build_object('chat_id', :c::bigint, 'type', 'edit', 'seq', (:'big'::jsonb ->> 'seq')::bigint)), 1,
	'the edit publishes one event');
SELECT pg_temp.last_event(:c, 'edit') AS e \gset
SELECT ok((:'e'::jsonb -> 'inline') = 'false' AND NOT (:'e'::jsonb ? 'message')
		AND octet_length(pg_temp.last_payload(:c, 'edit')) < 8000, 'the long edit is announced by ids only, under 8000 bytes');

-- A short message after it is inline again.
SELECT lives_ok(format($$SELECT pg_temp.remote('SELECT chat.send_message(9001, %s, ''short'')')$$, :c), 'a short message');
SELECT is(pg_temp.collect_until(:c, jsonb_build_object('chat_id', :c::bigint, 'type', 'message', 'message', jsonb_build_object('body', 'short'))), 1,
	'is announced inline');
SELECT pg_temp.last_event(:c, 'message') AS e \gset
SELECT is(jsonb_build_array(:'e'::jsonb -> 'inline', :'e'::jsonb -> 'message' -> 'body'), '[true, "short"]'::jsonb,
	'inline: true, with the message');

-- The limit itself: 25 messages whose inline payload would be within a few
-- bytes of the most a sealed payload can hold (5960 bytes, which seal to at
-- most 7999) either way (bodies of 2-byte characters plus 0 or 1 ASCII
-- letter, sized from the overhead just measured). Each is inline exactly
-- when the whole payload stays at or under 5960 bytes.
SELECT octet_length(pg_temp.last_env(:c, 'message')) - octet_length('short') AS overhead \gset
SELECT coalesce(max(n), 0) AS mark FROM events \gset
SELECT is(pg_temp.remote(format('SELECT count(*) FROM (SELECT chat.send_message(9001, %s, repeat(''ж'', t / 2) || repeat(''a'', t %% 2)) '
		'FROM generate_series(%s, %s) t) s', :c, 5960 - :overhead - 12, 5960 - :overhead + 12)), '25',
	'25 messages around the limit');
SELECT is(pg_temp.collect_count(jsonb_build_object('chat_id', :c::bigint, 'type', 'message'),
		(SELECT last_seq FROM chat.chats WHERE chat_id = :c)::int), (SELECT last_seq FROM chat.chats WHERE chat_id = :c)::int,
	'one event each');
CREATE TEMP TABLE around_limit AS
SELECT e.event, octet_length(e.payload) AS len, octet_length(e.sealed) AS sealed_len,
	CASE WHEN (e.event -> 'inline')::bool THEN octet_length(e.env)
	     ELSE octet_length(e.env) - octet_length(',"inline":false}') + octet_length(',"inline":true,"message":')
	          + octet_length(m::text) + 1 END AS inline_len
FROM events e, chat.history(9001, :c, (e.event ->> 'seq')::bigint + 1, 1) m
WHERE e.n > :mark AND e.event @> jsonb_build_object('chat_id', :c::bigint, 'type', 'message');
SELECT is((SELECT count(*) FROM around_limit), 25::bigint, '(the 25 events and their messages)');
SELECT is_empty('SELECT len FROM around_limit WHERE len > 5960', 'every payload holds at most 5960 bytes');
SELECT is_empty('SELECT sealed_len FROM around_limit WHERE sealed_len >= 8000', 'every sealed payload is under 8000 bytes');
SELECT is_empty($$SELECT inline_len FROM around_limit WHERE (event -> 'inline')::bool <> (inline_len <= 5960)$$,
	'inline exactly when the payload with the message is at most 5960 bytes');
SELECT ok((SELECT bool_or((event -> 'inline')::bool) AND bool_or(NOT (event -> 'inline')::bool) FROM around_limit),
	'both sides of the limit were reached');
SELECT cmp_ok((SELECT max(len) FROM around_limit WHERE (event -> 'inline')::bool), '>=', 5950,
	'inline payloads go right up to the limit');

-- A 3900-character ASCII message still fits and rides inline.
SELECT lives_ok(format($$SELECT pg_temp.remote('SELECT chat.send_message(9000, %s, repeat(''a'', 3900))')$$, :c), 'a 3900-byte message');
SELECT is(pg_temp.collect_until(:c, jsonb_build_object('chat_id', :c::bigint, 'type', 'message', 'message', jsonb_build_object('body', repeat('a', 3900)))), 1,
	'is announced inline, with its whole body');

-- Several messages in one transaction: their events come in seq order.
SELECT coalesce(max(n), 0) AS mark FROM events \gset
SELECT is(pg_temp.remote(format($$BEGIN; SELECT chat.send_message(9000, %s, 'batch 1'); SELECT chat.send_message(9001, %s, 'batch 2');
		SELECT chat.send_message(9000, %s, 'batch 3'); COMMIT$$, :c, :c, :c)), 'COMMIT', 'three sends in one transaction');
SELECT is(pg_temp.collect_until(:c, jsonb_build_object('chat_id', :c::bigint, 'type', 'message', 'message', jsonb_build_object('body', 'batch 3'))), 3,
	'three events');
SELECT is((SELECT array_agg(event -> 'message' ->> 'body' ORDER BY n) FROM events
		WHERE n > :mark AND event @> jsonb_build_object('chat_id', :c::bigint, 'type', 'message')),
	ARRAY['batch 1', 'batch 2', 'batch 3'], 'in the order sent');
SELECT ok(EXISTS (SELECT FROM events WHERE n > :mark AND payload LIKE '[{"to":[%'),
	'they came batched: a payload that is a JSON array of envelopes');
SELECT is_empty($$SELECT note FROM events WHERE payload LIKE '[%' GROUP BY note, payload
		HAVING payload <> '[' || string_agg(env, ',' ORDER BY n) || ']' OR count(*) < 2$$,
	'every batch is exactly [env,env,...]: two or more envelopes joined by commas, nothing else');
SELECT is((SELECT array_agg((event -> 'message' ->> 'seq')::bigint ORDER BY n) FROM events
		WHERE n > :mark AND event @> jsonb_build_object('chat_id', :c::bigint, 'type', 'message')),
	ARRAY(SELECT seq FROM chat.messages WHERE chat_id = :c AND body LIKE 'batch %' ORDER BY seq),
	'which is seq order');

-- Every message event of the chat, in arrival order, has rising seqs.
SELECT is((SELECT array_agg(coalesce(event -> 'message' -> 'seq', event -> 'seq')::bigint ORDER BY n) FROM events
		WHERE event @> jsonb_build_object('chat_id', :c::bigint, 'type', 'message')),
	ARRAY(SELECT seq FROM chat.messages WHERE chat_id = :c ORDER BY seq),
	'one message event per stored message, in seq order');

-- A member whose user id is 0 is a member like any other: every event of
-- the chat lists them as a recipient.
-- (open_chat refuses a peer 0: user 0 opens it, its token is the application's word)
SELECT pg_temp.remote($$SELECT chat.open_chat(0, 'direct', NULL, 9010)$$) AS c0 \gset
SELECT lives_ok(format($$SELECT pg_temp.remote('SELECT chat.send_message(9010, %s, ''to user 0'')')$$, :c0), 'a message to user 0');
SELECT is(pg_temp.collect_until(:c0, jsonb_build_object('chat_id', :c0::bigint, 'type', 'message')), 1, 'its event');
SELECT is(pg_temp.recipients(pg_temp.last_event(:c0, 'message')), ARRAY[0, 9010]::bigint[], 'message event: user 0 is a recipient');
SELECT lives_ok(format($$SELECT pg_temp.remote('SELECT chat.edit_message(9010, %s, 1, ''to user 0 (edited)'')')$$, :c0), 'the message is edited');
SELECT is(pg_temp.collect_until(:c0, jsonb_build_object('chat_id', :c0::bigint, 'type', 'edit')), 1, 'its event');
SELECT is(pg_temp.recipients(pg_temp.last_event(:c0, 'edit')), ARRAY[0, 9010]::bigint[], 'edit event: user 0 is a recipient');
SELECT lives_ok(format($$SELECT pg_temp.remote('SELECT chat.mark_read(0, %s, 1)')$$, :c0), 'user 0 reads it');
SELECT is(pg_temp.collect_until(:c0, jsonb_build_object('chat_id', :c0::bigint, 'type', 'read')), 1, 'its event');
SELECT is(pg_temp.recipients(pg_temp.last_event(:c0, 'read')), ARRAY[0, 9010]::bigint[], 'read event: user 0 (the reader) is a recipient');
SELECT lives_ok(format($$SELECT pg_temp.remote('SELECT chat.delete_message(9010, %s, 1)')$$, :c0), 'the message is deleted');
SELECT is(pg_temp.collect_until(:c0, jsonb_build_object('chat_id', :c0::bigint, 'type', 'delete')), 1, 'its event');
SELECT is(pg_temp.recipients(pg_temp.last_event(:c0, 'delete')), ARRAY[0, 9010]::bigint[], 'delete event: user 0 is a recipient');

-- resync is a broadcast: "to" is null. Every publisher start announces it.
SELECT count(*) AS resyncs FROM events WHERE event @> '{"type": "resync"}' \gset
SELECT ok(pg_terminate_backend((chat.publisher_status() ->> 'publisher_pid')::int), 'the publisher is terminated');
SELECT is(pg_temp.collect_count('{"type": "resync", "reason": "publisher_start"}', :resyncs + 1), :resyncs + 1,
	'its successor announces resync');
SELECT is((SELECT array[env, payload] FROM events WHERE event @> '{"type": "resync"}' ORDER BY n DESC LIMIT 1),
	ARRAY['{"to":null,"ev":{"v":1,"type":"resync","reason":"publisher_start"}}',
		  '{"to":null,"ev":{"v":1,"type":"resync","reason":"publisher_start"}}'],
	'resync envelope, byte for byte, alone in its payload');

-- Clean up what the sender committed.
SELECT is(pg_temp.remote(format('DELETE FROM chat.messages WHERE chat_id IN (%s, %s)', :c, :c0)), 'DELETE 34', 'clean up: messages');
SELECT is(pg_temp.remote($$DELETE FROM chat.chats WHERE user_a BETWEEN 9000 AND 9099 OR (user_a = 0 AND user_b BETWEEN 9000 AND 9099)$$),
	'DELETE 3', 'clean up: the chats');
SELECT is(dblink_disconnect('sender'), 'OK', 'sender disconnected');
SELECT is(dblink_disconnect('listener'), 'OK', 'listener disconnected');

SELECT * FROM finish();
ROLLBACK;
