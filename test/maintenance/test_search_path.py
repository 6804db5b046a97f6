"""Maintenance pins search_path. The worker is a superuser session that takes
the database's settings (ALTER DATABASE … SET, which a database owner may
do), and CALL chat.maintain_procedure() cannot carry a SET clause: under a
path that puts a schema of look-alike operators before pg_catalog, the range
CHECKs of the partitions they make would call the attacker's function as a
superuser, then at every insert."""
from conftest import connect, drop_database, make_database, one, q, wait_until

HOSTILE = """
CREATE SCHEMA evil;
CREATE TABLE evil.calls (n int);
GRANT INSERT ON evil.calls TO PUBLIC;
CREATE FUNCTION evil.ts_ge(a timestamptz, b timestamptz) RETURNS boolean LANGUAGE sql AS $$
    INSERT INTO evil.calls VALUES (1); SELECT pg_catalog.timestamptz_ge(a, b) $$;
CREATE FUNCTION evil.ts_lt(a timestamptz, b timestamptz) RETURNS boolean LANGUAGE sql AS $$
    INSERT INTO evil.calls VALUES (1); SELECT pg_catalog.timestamptz_lt(a, b) $$;
CREATE OPERATOR evil.>= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = evil.ts_ge);
CREATE OPERATOR evil.< (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = evil.ts_lt);
"""

EVIL_DEPS = ("SELECT count(*) FROM pg_depend d JOIN pg_operator o ON d.refclassid = 'pg_operator'::regclass "
             "AND d.refobjid = o.oid WHERE d.classid = 'pg_constraint'::regclass "
             "AND o.oprnamespace = 'evil'::regnamespace")


def months(conn):
    return one(conn, "SELECT count(*) FROM chat.partitions() WHERE NOT is_default")


def test_procedure_committing_per_step_pins_search_path(db):
    conn = connect(db)
    q(conn, HOSTILE)
    before = months(conn)
    q(conn, "SET search_path = evil, pg_catalog, public")
    q(conn, "CALL chat.maintain_procedure(pg_catalog.now() + interval '6 months')")
    assert one(conn, "SHOW search_path") == "evil, pg_catalog, public", "the caller's path is back"
    q(conn, "RESET search_path")
    assert months(conn) > before, "partitions were made under the hostile path"
    assert one(conn, EVIL_DEPS) == 0
    assert one(conn, "SELECT count(*) FROM evil.calls") == 0
    conn.close()


def test_worker_ignores_a_hostile_database_search_path(cluster):
    name = make_database(cluster.dir, cluster.port)
    try:
        conn = cluster.connect(name)
        q(conn, HOSTILE)
        before = months(conn)
        q(conn, "ALTER DATABASE %s SET search_path = evil, pg_catalog, public" % name)
        q(conn, "ALTER DATABASE %s SET chat.premake_months = 6" % name)
        wait_until(lambda: months(conn) > before, 60, "the worker to make partitions")
        assert one(conn, EVIL_DEPS) == 0
        assert one(conn, "SELECT count(*) FROM evil.calls") == 0
        conn.close()
    finally:
        drop_database(name, cluster.dir, cluster.port)
