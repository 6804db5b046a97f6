-- Idempotency is keyed on (chat, sender, client_id): a member who reuses
-- another member's client_id (guessed, or copied from an event) gets a new
-- message of their own, never the other's message back. Users 2200..2299.
BEGIN;
\ir _helpers.psql
SELECT plan(6);

SELECT chat.open_chat(2201, 'direct', NULL, 2202) AS c \gset

SELECT chat.send_message(2201, :c, 'from 2201', '00000000-0000-4000-8000-000000002201') AS m1 \gset
SELECT chat.send_message(2202, :c, 'from 2202', '00000000-0000-4000-8000-000000002201') AS m2 \gset

SELECT is((:'m2'::jsonb) ->> 'sender_id', '2202', 'the other member''s send with the same client_id is their own message');
SELECT is((:'m2'::jsonb) ->> 'body', 'from 2202', '... with their body, not the first sender''s');
SELECT is(((:'m2'::jsonb) ->> 'seq')::int, 2, '... stored as a new message (seq 2)');
SELECT is((SELECT count(*) FROM chat.messages WHERE chat_id = :c), 2::bigint, 'both messages are stored');

-- each sender's retry still finds their own message
SELECT is(chat.send_message(2201, :c, 'again', '00000000-0000-4000-8000-000000002201'), :'m1'::jsonb,
	'the first sender''s retry returns their message');
SELECT is(chat.send_message(2202, :c, 'again', '00000000-0000-4000-8000-000000002201'), :'m2'::jsonb,
	'the second sender''s retry returns theirs');

SELECT * FROM finish();
ROLLBACK;
