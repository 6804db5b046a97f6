-- history: the extension. Newest page of 50 of a random chat, read by its buyer.
\set c random(1, :nchats)
\set u 1000000 + :c % :nbuyers
SELECT * FROM chat.history(:u, :c, NULL, 50);
