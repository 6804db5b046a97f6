-- send: the extension. A random chat, sent by its buyer.
\set c random(1, :nchats)
\set u 1000000 + :c % :nbuyers
SELECT chat.send_message(:u, :c, 'benchmark message body: is this still available? I could pick it up tomorrow afternoon.');
