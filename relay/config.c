/*
 * config.c: every setting of chat-relay, one row each (the engine that
 * reads the file and the flags is core/conf.c).
 */
#include "config.h"

char	   *cf_listen;
char	   *cf_metrics_listen;
char	   *cf_db;
char	   *cf_relay_id;
char	   *cf_jwt_alg;
char	   *cf_jwt_secret_file;
char	   *cf_jwt_public_key_file;
char	   *cf_jwt_issuer;
char	   *cf_jwt_audience;
int			cf_jwt_leeway;
int			cf_max_token;
struct cf_list cf_allow_origin;
bool		cf_allow_no_origin;
double		cf_rate;
int			cf_burst;
double		cf_typing_rate;
int			cf_typing_burst;
int			cf_max_frame;
int			cf_max_conns_per_user;
int			cf_max_connections;
int			cf_max_inflight;
int			cf_ping_interval;
int			cf_ping_timeout;
int			cf_send_queue;
int			cf_send_queue_bytes;
int			cf_max_total_queue_bytes;
int			cf_slow_close_timeout;
int			cf_max_answer_bytes;
int			cf_coalesce_rate;
int			cf_coalesce_ms;
int			cf_rx_buffer;
int			cf_pool_size;
int			cf_pipeline_depth;
int			cf_statement_timeout;
int			cf_max_pending;
int			cf_backoff_min_ms;
int			cf_backoff_max_ms;
int			cf_key_refresh;
int			cf_handshake_timeout;
double		cf_upgrade_rate;
int			cf_upgrade_burst;
int			cf_flood_close;
int			cf_max_presence_subscriptions;
int			cf_header_pool;
int			cf_max_handshakes_per_address;
int			cf_heartbeat_interval;
int			cf_presence_grace;
int			cf_shutdown_timeout;
char	   *cf_log_level;
char	   *cf_event_lib;
char	   *cf_www;
char	   *cf_www_csp;
bool		cf_dev_tokens;
int			cf_dev_token_ttl;
char	   *cf_vapid_public_key;

static const struct cf_entry cf_table[] = {
	{"listen", CF_STR, &cf_listen, false, "127.0.0.1:8090", NOLIM, "HOST:PORT to serve WebSocket and HTTP on"},
	{"metrics_listen", CF_STR, &cf_metrics_listen, false, "", NOLIM, "HOST:PORT of the admin address: /metrics, /healthz and /livez only, and /metrics is then 404 on listen (empty: /metrics on listen)"},
	{"db", CF_STR, &cf_db, false, "dbname=chat", NOLIM, "libpq connection string (role chat_relay)"},
	{"relay_id", CF_STR, &cf_relay_id, false, "", 0, 200, "unique name of this relay, at most 200 bytes (empty: hostname:port)"},
	{"jwt_alg", CF_STR, &cf_jwt_alg, true, "HS256", NOLIM, "HS256, RS256 or ES256; tokens with another alg are refused"},
	{"jwt_secret_file", CF_STR, &cf_jwt_secret_file, true, "", NOLIM, "file with the HS256 secret"},
	{"jwt_public_key_file", CF_STR, &cf_jwt_public_key_file, true, "", NOLIM, "PEM public key for RS256 / ES256"},
	{"jwt_issuer", CF_STR, &cf_jwt_issuer, true, "", NOLIM, "required iss claim (empty: not checked)"},
	{"jwt_audience", CF_STR, &cf_jwt_audience, true, "", NOLIM, "required aud claim (empty: not checked)"},
	{"jwt_leeway", CF_INT, &cf_jwt_leeway, true, "5", 0, 300, "seconds of clock skew allowed for exp and nbf"},
	{"max_token", CF_INT, &cf_max_token, true, "4096", 64, 16384, "longest token accepted, bytes"},
	{"allow_origin", CF_LIST, &cf_allow_origin, true, "", NOLIM, "allowed Origin, exact match (repeat for several)"},
	{"allow_no_origin", CF_BOOL, &cf_allow_no_origin, true, "false", NOLIM, "accept clients without an Origin header (non-browser)"},
	{"rate", CF_DOUBLE, &cf_rate, true, "10", 0, 100000, "requests per second per user (token bucket)"},
	{"burst", CF_INT, &cf_burst, true, "30", 1, 100000, "request burst per user"},
	{"typing_rate", CF_DOUBLE, &cf_typing_rate, true, "1", 0, 100000, "typing requests per second per user"},
	{"typing_burst", CF_INT, &cf_typing_burst, true, "5", 1, 100000, "typing burst per user"},
	{"max_frame", CF_INT, &cf_max_frame, true, "65536", 256, 16777216, "largest client message, bytes"},
	{"upgrade_rate", CF_DOUBLE, &cf_upgrade_rate, true, "1", 0, 100000, "new connections per second per user (token bucket)"},
	{"upgrade_burst", CF_INT, &cf_upgrade_burst, true, "10", 1, 100000, "burst of new connections per user"},
	{"flood_close", CF_INT, &cf_flood_close, true, "100", 1, 1000000, "messages in a row over the rate limit before the connection is closed with 1008"},
	{"max_presence_subscriptions", CF_INT, &cf_max_presence_subscriptions, true, "1000", 1, 100000, "users one connection may follow the presence of (presence requests); past it the oldest go"},
	{"max_conns_per_user", CF_INT, &cf_max_conns_per_user, true, "10", 1, 100000, "connections per user on this relay"},
	{"max_connections", CF_INT, &cf_max_connections, true, "100000", 1, 10000000, "connections on this relay"},
	{"max_inflight", CF_INT, &cf_max_inflight, true, "64", 1, 100000, "unanswered requests per connection"},
	{"ping_interval", CF_INT, &cf_ping_interval, false, "25", 1, 3600, "seconds of silence before a ping"},
	{"ping_timeout", CF_INT, &cf_ping_timeout, false, "10", 1, 3600, "seconds to wait for the pong before closing"},
	{"send_queue", CF_INT, &cf_send_queue, true, "1024", 4, 1000000, "frames queued per connection before it is closed with 1013"},
	{"send_queue_bytes", CF_INT, &cf_send_queue_bytes, true, "4194304", 4096, 1073741824, "bytes queued per connection before it is closed with 1013"},
	{"max_total_queue_bytes", CF_INT, &cf_max_total_queue_bytes, true, "268435456", 65536, 2147483647, "bytes queued for all connections together (a frame queued on several counts once); past it the largest queue is closed with 1013"},
	{"max_answer_bytes", CF_INT, &cf_max_answer_bytes, true, "1048576", 4096, 1073741824, "largest answer to one request, bytes (refused with too_large / answer_too_large; at most half of send_queue_bytes counts)"},
	{"slow_close_timeout", CF_INT, &cf_slow_close_timeout, true, "5", 1, 600, "seconds a closed slow reader gets to take its close frame"},
	{"coalesce_rate", CF_INT, &cf_coalesce_rate, true, "20000", 0, 100000000, "frames/s written above which writes wait to share a send (0: never)"},
	{"coalesce_ms", CF_INT, &cf_coalesce_ms, true, "20", 1, 1000, "longest such wait, ms"},
	{"rx_buffer", CF_INT, &cf_rx_buffer, false, "256", 128, 1048576, "receive buffer per connection, bytes (larger messages arrive in pieces)"},
	{"pool_size", CF_INT, &cf_pool_size, false, "2", 1, 64, "database connections for requests (plus one for LISTEN)"},
	{"pipeline_depth", CF_INT, &cf_pipeline_depth, false, "64", 1, 10000, "queries in flight per database connection"},
	{"statement_timeout", CF_INT, &cf_statement_timeout, false, "10", 1, 3600, "seconds a request may run in the database"},
	{"max_pending", CF_INT, &cf_max_pending, true, "10000", 1, 10000000, "requests waiting for a database connection before unavailable"},
	{"backoff_min_ms", CF_INT, &cf_backoff_min_ms, false, "100", 1, 600000, "first database reconnect delay, ms"},
	{"backoff_max_ms", CF_INT, &cf_backoff_max_ms, false, "10000", 1, 3600000, "longest database reconnect delay, ms"},
	{"handshake_timeout", CF_INT, &cf_handshake_timeout, false, "3", 1, 60, "seconds a connection may take to complete its HTTP headers / upgrade"},
	{"header_pool", CF_INT, &cf_header_pool, false, "1024", 16, 65535, "HTTP header slots (each max_token + 4 kB while in use): connections in handshake at once"},
	{"max_handshakes_per_address", CF_INT, &cf_max_handshakes_per_address, true, "32", 1, 65535, "handshakes in progress per source address; a newer one closes the oldest"},
	{"key_refresh", CF_INT, &cf_key_refresh, false, "30", 1, 3600, "seconds between loads of the event keys (a rotated key must be known before it is used)"},
	{"heartbeat_interval", CF_INT, &cf_heartbeat_interval, false, "5", 1, 3600, "seconds between presence heartbeats and dead-relay sweeps"},
	{"presence_grace", CF_INT, &cf_presence_grace, false, "15", 0, 3600, "seconds without heartbeat before a relay whose lock is free is cleared"},
	{"shutdown_timeout", CF_INT, &cf_shutdown_timeout, false, "5", 1, 600, "seconds SIGTERM waits for clients to take their close frame"},
	{"log_level", CF_STR, &cf_log_level, true, "info", NOLIM, "error, warn, info or debug"},
	{"event_lib", CF_STR, &cf_event_lib, false, "libev", NOLIM, "event loop: libev (epoll) or poll"},
	/* static.c, devtoken.c */
	{"www", CF_STR, &cf_www, false, "", NOLIM, "folder of static files served by GET (the demo: relay/www; empty: none)"},
	{"www_csp", CF_STR, &cf_www_csp, true, "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data: http: https:; media-src 'self' blob: http: https:; connect-src 'self' ws: wss: http: https:; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'", NOLIM, "Content-Security-Policy of static files"},
	{"dev_tokens", CF_BOOL, &cf_dev_tokens, true, "false", NOLIM, "GET /dev/token?user=N signs HS256 tokens for anyone: development only"},
	{"dev_token_ttl", CF_INT, &cf_dev_token_ttl, true, "3600", 60, 604800, "lifetime of development tokens, seconds"},
	/* conn.c */
	{"vapid_public_key", CF_STR, &cf_vapid_public_key, true, "", 0, 200, "Web Push application server key (base64url of the uncompressed P-256 point, as chat-notify's VAPID key): sent in welcome as vapid_public_key so browsers can subscribe (empty: not sent)"},
};


static const struct conf_spec spec = {
	cf_table, (int) (sizeof(cf_table) / sizeof(cf_table[0])),
	"Usage: chat-relay [--config FILE] [--listen HOST:PORT] [--db CONNINFO]\n"
	"                  [--jwt-alg HS256|RS256|ES256] [--jwt-secret-file FILE | --jwt-public-key-file FILE]\n"
	"                  [--jwt-issuer ISS] [--jwt-audience AUD] [--allow-origin ORIGIN]... [OPTION VALUE]...\n\n"
	"WebSocket push relay of the chat extension (protocol v1, see docs/protocol.md).\n"
	"Flags override the config file (name = value lines, same names with - or _).\n"
	"SIGHUP reloads the settings marked *; SIGTERM closes clients with 1012 and exits.\n\n",
	&cf_log_level,
};

int
config_load(int argc, char **argv)
{
	return conf_load(&spec, argc, argv);
}
