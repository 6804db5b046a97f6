-- chat.maintain_procedure pins search_path: it cannot have a SET clause (it
-- commits), and the DDL it runs resolves operators through search_path, so
-- a hostile path (a schema of look-alike operators before pg_catalog) would
-- have its CHECK constraints call the attacker's function as the DBA, then
-- at every insert. Its caller's search_path is back after the CALL.
BEGIN;
SELECT plan(4);

CREATE SCHEMA evil;
CREATE TABLE evil.calls (n int);
CREATE FUNCTION evil.ts_ge(a timestamptz, b timestamptz) RETURNS boolean LANGUAGE sql AS $$
	INSERT INTO evil.calls VALUES (1);
	SELECT pg_catalog.timestamptz_ge(a, b);
$$;
CREATE FUNCTION evil.ts_lt(a timestamptz, b timestamptz) RETURNS boolean LANGUAGE sql AS $$
	INSERT INTO evil.calls VALUES (1);
	SELECT pg_catalog.timestamptz_lt(a, b);
$$;
CREATE OPERATOR evil.>= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = evil.ts_ge);
CREATE OPERATOR evil.< (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = evil.ts_lt);

SET LOCAL search_path = evil, pg_catalog, public;
-- six months ahead: premake makes new partitions, each with a range CHECK
CALL chat.maintain_procedure(pg_catalog.now() + interval '6 months');

SELECT is(pg_catalog.current_setting('search_path'), 'evil, pg_catalog, public',
	'the caller''s search_path is back after the CALL');
RESET search_path;
SELECT ok((SELECT count(*) FROM chat.partitions() WHERE range_from > now() + interval '4 months') > 0,
	'the procedure made partitions under the hostile search_path');
SELECT is((SELECT count(*) FROM pg_depend d JOIN pg_operator o ON d.refclassid = 'pg_operator'::regclass AND d.refobjid = o.oid
		WHERE d.classid = 'pg_constraint'::regclass AND o.oprnamespace = 'evil'::regnamespace), 0::bigint,
	'no constraint it made uses an operator of the hostile schema');
SELECT is((SELECT count(*) FROM evil.calls), 0::bigint, 'the hostile operators were never called');

SELECT * FROM finish();
ROLLBACK;
