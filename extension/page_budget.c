/*
 * page_budget.c: pages bounded in bytes (chat.page_max_bytes). history,
 * catch_up and list_chats stop a page before the row that would take the
 * JSON text of its rows over the budget (the first row always goes in, so a
 * page makes progress) and mark its last row "more": true. The sizes here
 * are upper bounds of what jsonb_out writes, computed from the row before
 * any JSON is built, so that a page stops without building what it drops.
 */
#include "chat.h"

int			chat_page_max_bytes = CHAT_PAGE_MAX_BYTES_DEFAULT;

/* Bytes of s as a JSON string, quotes included (escape_json's rules). */
int64
ChatJsonStringBytes(const char *s)
{
	int64		n = 2;
	const unsigned char *p;

	for (p = (const unsigned char *) s; *p; p++)
	{
		switch (*p)
		{
			case '\b':
			case '\f':
			case '\n':
			case '\r':
			case '\t':
			case '"':
			case '\\':
				n += 2;
				break;
			default:
				n += *p < ' ' ? 6 : 1;
		}
	}
	return n;
}

/* Characters of n in decimal. */
static int
Digits(int64 n)
{
	char		buf[32];

	return snprintf(buf, sizeof(buf), INT64_FORMAT, n);
}

/*
 * A message object's keys with their quotes, ": " and the ", " between
 * them, its braces, the "more" key and value, and the largest values of
 * fixed form: deleted (false), created_at (a quoted timestamp, 40
 * characters at most) and "[]"; client_id (a quoted uuid) and edited_at
 * (a timestamp) are null or QUOTED_UUID / QUOTED_TIME.
 */
#define MESSAGE_FIXED	(135 + 14 + 5 + 42 + 2)
#define QUOTED_UUID		38
#define QUOTED_TIME		42
/* An attachment's keys, braces and separators, and the ", " before it. */
#define ATTACHMENT_FIXED (46 + 2)

/*
 * At most how many bytes a message object takes as JSON text (as jsonb_out
 * writes it): its strings escaped, its numbers, and MESSAGE_FIXED.
 */
int64
ChatMessageJsonBytes(const ChatMessage *msg)
{
	int64		n = MESSAGE_FIXED + ChatJsonStringBytes(msg->body) +
		Digits(msg->seq) + Digits(msg->rev) + Digits(msg->chat_id) + Digits(msg->sender_id) +
		(msg->has_client_id ? QUOTED_UUID : 4) + (msg->has_edited_at ? QUOTED_TIME : 4);
	int			i;

	for (i = 0; i < msg->natt; i++)
		n += ATTACHMENT_FIXED + Digits(msg->att[i].id) + Digits(msg->att[i].size) +
			ChatJsonStringBytes(msg->att[i].name) + ChatJsonStringBytes(msg->att[i].content_type);
	return n;
}

/*
 * Whether the row about to be put (this_bytes) is the last of its page
 * because the next one (next_bytes, < 0: none known) would pass the budget.
 * Counts this row in.
 */
bool
ChatPageStopsAfter(ChatPage *page, int64 this_bytes, int64 next_bytes)
{
	page->bytes += this_bytes;
	page->rows++;
	if (page->rows >= page->size || next_bytes < 0)
		return false;
	page->stopped = page->bytes + next_bytes > chat_page_max_bytes;
	return page->stopped;
}

/*
 * How many rows to read next: all the page still wants when it is short,
 * else as many as the budget left holds at the average row size so far
 * (at least one, so a page of rows of very unequal size still moves), the
 * first time a small batch. A page of large rows thus reads about what it
 * returns, not page_size rows.
 */
int
ChatPageNextBatch(const ChatPage *page, int first)
{
	int			want = page->size - page->rows;
	int64		avg,
				fit;

	if (page->rows == 0)
		return Min(want, first);
	avg = Max(page->bytes / page->rows, 1);
	fit = (chat_page_max_bytes - page->bytes) / avg + 1;
	return (int) Max(1, Min((int64) want, fit));
}
