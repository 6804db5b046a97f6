-- send: the extension with chat.event_mode = direct (run.sh sets it with
-- PGOPTIONS): events by NOTIFY in the sending transaction, like send_sql_notify.
\set c random(1, :nchats)
\set u 1000000 + :c % :nbuyers
SELECT chat.send_message(:u, :c, 'benchmark message body: is this still available? I could pick it up tomorrow afternoon.');
