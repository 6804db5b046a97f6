-- list_chats: the extension. First page of 50 of the seller with the most chats.
SELECT * FROM chat.list_chats(1, NULL, 50);
