"""CALL chat.maintain_procedure(): one transaction per step outside a
transaction block, the same report as chat.maintain()."""
from conftest import connect, one, q


def test_procedure_commits_each_step(db):
    conn = connect(db)
    q(conn, "INSERT INTO chat.messages (chat_id, seq, rev, sender_id, body, created_at) "
            "SELECT 1, g, g, 1, 'x', now() + make_interval(months => 24 + g) FROM generate_series(1, 3) g")
    xid_before = one(conn, "SELECT pg_current_xact_id()::text::bigint")
    report = one(conn, "CALL chat.maintain_procedure()")
    xid_after = one(conn, "SELECT pg_current_xact_id()::text::bigint")
    assert len(report["created"]) == 3 and report["moved_rows"] == 3
    # survey + preparation, then one transaction per month attached
    assert xid_after - xid_before >= 4, "committed after each step"
    again = one(conn, "CALL chat.maintain_procedure()")
    assert again["created"] == [] and again["moved_rows"] == 0
    # the same report keys as the function
    assert set(report) == set(one(conn, "SELECT chat.maintain()"))
    conn.close()
