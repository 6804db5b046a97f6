/*
 * email_text.c: the words of an email digest per language (email_text.h).
 * A count stands after a colon or in parentheses, never inside a phrase:
 * no plural forms to get wrong (Russian and Serbian have three).
 */
#include "email_text.h"

#include <stddef.h>
#include <string.h>

static const struct email_text texts[] = {
	{
		.lang = "en", .subject = "New messages", .intro = "You have unread messages.",
		.chat_with = "Chat with user", .chat = "Chat", .unread = "Unread",
		.user = "User", .attachment = "[attachment]", .open = "Open the chat",
		.unsubscribe = "Unsubscribe",
		.why = "You get this email because email notifications are on for your account.",
	},
	{
		.lang = "ru", .subject = "Новые сообщения", .intro = "У вас есть непрочитанные сообщения.",
		.chat_with = "Чат с пользователем", .chat = "Чат", .unread = "Непрочитанных",
		.user = "Пользователь", .attachment = "[вложение]", .open = "Открыть чат",
		.unsubscribe = "Отписаться",
		.why = "Вы получили это письмо, потому что у вас включены уведомления по почте.",
	},
	{
		.lang = "sr", .subject = "Nove poruke", .intro = "Imate nepročitane poruke.",
		.chat_with = "Razgovor sa korisnikom", .chat = "Razgovor", .unread = "Nepročitanih",
		.user = "Korisnik", .attachment = "[prilog]", .open = "Otvori razgovor",
		.unsubscribe = "Odjavi se",
		.why = "Ovu poruku dobijate jer su vam uključena obaveštenja putem e-pošte.",
	},
};

const struct email_text *
email_text_for(const char *language)
{
	for (size_t i = 0; language && i < sizeof(texts) / sizeof(texts[0]); i++)
		if (strcmp(texts[i].lang, language) == 0)
			return &texts[i];
	return &texts[0];
}
