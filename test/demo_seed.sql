-- Demo data for `make run`: users 1..4 (1 Ana, a seller; 2 Boris and 3 Vesna,
-- buyers; 4 Dragan), chats of every kind with a few messages each.
DO $$
DECLARE
	c bigint;
BEGIN
	c := chat.open_chat(2, 'listing', 1001, 1);
	PERFORM chat.send_message(2, c, 'Hello! Is the bicycle still available?');
	PERFORM chat.send_message(1, c, 'Yes, it is. You can come and see it tomorrow.');
	PERFORM chat.send_message(2, c, 'Great, what time suits you?');

	c := chat.open_chat(3, 'product', 2001, 1);
	PERFORM chat.send_message(3, c, 'Здравствуйте! Есть ли этот чайник в белом цвете?');
	PERFORM chat.send_message(1, c, 'Да, есть. Отправить сегодня?');

	c := chat.open_chat(4, 'direct', NULL, 1);
	PERFORM chat.send_message(4, c, 'Zdravo Ana, vidimo se u subotu?');

	c := chat.open_chat(2, 'direct', NULL, 3);
	PERFORM chat.send_message(3, c, 'Did you buy the bicycle?');
END
$$;
