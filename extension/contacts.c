/*
 * contacts.c: who may see whose live state.
 *
 * Presence (online, last seen) is shared only between contacts: two users
 * who have both sent a message in a chat they are both members of. Opening
 * a chat with someone, or writing to them unanswered, makes no contact, so
 * a stranger cannot watch anyone by opening a chat with their id. A block,
 * either way round, hides presence and typing between the two, whatever
 * chats they share. chat.contacts holds the pairs both ways round; a pair
 * is added when the second of the two sends in a shared chat.
 */
#include "chat.h"

#include "catalog/pg_type.h"

/*
 * sender has just sent their first message in chat_id: they become a
 * contact of every member who has sent there too. send_message holds the
 * chat's row lock, so the first messages of two members are never both
 * unaware of each other.
 */
void
ChatAddContacts(int64 chat_id, int64 sender)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {INT8OID, INT8OID};
	Datum		v[2];

	ChatPlanOnce(&plan,
				 "INSERT INTO chat.contacts (user_id, peer_id) "
				 "SELECT a, b FROM chat.members m, "
				 "  LATERAL (VALUES ($2, m.user_id), (m.user_id, $2)) p(a, b) "
				 "WHERE m.chat_id = $1 AND m.user_id <> $2 AND m.sent "
				 "ORDER BY a, b ON CONFLICT DO NOTHING",
				 2, types);
	v[0] = Int64GetDatum(chat_id);
	v[1] = Int64GetDatum(sender);
	ChatExec(plan, v, NULL, false, 0);
}

/*
 * The members of chat_id who may see user_id typing: all but user_id and
 * those in a block with user_id either way round; ascending. Returns the
 * count.
 */
int
ChatTypingRecipients(int64 chat_id, int64 user_id, int64 **users)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {INT8OID, INT8OID};
	Datum		v[2];
	uint64		i;

	ChatPlanOnce(&plan,
				 "SELECT m.user_id FROM chat.members m "
				 "WHERE m.chat_id = $1 AND m.user_id <> $2 AND NOT " CHAT_BLOCK_EITHER_WAY_SQL("$2", "m.user_id") " "
				 "ORDER BY m.user_id",
				 2, types);
	v[0] = Int64GetDatum(chat_id);
	v[1] = Int64GetDatum(user_id);
	ChatExec(plan, v, NULL, true, 0);
	*users = palloc(sizeof(int64) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
		(*users)[i] = ChatGetInt8(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, NULL);
	return (int) SPI_processed;
}

/*
 * last_seen as others see it: rounded down to chat.presence_granularity
 * seconds of Unix time, so that it tells the hour and roughly the minute,
 * not the moment.
 */
TimestampTz
ChatCoarseTime(TimestampTz t)
{
	const int64 unix_offset = (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
	int64		g = (int64) chat_presence_granularity * USECS_PER_SEC;
	int64		u = t + unix_offset;
	int64		r = u % g;

	if (r < 0)
		r += g;
	return (TimestampTz) (u - r - unix_offset);
}
