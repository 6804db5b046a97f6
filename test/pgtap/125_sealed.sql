-- Sealed events: who may read the keys, seal and open; rotation and
-- retirement; event_open refusals; the per-recipient fetch of large
-- messages; chat.security_report(). Users 12500..12599.
BEGIN;
\ir _helpers.psql
SELECT plan(33);

-- Only the owner (and superusers) read the keys; chat_event_reader gets them through a function.
SELECT ok(NOT has_table_privilege('chat_app', 'chat.event_keys', 'SELECT')
	AND NOT has_table_privilege('chat_relay', 'chat.event_keys', 'SELECT')
	AND NOT has_table_privilege('chat_event_reader', 'chat.event_keys', 'SELECT'),
	'no chat role may select chat.event_keys');
SELECT ok(NOT has_sequence_privilege('chat_app', 'chat.event_seq', 'USAGE')
	AND NOT has_sequence_privilege('chat_relay', 'chat.event_seq', 'UPDATE'),
	'no chat role may draw or set payload numbers');
SELECT ok(has_function_privilege('chat_relay', 'chat.event_keyring()', 'EXECUTE')
	AND has_function_privilege('chat_relay', 'chat.event_message(bigint, bigint, bigint[])', 'EXECUTE'),
	'chat_relay (through chat_event_reader) may load the keys and fetch large messages');
SELECT ok(NOT has_function_privilege('chat_app', 'chat.event_keyring()', 'EXECUTE')
	AND NOT has_function_privilege('chat_app', 'chat.event_message(bigint, bigint, bigint[])', 'EXECUTE'),
	'chat_app may not load the keys nor fetch for recipients');
SELECT is_empty($$
	SELECT r.rolname, f.sig FROM (VALUES ('chat_app'), ('chat_relay'), ('chat_event_reader')) AS r(rolname),
		(VALUES ('chat.event_seal(text)'), ('chat.event_open(text)'), ('chat.rotate_event_key(interval)'),
				('chat.retire_event_keys(interval)'), ('chat.security_report()')) AS f(sig)
	WHERE has_function_privilege(r.rolname, f.sig, 'EXECUTE')$$,
	'sealing, opening, rotating, retiring and the report are the owner''s only');
SELECT ok(pg_has_role('chat_relay', 'chat_event_reader', 'MEMBER') AND NOT pg_has_role('chat_app', 'chat_event_reader', 'MEMBER'),
	'chat_relay is a chat_event_reader, chat_app is not');

-- Sealing and opening.
SELECT chat.rotate_event_key('0') AS k1 \gset
SELECT chat.event_seal('{"to":[1],"ev":{"v":1,"type":"typing"}}') AS s1 \gset
SELECT ok(:'s1' LIKE 'c1.' || :k1 || '.%', 'a payload is sealed under the newest active key');
SELECT is(chat.event_open(:'s1'), '{"to":[1],"ev":{"v":1,"type":"typing"}}', 'and opens to what was sealed');
SELECT ok(position('typing' in :'s1') = 0, 'nothing of it is readable');
SELECT isnt(chat.event_seal('x'), chat.event_seal('x'), 'the same payload seals differently each time (a new number)');
SELECT is(pg_temp.outcome(format('SELECT chat.event_open(%L)', overlay(:'s1' placing
		CASE WHEN substr(:'s1', 20, 1) = 'A' THEN 'B' ELSE 'A' END from 20 for 1))),
	'22023: the payload does not open under event key ' || :k1 || ': forged or damaged', 'a changed byte does not open');
SELECT is(pg_temp.outcome(format('SELECT chat.event_open(%L)', 'c1.' || :k1 + 1000 || substr(:'s1', length('c1.' || :k1) + 1))),
	'22023: no event key ' || :k1 + 1000, 'an unknown key id');
SELECT is(pg_temp.outcome($$SELECT chat.event_open('{"to":[1],"ev":{}}')$$),
	'22023: not a sealed event payload', 'plain JSON is not a sealed payload');
SELECT is(pg_temp.outcome($$SELECT chat.event_open('c1.1.!!!!')$$),
	'22023: not a sealed event payload: bad base64 or too short', 'bad base64');
SELECT is(pg_temp.outcome($$SELECT chat.event_seal(repeat('a', 5961))$$),
	'54000: payload is 5961 bytes; at most 5960 can be sealed', 'over the sealable size');
SELECT cmp_ok(octet_length(chat.event_seal(repeat('ж', 2980))), '<', 8000, '5960 bytes seal to under 8000');

-- Rotation: a pending key is not used before its time; retiring keeps the current and pending ones.
SELECT chat.rotate_event_key('1 hour') AS pending \gset
SELECT ok(chat.event_seal('x') LIKE 'c1.' || :k1 || '.%', 'a key with a lead is not used yet');
SELECT is((SELECT count(*) FROM chat.event_keyring() WHERE key_id = :pending), 1::bigint, 'but listeners get it already');
SELECT chat.rotate_event_key('0') AS k2 \gset
SELECT ok(chat.event_seal('x') LIKE 'c1.' || :k2 || '.%', 'the next key is used at once with lead 0');
SELECT is(chat.retire_event_keys('1 hour'), 0, 'nothing is retired before the current key has sealed for keep');
SELECT cmp_ok(chat.retire_event_keys('0'), '>=', 1, 'retiring deletes the keys before the current one');
SELECT is(ARRAY(SELECT id FROM chat.event_keys ORDER BY id), ARRAY[:pending, :k2]::int[], 'the current and the pending key stay');
SELECT is(pg_temp.outcome($$SELECT chat.rotate_event_key(NULL)$$),
	'22023: lead must not be NULL', 'a NULL lead is refused');
SELECT ok((SELECT bool_and(last_seq > 0) FROM chat.event_keyring()), 'the keyring carries the last payload number');

-- The large-message fetch answers for members only.
SELECT chat.open_chat(12501, 'direct', NULL, 12502) AS c \gset
SELECT (chat.send_message(12502, :c, 'big enough') ->> 'seq')::bigint AS seq \gset
SELECT is((SELECT members FROM chat.event_message(:c, :seq, ARRAY[12501, 12599])), ARRAY[12501]::bigint[],
	'only the recipients that are members');
SELECT is((SELECT message ->> 'body' FROM chat.event_message(:c, :seq, ARRAY[12599, 12501])), 'big enough', 'with the message');
SELECT is_empty(format('SELECT * FROM chat.event_message(%s, %s, ARRAY[12599, 12598])', :c, :seq),
	'nothing when no recipient is a member');
SELECT is_empty(format('SELECT * FROM chat.event_message(%s, %s, ARRAY[12501])', :c, :seq + 5),
	'nothing for a seq the chat does not have');

-- The DBA's report.
GRANT CONNECT ON DATABASE :"DBNAME" TO PUBLIC;
SELECT is((SELECT status FROM chat.security_report() WHERE item = 'public_connect'), 'open', 'PUBLIC CONNECT is reported');
REVOKE CONNECT ON DATABASE :"DBNAME" FROM PUBLIC;
SELECT is((SELECT status FROM chat.security_report() WHERE item = 'public_connect'), 'ok', 'and its absence');
CREATE ROLE t125_stranger LOGIN;
GRANT CONNECT ON DATABASE :"DBNAME" TO t125_stranger;
SELECT is((SELECT status FROM chat.security_report() WHERE item = 'can_connect' AND detail LIKE 'role t125_stranger %'), 'open',
	'a login role with no chat role that may connect is reported');
SELECT is((SELECT status FROM chat.security_report() WHERE item = 'event_key'), 'ok', 'the current key is reported');
SELECT ok((SELECT count(*) FROM pg_hba_file_rules WHERE auth_method = 'trust') =
		  (SELECT count(*) FROM chat.security_report() WHERE item = 'trust_auth' AND status = 'open'),
	'every trust line of pg_hba.conf is reported open');

SELECT * FROM finish();
ROLLBACK;
