-- Devices and notification preferences (docs/notifications.md): every
-- token shape and its refusals, the same token is the same device (and
-- moves between users), own devices only, preferences merged and refused.
-- Users 40000..40099.
BEGIN;
\ir _helpers.psql
SELECT plan(86);

-- base64url without padding, as browsers write subscription keys.
CREATE FUNCTION pg_temp.b64url(b bytea) RETURNS text
LANGUAGE sql AS $$ SELECT translate(replace(encode(b, 'base64'), E'\n', ''), '+/=', '-_') $$;

-- A webpush token: endpoint, keys (p256dh of n bytes starting with lead, auth of m bytes).
CREATE FUNCTION pg_temp.wp(endpoint text, n int DEFAULT 65, m int DEFAULT 16, lead text DEFAULT '04')
RETURNS jsonb LANGUAGE sql AS $$
	SELECT jsonb_build_object('endpoint', endpoint, 'expirationTime', NULL, 'keys', jsonb_build_object(
		'p256dh', pg_temp.b64url(decode(lead || repeat('a1', n - 1), 'hex')),
		'auth', pg_temp.b64url(decode(repeat('5c', m), 'hex'))))
$$;

-- "SQLSTATE: message" of register_device(user, kind, token).
CREATE FUNCTION pg_temp.reg(u bigint, kind text, token jsonb) RETURNS text
LANGUAGE sql AS $$ SELECT pg_temp.outcome(format('SELECT chat.register_device(%s, %L, %L)', u, kind, token)) $$;

-- Register, answer the id.
CREATE FUNCTION pg_temp.reg_id(u bigint, kind text, token jsonb) RETURNS bigint
LANGUAGE sql AS $$ SELECT chat.register_device(u, kind, token) $$;

CREATE FUNCTION pg_temp.prefs(u bigint, p jsonb) RETURNS text
LANGUAGE sql AS $$ SELECT pg_temp.outcome(format('SELECT chat.set_notify_prefs(%s, %L)', u, p)) $$;

-- Web Push: the subscription as stored, the same endpoint again is the same device.
SELECT pg_temp.reg_id(40001, 'webpush', pg_temp.wp('https://push.example.com/send/a1')) AS wp1 \gset
SELECT is((SELECT token FROM chat.devices WHERE device_id = :wp1),
	jsonb_build_object('endpoint', 'https://push.example.com/send/a1', 'keys', pg_temp.wp('https://x') -> 'keys'),
	'webpush: the endpoint and keys are stored, expirationTime is not');
SELECT is(pg_temp.reg_id(40001, 'webpush', pg_temp.wp('https://push.example.com/send/a1', 65, 16, '04')), :wp1::bigint,
	'webpush: the same endpoint again is the same device');
SELECT is(pg_temp.reg_id(40001, 'webpush', jsonb_set(pg_temp.wp('https://push.example.com/send/a1'), '{keys,auth}',
	to_jsonb(pg_temp.b64url(decode(repeat('77', 16), 'hex'))))), :wp1::bigint, 'with new keys too');
SELECT is((SELECT token #>> '{keys,auth}' FROM chat.devices WHERE device_id = :wp1), pg_temp.b64url(decode(repeat('77', 16), 'hex')),
	'which replace the old ones');
SELECT isnt(pg_temp.reg_id(40001, 'webpush', pg_temp.wp('https://push.example.com/send/a2')), :wp1::bigint,
	'another endpoint is another device');
SELECT is(pg_temp.reg(40001, 'webpush', pg_temp.wp('https://push.example.com/p') - 'expirationTime'), 'ok',
	'expirationTime may be left out');
SELECT is(pg_temp.reg(40001, 'webpush', jsonb_set(pg_temp.wp('https://push.example.com/p'), '{keys,p256dh}',
	to_jsonb((pg_temp.wp('https://x') #>> '{keys,p256dh}') || '='))), 'ok', 'padded base64url is accepted');

-- FCM and APNs.
SELECT pg_temp.reg_id(40002, 'fcm', '{"token": "fcm:Token_1-x"}') AS fcm1 \gset
SELECT is(pg_temp.reg_id(40002, 'fcm', '{"token": "fcm:Token_1-x"}'), :fcm1::bigint, 'fcm: the same token is the same device');
SELECT is(pg_temp.reg(40002, 'fcm', jsonb_build_object('token', repeat('a', 4096))), 'ok', 'fcm: 4,096 bytes are accepted');
SELECT pg_temp.reg_id(40003, 'apns', jsonb_build_object('token', repeat('AB', 32))) AS apns1 \gset
SELECT is((SELECT token FROM chat.devices WHERE device_id = :apns1),
	jsonb_build_object('token', repeat('ab', 32), 'environment', 'production'),
	'apns: the token is stored in lower case, the environment defaults to production');
SELECT is(pg_temp.reg_id(40003, 'apns', jsonb_build_object('token', repeat('ab', 32), 'environment', 'sandbox')), :apns1::bigint,
	'apns: the same token in another case is the same device');
SELECT is((SELECT token ->> 'environment' FROM chat.devices WHERE device_id = :apns1), 'sandbox', 'its environment changed');
SELECT isnt(pg_temp.reg_id(40003, 'fcm', jsonb_build_object('token', repeat('ab', 32))), :apns1::bigint,
	'the same text as an fcm token is another device');

-- A token registered by another user moves to them.
SELECT is(pg_temp.reg_id(40004, 'fcm', '{"token": "fcm:Token_1-x"}'), :fcm1::bigint, 'a token registered by another user keeps its id');
SELECT is((SELECT user_id FROM chat.devices WHERE device_id = :fcm1), 40004::bigint, 'and moves to that user');
SELECT is((SELECT count(*) FROM chat.devices WHERE address = 'fcm:Token_1-x'), 1::bigint, 'one row per token');
SELECT is(pg_temp.reg_id(40001, 'webpush', pg_temp.wp('https://push.example.com/send/a1')), :wp1::bigint, 'webpush too');

-- Refusals: NULLs, users, kinds, shapes.
SELECT is(pg_temp.outcome('SELECT chat.register_device(NULL, ''fcm'', ''{"token":"a"}'')'), '22023: user_id must not be null', 'NULL user_id');
SELECT is(pg_temp.outcome('SELECT chat.register_device(40001, NULL, ''{"token":"a"}'')'), '22023: kind must not be null', 'NULL kind');
SELECT is(pg_temp.outcome('SELECT chat.register_device(40001, ''fcm'', NULL)'), '22023: token must not be null', 'NULL token');
SELECT is(pg_temp.reg(0, 'fcm', '{"token": "a"}'), '22023: user_id must be between 1 and 9007199254740991, not 0', 'user id 0');
SELECT is(pg_temp.reg(40001, 'sms', '{"token": "a"}'), '22023: unknown device kind "sms"', 'an unknown kind');
SELECT is(pg_temp.reg(40001, 'fcm', '["a"]'), '22023: token must be a JSON object', 'an array is not a token');
SELECT is(pg_temp.reg(40001, 'fcm', '"a"'), '22023: token must be a JSON object', 'nor a string');

-- webpush shapes.
SELECT is(pg_temp.reg(40001, 'webpush', pg_temp.wp('https://p.example.com/') || '{"extra": 1}'),
	'22023: unknown key "extra" in a webpush token', 'webpush: an unknown key');
SELECT is(pg_temp.reg(40001, 'webpush', pg_temp.wp('https://p.example.com/') - 'endpoint'),
	'22023: a webpush token needs "endpoint", a string', 'webpush: no endpoint');
SELECT is(pg_temp.reg(40001, 'webpush', jsonb_set(pg_temp.wp('https://p.example.com/'), '{endpoint}', '7')),
	'22023: a webpush token needs "endpoint", a string', 'webpush: an endpoint that is not a string');
SELECT is(pg_temp.reg(40001, 'webpush', pg_temp.wp('http://p.example.com/')),
	'22023: the webpush endpoint must be an https:// URL', 'webpush: http:// is refused');
SELECT is(pg_temp.reg(40001, 'webpush', pg_temp.wp('https:///path')),
	'22023: the webpush endpoint must be an https:// URL with a host', 'webpush: no host');
SELECT is(pg_temp.reg(40001, 'webpush', pg_temp.wp('https://p.example.com:99999/')),
	'22023: the webpush endpoint must be an https:// URL with a port from 1 to 65535', 'webpush: a bad port');
SELECT is(pg_temp.reg(40001, 'webpush', pg_temp.wp('https://p.example.com/a b')),
	'22023: the webpush endpoint must be printable ASCII without spaces', 'webpush: a space');
SELECT is(pg_temp.reg(40001, 'webpush', pg_temp.wp('https://p.example.com/' || repeat('a', 2027))),
	'22023: the webpush endpoint is 2049 bytes long, the limit is 2048', 'webpush: over 2,048 bytes');
SELECT is(pg_temp.reg(40001, 'webpush', pg_temp.wp('https://p.example.com/' || repeat('a', 2026))), 'ok',
	'webpush: 2,048 bytes are accepted');
SELECT is(pg_temp.reg(40001, 'webpush', pg_temp.wp('https://p.example.com/') - 'keys'),
	'22023: a webpush token needs "keys", an object with p256dh and auth', 'webpush: no keys');
SELECT is(pg_temp.reg(40001, 'webpush', jsonb_set(pg_temp.wp('https://p.example.com/'), '{keys}', '"k"')),
	'22023: a webpush token needs "keys", an object with p256dh and auth', 'webpush: keys not an object');
SELECT is(pg_temp.reg(40001, 'webpush', jsonb_set(pg_temp.wp('https://p.example.com/'), '{keys,x}', '"k"')),
	'22023: unknown key "x" in webpush token keys', 'webpush: an unknown key in keys');
SELECT is(pg_temp.reg(40001, 'webpush', pg_temp.wp('https://p.example.com/') #- '{keys,auth}'),
	'22023: webpush token keys needs "auth", a string', 'webpush: no auth');
SELECT is(pg_temp.reg(40001, 'webpush', pg_temp.wp('https://p.example.com/', 64)),
	'22023: webpush token keys.p256dh must be base64url of 65 bytes', 'webpush: p256dh of 64 bytes');
SELECT is(pg_temp.reg(40001, 'webpush', pg_temp.wp('https://p.example.com/', 65, 16, '03')),
	'22023: webpush token keys.p256dh must be an uncompressed P-256 point (its first byte 0x04)', 'webpush: p256dh not a point');
SELECT is(pg_temp.reg(40001, 'webpush', pg_temp.wp('https://p.example.com/', 65, 17)),
	'22023: webpush token keys.auth must be base64url of 16 bytes', 'webpush: auth of 17 bytes');
SELECT is(pg_temp.reg(40001, 'webpush', jsonb_set(pg_temp.wp('https://p.example.com/'), '{keys,auth}',
	to_jsonb(replace(encode(decode(repeat('fb', 16), 'hex'), 'base64'), '=', '')))),
	'22023: webpush token keys.auth must be base64url of 16 bytes', 'webpush: base64 with + and / is not base64url');

-- fcm and apns shapes.
SELECT is(pg_temp.reg(40001, 'fcm', '{}'), '22023: an fcm token needs "token", a string', 'fcm: no token');
SELECT is(pg_temp.reg(40001, 'fcm', '{"token": ""}'),
	'22023: an fcm token must be 1 to 4096 characters of A-Z, a-z, 0-9, '':'', ''_'' and ''-''', 'fcm: empty');
SELECT is(pg_temp.reg(40001, 'fcm', '{"token": "a/b"}'),
	'22023: an fcm token must be 1 to 4096 characters of A-Z, a-z, 0-9, '':'', ''_'' and ''-''', 'fcm: a character outside the set');
SELECT is(pg_temp.reg(40001, 'fcm', jsonb_build_object('token', repeat('a', 4097))),
	'22023: an fcm token must be 1 to 4096 characters of A-Z, a-z, 0-9, '':'', ''_'' and ''-''', 'fcm: 4,097 bytes');
SELECT is(pg_temp.reg(40001, 'fcm', '{"token": "a", "environment": "sandbox"}'),
	'22023: unknown key "environment" in an fcm token', 'fcm: an unknown key');
SELECT is(pg_temp.reg(40001, 'apns', jsonb_build_object('token', repeat('a', 63))),
	'22023: an apns token must be 64 hexadecimal digits', 'apns: 63 digits');
SELECT is(pg_temp.reg(40001, 'apns', jsonb_build_object('token', repeat('g', 64))),
	'22023: an apns token must be 64 hexadecimal digits', 'apns: not hexadecimal');
SELECT is(pg_temp.reg(40001, 'apns', jsonb_build_object('token', repeat('a', 64), 'environment', 'staging')),
	'22023: an apns token''s environment must be production or sandbox, not "staging"', 'apns: an unknown environment');
SELECT is(pg_temp.reg(40001, 'apns', jsonb_build_object('token', repeat('a', 64), 'environment', 1)),
	'22023: an apns token needs "environment", a string', 'apns: an environment that is not a string');

-- Own devices only.
SELECT is(pg_temp.outcome(format('SELECT chat.unregister_device(40002, %s)', :fcm1)), '42501: chat not found or access denied',
	'a device that moved away cannot be unregistered by its former user');
SELECT is(pg_temp.outcome(format('SELECT chat.unregister_device(40004, %s)', :fcm1)), 'ok', 'its user unregisters it');
SELECT is((SELECT count(*) FROM chat.devices WHERE device_id = :fcm1), 0::bigint, 'and it is gone');
SELECT is(pg_temp.outcome(format('SELECT chat.unregister_device(40004, %s)', :fcm1)), '42501: chat not found or access denied',
	'a missing device gets the same refusal');
SELECT is(pg_temp.outcome('SELECT chat.unregister_device(40004, NULL)'), '22023: device_id must not be null', 'NULL device_id');
SELECT is(pg_temp.outcome('SELECT chat.unregister_device(NULL, 1)'), '22023: user_id must not be null', 'NULL user_id');

-- Preferences: defaults, merges, every key.
SELECT is(chat.notify_prefs(40010),
	'{"email": "10min", "email_address": null, "push": true, "preview": true, "language": "en"}'::jsonb,
	'a user who set nothing has the defaults');
SELECT is(chat.set_notify_prefs(40010, '{"email": "hourly", "email_address": "seller@example.com"}'),
	'{"email": "hourly", "email_address": "seller@example.com", "push": true, "preview": true, "language": "en"}'::jsonb,
	'set_notify_prefs returns every preference');
SELECT is(chat.set_notify_prefs(40010, '{"push": false, "language": "sr"}'),
	'{"email": "hourly", "email_address": "seller@example.com", "push": false, "preview": true, "language": "sr"}'::jsonb,
	'a second call merges into the first');
SELECT is(chat.set_notify_prefs(40010, '{"preview": false, "email": "immediately"}') ->> 'email', 'immediately', 'a key set again changes');
SELECT is(chat.set_notify_prefs(40010, '{"email_address": null}') -> 'email_address', 'null'::jsonb, 'null clears email_address');
SELECT is((SELECT prefs FROM chat.notify_prefs WHERE user_id = 40010),
	'{"email": "immediately", "push": false, "preview": false, "language": "sr"}'::jsonb, 'only what was set is stored, no nulls');
SELECT is(chat.notify_prefs(40010), chat.set_notify_prefs(40010, '{}'), 'notify_prefs reads what set_notify_prefs returns; {} changes nothing');
SELECT is(chat.notify_prefs(40011) ->> 'email', '10min', 'another user is untouched');

-- Preference refusals, each changing nothing.
SELECT is(pg_temp.prefs(40010, jsonb_build_object('email_address', repeat('a', 249) || '@c.de')), 'ok',
	'an email_address of 254 bytes is accepted');
SELECT chat.set_notify_prefs(40010, '{"email_address": null}') IS NOT NULL AS cleared \gset
SELECT chat.notify_prefs(40010)::text AS before \gset
SELECT is(pg_temp.prefs(40010, '{"sms": true}'), '22023: unknown key "sms" in prefs', 'an unknown key');
SELECT is(pg_temp.prefs(40010, '{"email": "weekly"}'), '22023: email must be off, immediately, 10min, hourly or daily', 'an unknown email mode');
SELECT is(pg_temp.prefs(40010, '{"email": null}'), '22023: email must be off, immediately, 10min, hourly or daily', 'email null');
SELECT is(pg_temp.prefs(40010, '{"push": "yes"}'), '22023: push must be true or false', 'push not a boolean');
SELECT is(pg_temp.prefs(40010, '{"preview": 1}'), '22023: preview must be true or false', 'preview not a boolean');
SELECT is(pg_temp.prefs(40010, '{"language": "de"}'), '22023: language must be en, ru or sr', 'an unknown language');
SELECT is(pg_temp.prefs(40010, '{"email_address": "no-at-sign"}'), '22023: email_address must be an address: name@domain', 'no @');
SELECT is(pg_temp.prefs(40010, '{"email_address": "a@b@c"}'), '22023: email_address must contain one "@", not more', 'two @');
SELECT is(pg_temp.prefs(40010, '{"email_address": "a b@c.d"}'), '22023: email_address must not contain spaces or control characters', 'a space');
SELECT is(pg_temp.prefs(40010, jsonb_build_object('email_address', 'a' || chr(10) || '@c.d')),
	'22023: email_address must not contain spaces or control characters', 'a newline (header injection)');
SELECT is(pg_temp.prefs(40010, jsonb_build_object('email_address', repeat('a', 250) || '@c.de')),
	'22023: email_address is 255 bytes long, the limit is 254', 'over 254 bytes');
SELECT is(pg_temp.prefs(40010, '{"email_address": 5}'), '22023: email_address must be a string or null', 'an address that is not a string');
SELECT is(pg_temp.prefs(40010, '[1]'), '22023: prefs must be a JSON object', 'prefs not an object');
SELECT is(pg_temp.outcome('SELECT chat.set_notify_prefs(40010, NULL)'), '22023: prefs must not be null', 'NULL prefs');
SELECT is(pg_temp.outcome('SELECT chat.notify_prefs(NULL)'), '22023: user_id must not be null', 'NULL user_id');
SELECT is(pg_temp.prefs(40010, '{"email": "daily", "sms": true}'), '22023: unknown key "sms" in prefs', 'a good key beside a bad one');
SELECT is(chat.notify_prefs(40010)::text, :'before', 'no refused call changed anything');

-- As chat_app: the functions, not the tables.
SET LOCAL ROLE chat_app;
SELECT is(chat.register_device(40020, 'fcm', '{"token": "as-chat-app"}') > 0, true, 'chat_app registers a device');
SELECT is(chat.set_notify_prefs(40020, '{"email": "off"}') ->> 'email', 'off', 'and sets preferences');
SELECT throws_ok('SELECT * FROM chat.devices', '42501', NULL, 'but cannot read chat.devices');
SELECT throws_ok('SELECT * FROM chat.notify_prefs', '42501', NULL, 'nor chat.notify_prefs');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
