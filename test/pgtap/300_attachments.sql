-- Attachments: signing, configuration secrecy, upload policy, linking,
-- download URLs, expiry. Every refusal is tested. Users 3001–3005 only.
\set ON_ERROR_STOP 1
\set QUIET 1
\pset format unaligned
\pset tuples_only on
BEGIN;
SELECT plan(102);

-- Fixtures: 3001 buyer and 3002 seller in chat c1; 3001 and 3003 in c2;
-- 3004 is in no chat; 3005 will block 3001 in c3.
SELECT chat.configure_storage(jsonb_build_object(
	'endpoint', 'http://minio.internal:9000', 'public_endpoint', 'https://files.example.test',
	'bucket', 'chat-test', 'region', 'eu-central-1', 'access_key', 'AKPGTAP',
	'secret_key', 'pgtap-secret-never-shown', 'max_pending_uploads', 6)) IS NOT NULL AS configured \gset
SELECT chat.open_chat(3001, 'listing', 300001, 3002) AS c1 \gset
SELECT chat.open_chat(3001, 'direct', NULL, 3003) AS c2 \gset
SELECT chat.open_chat(3001, 'direct', NULL, 3005) AS c3 \gset

-- Error text, detail, hint and context of a statement, '' when it succeeds.
-- The context stops before the caller's own statement (this EXECUTE), which
-- holds whatever the test passed in.
CREATE FUNCTION pg_temp.error_text(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	m text; d text; h text; c text;
BEGIN
	EXECUTE sql;
	RETURN '';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT,
		c = PG_EXCEPTION_CONTEXT;
	RETURN concat_ws(' | ', m, d, h, split_part(c, 'SQL statement "SELECT chat.configure_storage(', 1));
END
$$;

-- A query parameter of a URL, still percent-encoded.
CREATE FUNCTION pg_temp.param(url text, name text) RETURNS text LANGUAGE sql AS $$
	SELECT (regexp_match(url, '[?&]' || name || '=([^&]*)'))[1]
$$;

---------------------------------------------------------------- signing
SELECT is(chat.s3_presign('GET', 'https://s3.amazonaws.com', 'examplebucket', 'test.txt', 86400,
		'2013-05-24T00:00:00Z', 'us-east-1', 'AKIAIOSFODNN7EXAMPLE',
		'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', true),
	'https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256'
	'&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request'
	'&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host'
	'&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404',
	's3_presign reproduces the AWS worked example for presigned URLs');
SELECT is(chat.s3_presign('GET', 'https://s3.example.test:443', 'b-1', 'k', 60, '2024-01-02 03:04:05+00', 'us-east-1', 'a', 's'),
	chat.s3_presign('GET', 'https://S3.Example.Test/', 'b-1', 'k', 60, '2024-01-02 03:04:05+00', 'us-east-1', 'a', 's'),
	'a default port and host case do not change the URL or signature');
SELECT is(chat.s3_presign('GET', 'http://s3.example.test:80', 'b-1', 'k', 60, '2024-01-02 03:04:05.999+00', 'us-east-1', 'a', 's'),
	chat.s3_presign('GET', 'http://s3.example.test', 'b-1', 'k', 60, '2024-01-02 03:04:05+00', 'us-east-1', 'a', 's'),
	'http default port dropped; fractions of a second ignored');
SELECT isnt(chat.s3_presign('GET', 'http://s3.example.test:9000', 'b-1', 'k', 60, '2024-01-02 03:04:05+00', 'us-east-1', 'a', 's'),
	chat.s3_presign('GET', 'http://s3.example.test', 'b-1', 'k', 60, '2024-01-02 03:04:05+00', 'us-east-1', 'a', 's'),
	'a non-default port is signed');
SELECT is(split_part(split_part(chat.s3_presign('GET', 'http://s3.example.test', 'b-1', 'a b+c/é~*()!''&=?#.txt', 60, now(), 'us-east-1', 'a', 's'), '?', 1), '/b-1/', 2),
	'a%20b%2Bc/%C3%A9~%2A%28%29%21%27%26%3D%3F%23.txt',
	'key bytes are encoded by the SigV4 rules, slashes kept');
SELECT is(pg_temp.param(chat.s3_presign('PUT', 'http://s3.example.test', 'b-1', 'k', 60, now(), 'us-east-1', 'a', 's', false,
		'{"Content-Type": "image/png", "content-length": 12, "x-amz-acl": "private"}'), 'X-Amz-SignedHeaders'),
	'content-length%3Bcontent-type%3Bhost%3Bx-amz-acl', 'signed headers: lowercase, sorted, host included');
SELECT is(pg_temp.param(chat.s3_presign('GET', 'http://s3.example.test', 'b-1', 'k', 60, now(), 'us-east-1', 'a', 's', false,
		NULL, '{"response-content-disposition": "attachment; filename=\"a b.txt\""}'), 'response-content-disposition'),
	'attachment%3B%20filename%3D%22a%20b.txt%22', 'extra query parameters are encoded and signed');
SELECT ok(chat.s3_presign('DELETE', 'http://s3.example.test', 'b-1', 'k', 60, now(), 'us-east-1', 'a', 's', true)
	LIKE 'http://b-1.s3.example.test/k?%', 'virtual-hosted style puts the bucket in the host');
SELECT throws_ok($$SELECT chat.s3_presign('GET', 'http://s3.example.test', 'b-1', 'k', 604801, now(), 'us-east-1', 'a', 's')$$,
	'22023', 'expires_s must be between 1 and 604800 (7 days), not 604801', 'S3 allows at most 7 days');
SELECT throws_ok($$SELECT chat.s3_presign('GET', 'http://s3.example.test', 'b-1', 'k', 0, now(), 'us-east-1', 'a', 's')$$,
	'22023', 'expires_s must be between 1 and 604800 (7 days), not 0', 'expiry must be positive');
SELECT throws_ok($$SELECT chat.s3_presign('GET', 'ftp://s3.example.test', 'b-1', 'k', 60, now(), 'us-east-1', 'a', 's')$$,
	'22023', 'endpoint must look like https://host or http://host:port, not "ftp://s3.example.test"', 'only http(s) endpoints');
SELECT throws_ok($$SELECT chat.s3_presign('GET', 'http://s3.example.test/prefix', 'b-1', 'k', 60, now(), 'us-east-1', 'a', 's')$$,
	'22023', NULL, 'an endpoint with a path is refused');
SELECT throws_ok($$SELECT chat.s3_presign('GET', 'http://user@s3.example.test', 'b-1', 'k', 60, now(), 'us-east-1', 'a', 's')$$,
	'22023', NULL, 'an endpoint with user info is refused');
SELECT throws_ok($$SELECT chat.s3_presign('GET', 'http://s3.example.test', 'Bad_Bucket', 'k', 60, now(), 'us-east-1', 'a', 's')$$,
	'22023', 'bucket must be an S3 bucket name, not "Bad_Bucket"', 'bucket names are checked');
SELECT throws_ok($$SELECT chat.s3_presign('GET', 'http://s3.example.test', 'b-1', '', 60, now(), 'us-east-1', 'a', 's')$$,
	'22023', 'key must not be empty', 'empty key');
SELECT throws_ok($$SELECT chat.s3_presign('POST', 'http://s3.example.test', 'b-1', 'k', 60, now(), 'us-east-1', 'a', 's')$$,
	'22023', 'method must be GET, PUT, HEAD or DELETE, not "POST"', 'methods are limited');
SELECT throws_ok($$SELECT chat.s3_presign('GET', 'http://s3.example.test', 'b-1', 'k', 60, now(), 'us-east-1', 'a', 's', false, '{"Host": "evil"}')$$,
	'22023', 'host is always signed and cannot be given as a signed header', 'host cannot be overridden');
SELECT throws_ok($$SELECT chat.s3_presign('GET', 'http://s3.example.test', 'b-1', 'k', 60, now(), 'us-east-1', 'a', 's', false, '{"a": "x\ny"}')$$,
	'22023', 'the value of header "a" contains a control character', 'header values cannot smuggle lines');
SELECT throws_ok($$SELECT chat.s3_presign('GET', 'http://s3.example.test', 'b-1', 'k', 60, now(), 'us-east-1', 'a', 's', false, NULL, '{"X-Amz-Expires": "1"}')$$,
	'22023', 'query parameter "X-Amz-Expires" is set by the signature', 'signature parameters cannot be given');
SELECT throws_ok($$SELECT chat.s3_presign('GET', 'http://127.0.0.1:9000', 'b-1', 'k', 60, now(), 'us-east-1', 'a', 's', true)$$,
	'22023', 'virtual-hosted URLs need an endpoint with a host name, not an IP address', 'virtual hosts need a name');
SELECT throws_ok($$SELECT chat.s3_presign('GET', 'http://s3.example.test', 'b-1', 'k', 60, now(), 'us-east-1', 'a', NULL)$$,
	'22023', 'secret_key must not be null', 'NULL arguments are refused');
SELECT throws_ok($$SELECT chat.s3_presign('GET', 'http://s3.example.test', 'b-1', 'k', 60, 'infinity', 'us-east-1', 'a', 's')$$,
	'22023', 'at must be a finite time between the years 1000 and 9999', 'infinite time refused');

---------------------------------------------------------------- configuration secrecy
SELECT ok(NOT has_function_privilege('chat_app', 'chat.s3_presign(text,text,text,text,int,timestamptz,text,text,text,bool,jsonb,jsonb)', 'EXECUTE'),
	'chat_app cannot call s3_presign');
SELECT ok(NOT has_function_privilege('chat_app', 'chat.configure_storage(jsonb)', 'EXECUTE'),
	'chat_app cannot configure storage');
SELECT ok(NOT has_function_privilege('chat_app', 'chat.storage_settings()', 'EXECUTE'),
	'chat_app cannot read storage settings');
SELECT ok(NOT has_function_privilege('chat_app', 'chat.expire_uploads(timestamptz,int)', 'EXECUTE'),
	'chat_app cannot run expire_uploads');
SELECT ok(has_function_privilege('chat_app', 'chat.attachment_upload(bigint,bigint,text,text,bigint)', 'EXECUTE')
	AND has_function_privilege('chat_app', 'chat.attachment_url(bigint,bigint,int,bool)', 'EXECUTE'),
	'chat_app can upload and get download URLs');
SELECT ok(NOT has_table_privilege('chat_app', 'chat.storage_config', 'SELECT')
	AND NOT has_column_privilege('chat_app', 'chat.storage_config', 'secret_key', 'SELECT')
	AND NOT has_table_privilege('public', 'chat.storage_config', 'SELECT'),
	'no one but the owner may read chat.storage_config');
SET LOCAL ROLE chat_app;
SELECT throws_ok('SELECT secret_key FROM chat.storage_config', '42501', 'permission denied for table storage_config',
	'chat_app reading the secret is refused');
SELECT throws_ok('SELECT chat.storage_settings()', '42501', 'permission denied for function storage_settings',
	'chat_app reading the settings is refused');
SELECT is((SELECT count(*) FROM pg_settings WHERE name ~ '^chat\.' AND (name ~* 'secret|key' OR setting ~ 'pgtap-secret')),
	0::bigint, 'pg_settings shows no secret');
RESET ROLE;
SELECT ok(NOT chat.storage_settings()::text LIKE '%pgtap-secret%' AND (chat.storage_settings() ->> 'secret_key_set')::bool,
	'storage_settings() says a secret is set without showing it');
SELECT ok((SELECT e LIKE 'max_url_lifetime must be between 1 and 604800 seconds%' AND e NOT LIKE '%NEW-pgtap-secret%'
		FROM pg_temp.error_text($$SELECT chat.configure_storage('{"secret_key": "NEW-pgtap-secret", "max_url_lifetime": 604801}')$$) e),
	'a refused configuration names the setting, never the secret');
SELECT ok(pg_temp.error_text($$SELECT chat.configure_storage('{"secret_key": "NEW-pgtap-secret", "max_upload_size": "lots"}')$$)
	NOT LIKE '%NEW-pgtap-secret%', 'a type error does not show the secret');
SELECT ok(pg_temp.error_text($$SELECT chat.configure_storage('{"secret_key": "NEW-pgtap-secret", "endpoint": "gopher://x"}')$$)
	NOT LIKE '%NEW-pgtap-secret%', 'an endpoint error does not show the secret');
SELECT throws_ok($$SELECT chat.configure_storage('{"secret": "x"}')$$, '22023', 'unknown storage setting "secret"',
	'unknown settings are refused');
SELECT throws_ok($$SELECT chat.configure_storage('{"default_url_lifetime": 90000}')$$, '22023',
	'default_url_lifetime must be between 1 and max_url_lifetime (86400 seconds)', 'default lifetime within the maximum');
SELECT is((SELECT secret_key FROM chat.storage_config), 'pgtap-secret-never-shown', 'refused changes changed nothing');
SELECT ok((SELECT proconfig @> '{log_min_error_statement=panic}' FROM pg_proc WHERE oid = 'chat.configure_storage(jsonb)'::regprocedure),
	'configure_storage keeps its statement (and the secret in it) out of the error log');

---------------------------------------------------------------- upload
SELECT chat.attachment_upload(3001, :c1, 'photo.JPG', 'Image/JPEG ', 48213) AS up \gset
SELECT ok(:'up'::jsonb ?& ARRAY['attachment_id', 'method', 'url', 'headers', 'expires_at'], 'upload returns id, method, url, headers, expiry');
SELECT is(:'up'::jsonb -> 'headers', '{"Content-Type": "image/jpeg", "Content-Length": "48213"}', 'the client must send the approved type and length');
SELECT is(:'up'::jsonb ->> 'method', 'PUT', 'uploads use PUT');
SELECT is(pg_temp.param(:'up'::jsonb ->> 'url', 'X-Amz-SignedHeaders'), 'content-length%3Bcontent-type%3Bhost',
	'the PUT URL signs content type and length');
SELECT is(pg_temp.param(:'up'::jsonb ->> 'url', 'X-Amz-Expires'), '900', 'upload URLs live upload_url_lifetime (900 s)');
SELECT is((SELECT object_key ~ ('^chat/' || :c1 || '/[0-9a-f]{32}$') FROM chat.attachments WHERE attachment_id = (:'up'::jsonb ->> 'attachment_id')::bigint),
	true, 'the object key is made by the server: chat id and 128 random bits');
SELECT ok(:'up'::jsonb ->> 'url' LIKE 'https://files.example.test/chat-test/chat/' || :c1 || '/%' AND :'up'::jsonb ->> 'url' NOT LIKE '%photo%',
	'the URL uses the public endpoint and not the file name');
SELECT is((SELECT (content_type, size, message_seq) FROM chat.attachments WHERE attachment_id = (:'up'::jsonb ->> 'attachment_id')::bigint)::text,
	'(image/jpeg,48213,)', 'stored pending, content type normalized');

SELECT is(chat.attachment_upload(3001, :c1, '../../etc/passwd', 'text/plain', 10) ->> 'name', 'passwd', 'path parts are dropped');
SELECT is(chat.attachment_upload(3001, :c1, E'C:\\Users\\ana\\scan 1.pdf', 'application/pdf', 10) ->> 'name', 'scan 1.pdf', 'Windows paths too');
SELECT is(chat.attachment_upload(3001, :c1, E'in\u202Egpj.exe\u0007\u0085\t.png', 'image/png', 10) ->> 'name', 'ingpj.exe.png',
	'controls and bidi overrides are removed');
SELECT is(chat.attachment_upload(3001, :c1, E' ..\u200B. ', 'image/png', 10) ->> 'name', 'file', 'nothing left: "file"');
SELECT ok((SELECT octet_length(n) = 255 AND n LIKE 'яя%.jpeg' FROM
		(SELECT chat.attachment_upload(3001, :c1, repeat('я', 300) || '.jpeg', 'image/jpeg', 10) ->> 'name' AS n) s),
	'over-long names are cut to 255 bytes on a character boundary, extension kept');

SELECT throws_ok(format('SELECT chat.attachment_upload(3004, %s, %L, %L, 10)', :c1, 'a.png', 'image/png'),
	'42501', 'chat not found or access denied', 'a non-member cannot upload');
SELECT throws_ok($$SELECT chat.attachment_upload(3001, -1, 'a.png', 'image/png', 10)$$,
	'42501', 'chat not found or access denied', 'no such chat: the same refusal');
SELECT throws_ok(format('SELECT chat.attachment_upload(3001, %s, %L, %L, 10)', :c1, 'a.html', 'text/html'),
	'22023', 'content type "text/html" is not allowed', 'HTML is not on the allow-list');
SELECT throws_ok(format('SELECT chat.attachment_upload(3001, %s, %L, %L, 10)', :c1, 'a.svg', 'image/svg+xml'),
	'22023', 'content type "image/svg+xml" is not allowed', 'SVG is not on the allow-list');
SELECT throws_ok(format('SELECT chat.attachment_upload(3001, %s, %L, %L, 10)', :c1, 'a.txt', 'text/plain; charset=utf-8'),
	'22023', 'content type "text/plain; charset=utf-8" is not allowed', 'parameters are not accepted');
SELECT throws_ok(format('SELECT chat.attachment_upload(3001, %s, %L, %L, %s)', :c1, 'big.png', 'image/png', 20 * 1024 * 1024 + 1),
	'22023', 'file is too large: 20971521 bytes, the limit for image files is 20971520 bytes', 'per-kind limit');
SELECT throws_ok(format('SELECT chat.attachment_upload(3001, %s, %L, %L, %s)', :c1, 'big.mp4', 'video/mp4', 100 * 1024 * 1024 + 1),
	'22023', 'file is too large: 104857601 bytes, the limit for video files is 104857600 bytes', 'overall 100 MB default');
SELECT throws_ok(format('SELECT chat.attachment_upload(3001, %s, %L, %L, 0)', :c1, 'empty.png', 'image/png'),
	'22023', 'size must be positive, not 0', 'empty files are refused');
SELECT throws_ok(format('SELECT chat.attachment_upload(3001, %s, %L, %L, 10)', :c1, '', 'image/png'),
	'22023', 'file_name must not be empty', 'a name is needed');
SELECT throws_ok(format('SELECT chat.attachment_upload(3001, %s, NULL, %L, 10)', :c1, 'image/png'),
	'22023', 'file_name must not be null', 'NULL name refused');
-- 3001 has 6 pending uploads now: the cap
SELECT throws_ok(format('SELECT chat.attachment_upload(3001, %s, %L, %L, 10)', :c1, 'seventh.png', 'image/png'),
	'54000', 'too many pending uploads: 6, the limit is 6', 'pending uploads per user are capped');
SELECT chat.block_user(3005, 3001) IS NULL AS blocked \gset
SELECT throws_ok(format('SELECT chat.attachment_upload(3001, %s, %L, %L, 10)', :c3, 'a.png', 'image/png'),
	'42501', 'chat not found or access denied', 'a blocked user cannot upload to the blocker');
SELECT chat.configure_storage('{"max_upload_size": 1000}') IS NOT NULL AS c \gset
SELECT throws_ok(format('SELECT chat.attachment_upload(3002, %s, %L, %L, 1001)', :c1, 'a.zip', 'application/zip'),
	'22023', 'file is too large: 1001 bytes, the limit for archive files is 1000 bytes', 'max_upload_size caps every kind');
SELECT chat.configure_storage('{"max_upload_size": 104857600, "secret_key": null}') IS NOT NULL AS c \gset
SELECT throws_ok(format('SELECT chat.attachment_upload(3002, %s, %L, %L, 10)', :c1, 'a.png', 'image/png'),
	'55000', 'object storage is not configured', 'no secret, no uploads');
SELECT chat.configure_storage('{"secret_key": "pgtap-secret-never-shown"}') IS NOT NULL AS c \gset

---------------------------------------------------------------- linking (send_message)
SELECT (chat.attachment_upload(3002, :c1, 'a.png', 'image/png', 1) ->> 'attachment_id')::bigint AS s_a \gset
SELECT (chat.attachment_upload(3002, :c1, 'b.pdf', 'application/pdf', 2) ->> 'attachment_id')::bigint AS s_b \gset
SELECT (chat.attachment_upload(3002, :c1, 'c.png', 'image/png', 3) ->> 'attachment_id')::bigint AS s_c \gset
SELECT (chat.attachment_upload(3003, :c2, 'other-chat.png', 'image/png', 4) ->> 'attachment_id')::bigint AS o_x \gset
SELECT last_seq AS seq0 FROM chat.chats WHERE chat_id = :c1 \gset

SELECT throws_ok(format('SELECT chat.send_message(3001, %s, %L, NULL, ARRAY[%s])', :c1, 'mine?', :s_a),
	'42501', 'chat not found or access denied', 'someone else''s upload cannot be sent');
SELECT throws_ok(format('SELECT chat.send_message(3003, %s, %L, NULL, ARRAY[%s])', :c1, 'x', :o_x),
	'42501', 'chat not found or access denied', 'a non-member cannot send');
SELECT throws_ok(format('SELECT chat.send_message(3001, %s, %L, NULL, ARRAY[%s])', :c1, 'x', :o_x),
	'42501', 'chat not found or access denied', 'another chat''s upload cannot be sent here');
SELECT throws_ok(format('SELECT chat.send_message(3002, %s, %L, NULL, ARRAY[%s, 999999999])', :c1, 'x', :s_a),
	'42501', 'chat not found or access denied', 'an unknown id refuses the whole send');
SELECT throws_ok(format('SELECT chat.send_message(3002, %s, %L, NULL, ARRAY[%s, %s])', :c1, 'x', :s_a, :s_a),
	'22023', format('attachment %s is listed twice', :s_a), 'each attachment at most once');
SELECT throws_ok(format('SELECT chat.send_message(3002, %s, %L, NULL, ARRAY[1,2,3,4,5,6,7,8,9,10,11])', :c1, 'x'),
	'22023', 'a message carries at most 10 attachments, not 11', 'at most 10 per message');
SELECT throws_ok(format('SELECT chat.send_message(3002, %s, %L, NULL, ARRAY[%s, NULL])', :c1, 'x', :s_a),
	'22023', 'attachment_ids must not contain null', 'no NULL ids');
SELECT is((SELECT (count(*) FILTER (WHERE message_seq IS NULL), max(last_seq)) FROM chat.attachments, chat.chats
		WHERE attachment_id IN (:s_a, :s_b, :s_c) AND chats.chat_id = :c1)::text, format('(3,%s)', :seq0),
	'after the refusals nothing is linked and no message stored');

SELECT chat.send_message(3002, :c1, '', NULL, ARRAY[:s_c, :s_a]) AS m1 \gset
SELECT is(jsonb_path_query_array(:'m1'::jsonb, '$.attachments[*].id'), jsonb_build_array(:s_c, :s_a),
	'attachments keep the order given');
SELECT is(:'m1'::jsonb -> 'attachments' -> 1, jsonb_build_object('id', :s_a, 'name', 'a.png', 'size', 1, 'content_type', 'image/png'),
	'attachment objects carry id, name, content type and size');
SELECT throws_ok(format('SELECT chat.send_message(3002, %s, %L, NULL, ARRAY[%s])', :c1, 'again', :s_a),
	'42501', 'chat not found or access denied', 'a sent attachment cannot be linked again');
UPDATE chat.attachments SET created_at = now() - interval '25 hours' WHERE attachment_id = :s_b;
SELECT throws_ok(format('SELECT chat.send_message(3002, %s, %L, NULL, ARRAY[%s])', :c1, 'late', :s_b),
	'42501', 'chat not found or access denied', 'an expired upload cannot be sent');
UPDATE chat.attachments SET created_at = now() WHERE attachment_id = :s_b;
SELECT is(jsonb_path_query_array((SELECT h FROM chat.history(3001, :c1, NULL, 1) h), '$.attachments[*].name'),
	'["c.png", "a.png"]', 'history returns the attachments inline, in order');
SELECT is(jsonb_path_query_array((SELECT c FROM chat.catch_up(3001, :c1, 0) c ORDER BY (c ->> 'cursor')::bigint DESC LIMIT 1), '$.attachments[*].id'),
	jsonb_build_array(:s_c, :s_a), 'catch_up too');
SELECT is((SELECT n_attachments FROM chat.messages WHERE chat_id = :c1 AND seq = (:'m1'::jsonb ->> 'seq')::bigint), 2::smallint,
	'the message counts its attachments');

---------------------------------------------------------------- download URLs
SELECT chat.attachment_url(3001, :s_a) AS url_a \gset
SELECT ok(:'url_a' LIKE 'https://files.example.test/chat-test/chat/' || :c1 || '/%', 'members get a GET URL on the public endpoint');
SELECT is(pg_temp.param(:'url_a', 'X-Amz-Expires'), '900', 'default lifetime: default_url_lifetime');
SELECT is(pg_temp.param(:'url_a', 'response-content-disposition'),
	'attachment%3B%20filename%3D%22a.png%22%3B%20filename%2A%3DUTF-8%27%27a.png', 'the download carries the file name');
SELECT is(pg_temp.param(chat.attachment_url(3002, :s_a, 60, true), 'X-Amz-Expires'), '60', 'expiry can be shorter');
SELECT is(pg_temp.param(chat.attachment_url(3002, :s_a, 60, true), 'response-content-disposition'),
	'inline%3B%20filename%3D%22a.png%22%3B%20filename%2A%3DUTF-8%27%27a.png', 'inline on request');
SELECT throws_ok(format('SELECT chat.attachment_url(3001, %s, 86401)', :s_a),
	'22023', 'expires_s must be between 1 and 86400, not 86401', 'at most max_url_lifetime');
SELECT throws_ok(format('SELECT chat.attachment_url(3001, %s, 0)', :s_a),
	'22023', 'expires_s must be between 1 and 86400, not 0', 'expiry must be positive');
SELECT throws_ok(format('SELECT chat.attachment_url(3004, %s)', :s_a),
	'42501', 'chat not found or access denied', 'a non-member gets no URL');
SELECT throws_ok(format('SELECT chat.attachment_url(3003, %s)', :s_a),
	'42501', 'chat not found or access denied', 'a member of another chat gets no URL');
SELECT throws_ok('SELECT chat.attachment_url(3001, 999999999)',
	'42501', 'chat not found or access denied', 'an unknown id: the same refusal');
SELECT throws_ok(format('SELECT chat.attachment_url(3001, %s)', :s_b),
	'42501', 'chat not found or access denied', 'someone else''s pending upload is not visible');
SELECT ok(chat.attachment_url(3002, :s_b) IS NOT NULL, 'the uploader may fetch a pending upload');
SELECT chat.delete_message(3002, :c1, (:'m1'::jsonb ->> 'seq')::bigint) IS NOT NULL AS d \gset
SELECT throws_ok(format('SELECT chat.attachment_url(3001, %s)', :s_a),
	'42501', 'chat not found or access denied', 'attachments of a deleted message are gone');

SELECT (chat.attachment_upload(3002, :c1, 'отчёт "Q1".pdf', 'application/pdf', 5) ->> 'attachment_id')::bigint AS s_u \gset
SELECT is(pg_temp.param(chat.attachment_url(3002, :s_u), 'response-content-disposition'),
	'attachment%3B%20filename%3D%22_____%20_Q1_.pdf%22%3B%20filename%2A%3DUTF-8%27%27%25D0%25BE%25D1%2582%25D1%2587%25D1%2591%25D1%2582%2520%2522Q1%2522.pdf',
	'non-ASCII and quotes: an ASCII fallback and the exact UTF-8 name (RFC 8187)');

---------------------------------------------------------------- expiry
SELECT is((chat.expire_uploads(now()) ->> 'expired')::int, 0, 'nothing expires before its time');
SELECT chat.expire_uploads(now() + interval '25 hours', 2) AS ex \gset
SELECT is((:'ex'::jsonb ->> 'expired')::int, 2, 'max_rows bounds one call');
SELECT is((:'ex'::jsonb ->> 'more')::bool, true, 'and says there is more');
SELECT ok((SELECT bool_and(o ->> 'delete_url' LIKE 'http://minio.internal:9000/chat-test/' || (o ->> 'object_key') || '?%')
		FROM jsonb_array_elements(:'ex'::jsonb -> 'objects') o),
	'each expired object comes with its key and a DELETE URL on the internal endpoint');
SELECT chat.expire_uploads(now() + interval '25 hours', 1000) AS ex2 \gset
SELECT is((SELECT count(*) FROM chat.attachments WHERE message_seq IS NULL AND chat_id IN (:c1, :c2)), 0::bigint,
	'every pending upload is gone after expiry');
SELECT is((SELECT count(*) FROM chat.attachments WHERE attachment_id IN (:s_a, :s_c)), 2::bigint, 'sent attachments stay');
SELECT is((:'ex2'::jsonb ->> 'more')::bool, false, 'no more to expire');

SELECT * FROM finish();
ROLLBACK;
