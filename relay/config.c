/*
 * config.c: the settings table, the config file reader and the flags.
 *
 * The file holds `name = value` lines (`#` starts a comment, names may use
 * `-` or `_`, values may be double-quoted); list settings such as
 * allow_origin repeat. A flag --name value (or --name=value) overrides the
 * file; a list given by flags replaces the file's list. Boolean flags may be
 * given bare (--allow-no-origin).
 */
#include "alloc.h"
#include "config.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

char	   *cf_config;
char	   *cf_listen;
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
int			cf_slow_close_timeout;
int			cf_coalesce_rate;
int			cf_coalesce_ms;
int			cf_rx_buffer;
int			cf_pool_size;
int			cf_pipeline_depth;
int			cf_statement_timeout;
int			cf_max_pending;
int			cf_backoff_min_ms;
int			cf_backoff_max_ms;
int			cf_heartbeat_interval;
int			cf_presence_grace;
int			cf_shutdown_timeout;
char	   *cf_log_level;
char	   *cf_event_lib;
char	   *cf_www;
char	   *cf_www_csp;
bool		cf_dev_tokens;
int			cf_dev_token_ttl;

enum cf_type
{
	CF_STR,
	CF_INT,
	CF_DOUBLE,
	CF_BOOL,
	CF_LIST
};

struct cf_entry
{
	const char *name;
	enum cf_type type;
	void	   *var;
	bool		reload;			/* SIGHUP applies it */
	const char *def;
	int			min,
				max;			/* CF_INT, CF_DOUBLE; CF_STR: max > 0 is its most bytes */
	const char *help;
};

#define NOLIM 0, 0
static const struct cf_entry cf_table[] = {
	{"listen", CF_STR, &cf_listen, false, "127.0.0.1:8090", NOLIM, "HOST:PORT to serve WebSocket and HTTP on"},
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
	{"max_conns_per_user", CF_INT, &cf_max_conns_per_user, true, "10", 1, 100000, "connections per user on this relay"},
	{"max_connections", CF_INT, &cf_max_connections, true, "100000", 1, 10000000, "connections on this relay"},
	{"max_inflight", CF_INT, &cf_max_inflight, true, "64", 1, 100000, "unanswered requests per connection"},
	{"ping_interval", CF_INT, &cf_ping_interval, false, "25", 1, 3600, "seconds of silence before a ping"},
	{"ping_timeout", CF_INT, &cf_ping_timeout, false, "10", 1, 3600, "seconds to wait for the pong before closing"},
	{"send_queue", CF_INT, &cf_send_queue, true, "1024", 4, 1000000, "frames queued per connection before it is closed with 1013"},
	{"send_queue_bytes", CF_INT, &cf_send_queue_bytes, true, "4194304", 4096, 1073741824, "bytes queued per connection before it is closed with 1013"},
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
};
#define CF_N ((int) (sizeof(cf_table) / sizeof(cf_table[0])))

/* One setting's value while loading: a string, or a list of strings. */
struct cf_stage
{
	char	   *str;
	struct cf_list list;
	bool		from_flag;
};

static int	saved_argc;
static char **saved_argv;

/* Find an entry by name, accepting '-' for '_'. */
static const struct cf_entry *
cf_find(const char *name, size_t len)
{
	char		norm[64];

	if (len >= sizeof(norm))
		return NULL;
	for (size_t i = 0; i < len; i++)
		norm[i] = name[i] == '-' ? '_' : name[i];
	norm[len] = '\0';
	for (int i = 0; i < CF_N; i++)
		if (strcmp(cf_table[i].name, norm) == 0)
			return &cf_table[i];
	return NULL;
}

/* Free a list. */
static void
list_free(struct cf_list *l)
{
	for (int i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Append a copy of s to a list. */
static void
list_add(struct cf_list *l, const char *s)
{
	l->v = xrealloc(l->v, sizeof(char *) * (l->n + 1));
	l->v[l->n++] = xstrdup(s);
}

/* Put one value into the stage; a flag's first list value drops the file's. */
static void
stage_set(struct cf_stage *st, const struct cf_entry *e, const char *val, bool flag)
{
	struct cf_stage *s = &st[e - cf_table];

	if (e->type == CF_LIST)
	{
		if (flag && !s->from_flag)
			list_free(&s->list);
		if (*val)
			list_add(&s->list, val);
	}
	else
	{
		free(s->str);
		s->str = xstrdup(val);
	}
	s->from_flag = s->from_flag || flag;
}

/* Free a stage. */
static void
stage_free(struct cf_stage *st)
{
	for (int i = 0; i < CF_N; i++)
	{
		free(st[i].str);
		list_free(&st[i].list);
	}
}

/* Trim spaces at both ends in place. */
static char *
trim(char *s)
{
	char	   *e;

	while (isspace((unsigned char) *s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char) e[-1]))
		*--e = '\0';
	return s;
}

/* Read the config file into the stage. */
static int
read_file(const char *path, struct cf_stage *st)
{
	FILE	   *f = fopen(path, "r");
	char		line[4096];
	int			lineno = 0;
	int			rc = 0;

	if (f == NULL)
	{
		log_error("cannot open config file %s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f))
	{
		char	   *p = trim(line);
		char	   *eq,
				   *name,
				   *val;
		const struct cf_entry *e;

		lineno++;
		if (*p == '\0' || *p == '#')
			continue;
		eq = strchr(p, '=');
		if (eq == NULL)
		{
			log_error("%s:%d: expected name = value", path, lineno);
			rc = -1;
			continue;
		}
		*eq = '\0';
		name = trim(p);
		val = trim(eq + 1);
		if (*val == '"' && strlen(val) >= 2 && val[strlen(val) - 1] == '"')
		{
			val[strlen(val) - 1] = '\0';
			val++;
		}
		e = cf_find(name, strlen(name));
		if (e == NULL)
		{
			log_error("%s:%d: unknown setting \"%s\"", path, lineno, name);
			rc = -1;
			continue;
		}
		stage_set(st, e, val, false);
	}
	fclose(f);
	return rc;
}

/*
 * Apply the flags to the stage (or, with st NULL, only find --config and
 * --help and check the flags' names).
 */
static int
read_flags(int argc, char **argv, struct cf_stage *st, bool *help)
{
	for (int i = 1; i < argc; i++)
	{
		const char *a = argv[i];
		const char *eq;
		const char *val = NULL;
		const struct cf_entry *e;
		size_t		len;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
		{
			if (help)
				*help = true;
			continue;
		}
		if (strncmp(a, "--", 2) != 0)
		{
			log_error("unexpected argument \"%s\" (see --help)", a);
			return -1;
		}
		a += 2;
		eq = strchr(a, '=');
		len = eq ? (size_t) (eq - a) : strlen(a);
		if (eq)
			val = eq + 1;
		if (len == 6 && strncmp(a, "config", 6) == 0)
		{
			if (!val && i + 1 < argc)
				val = argv[++i];
			if (!val)
			{
				log_error("--config needs a value");
				return -1;
			}
			if (!st)
			{
				free(cf_config);
				cf_config = xstrdup(val);
			}
			continue;
		}
		e = cf_find(a, len);
		if (e == NULL)
		{
			log_error("unknown option --%.*s (see --help)", (int) len, a);
			return -1;
		}
		if (!val)
		{
			if (e->type == CF_BOOL && (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0))
				val = "true";
			else if (i + 1 < argc)
				val = argv[++i];
			else
			{
				log_error("--%s needs a value", a);
				return -1;
			}
		}
		if (st)
			stage_set(st, e, val, true);
	}
	return 0;
}

/* Parse a boolean word. */
static int
parse_bool(const char *s, bool *out)
{
	if (!strcmp(s, "true") || !strcmp(s, "on") || !strcmp(s, "yes") || !strcmp(s, "1"))
		*out = true;
	else if (!strcmp(s, "false") || !strcmp(s, "off") || !strcmp(s, "no") || !strcmp(s, "0"))
		*out = false;
	else
		return -1;
	return 0;
}

/* Check every staged value; 0 when all parse. */
static int
stage_check(struct cf_stage *st)
{
	int			rc = 0;

	for (int i = 0; i < CF_N; i++)
	{
		const struct cf_entry *e = &cf_table[i];
		const char *s = st[i].str ? st[i].str : e->def;
		char	   *end;

		if (e->type == CF_INT)
		{
			long		v;

			errno = 0;
			v = strtol(s, &end, 10);
			if (errno || *s == '\0' || *end || v < e->min || v > e->max)
			{
				log_error("%s must be an integer from %d to %d, not \"%s\"", e->name, e->min, e->max, s);
				rc = -1;
			}
		}
		else if (e->type == CF_DOUBLE)
		{
			double		v;

			errno = 0;
			v = strtod(s, &end);
			/* written so that NaN fails too */
			if (errno || *s == '\0' || *end || !(v >= e->min && v <= e->max))
			{
				log_error("%s must be a number from %d to %d, not \"%s\"", e->name, e->min, e->max, s);
				rc = -1;
			}
		}
		else if (e->type == CF_BOOL)
		{
			bool		b;

			if (parse_bool(s, &b))
			{
				log_error("%s must be true or false, not \"%s\"", e->name, s);
				rc = -1;
			}
		}
		else if (e->type == CF_STR && e->max > 0 && strlen(s) > (size_t) e->max)
		{
			log_error("%s must be at most %d bytes long, not %zu", e->name, e->max, strlen(s));
			rc = -1;
		}
	}
	return rc;
}

/* Copy the stage into the cf_ variables (reloadable ones only if asked). */
static void
stage_apply(struct cf_stage *st, bool reload)
{
	for (int i = 0; i < CF_N; i++)
	{
		const struct cf_entry *e = &cf_table[i];
		const char *s = st[i].str ? st[i].str : e->def;

		if (reload && !e->reload)
			continue;
		switch (e->type)
		{
			case CF_STR:
				free(*(char **) e->var);
				*(char **) e->var = xstrdup(s);
				break;
			case CF_INT:
				*(int *) e->var = (int) strtol(s, NULL, 10);
				break;
			case CF_DOUBLE:
				*(double *) e->var = strtod(s, NULL);
				break;
			case CF_BOOL:
				parse_bool(s, (bool *) e->var);
				break;
			case CF_LIST:
				list_free((struct cf_list *) e->var);
				*(struct cf_list *) e->var = st[i].list;
				st[i].list.v = NULL;
				st[i].list.n = 0;
				break;
		}
	}
}

/* Room for the value of any setting. */
union cf_value
{
	char	   *str;
	struct cf_list list;
	int			i;
	double		d;
	bool		b;
};

/* The bytes a setting's variable takes. */
static size_t
var_size(enum cf_type type)
{
	switch (type)
	{
		case CF_STR:
			return sizeof(char *);
		case CF_INT:
			return sizeof(int);
		case CF_DOUBLE:
			return sizeof(double);
		case CF_BOOL:
			return sizeof(bool);
		case CF_LIST:
			return sizeof(struct cf_list);
	}
	return 0;
}

/* Free what a value of this type owns (a string, a list) and clear it. */
static void
var_clear(enum cf_type type, void *var)
{
	if (type == CF_STR)
	{
		free(*(char **) var);
		*(char **) var = NULL;
	}
	else if (type == CF_LIST)
		list_free((struct cf_list *) var);
}

/*
 * Move the reloadable settings' values aside (their variables are left
 * empty for stage_apply), to be put back or freed.
 */
static void
saved_take(union cf_value *sv)
{
	for (int i = 0; i < CF_N; i++)
		if (cf_table[i].reload)
		{
			memcpy(&sv[i], cf_table[i].var, var_size(cf_table[i].type));
			memset(cf_table[i].var, 0, var_size(cf_table[i].type));
		}
}

static void
saved_restore(union cf_value *sv)
{
	for (int i = 0; i < CF_N; i++)
		if (cf_table[i].reload)
		{
			var_clear(cf_table[i].type, cf_table[i].var);
			memcpy(cf_table[i].var, &sv[i], var_size(cf_table[i].type));
		}
}

static void
saved_free(union cf_value *sv)
{
	for (int i = 0; i < CF_N; i++)
		if (cf_table[i].reload)
			var_clear(cf_table[i].type, &sv[i]);
}

/* Build a stage from defaults, the file and the flags. */
static int
stage_build(struct cf_stage *st)
{
	memset(st, 0, sizeof(struct cf_stage) * CF_N);
	if (cf_config && read_file(cf_config, st))
		return -1;
	if (read_flags(saved_argc, saved_argv, st, NULL))
		return -1;
	return stage_check(st);
}

/* Load the settings at start. */
int
config_load(int argc, char **argv)
{
	struct cf_stage st[CF_N];
	bool		help = false;
	int			lvl;

	saved_argc = argc;
	saved_argv = argv;
	if (read_flags(argc, argv, NULL, &help))
		return -1;
	if (help)
	{
		config_usage(stdout);
		return 1;
	}
	if (stage_build(st))
	{
		stage_free(st);
		return -1;
	}
	stage_apply(st, false);
	stage_free(st);
	lvl = log_parse_level(cf_log_level);
	if (lvl < 0)
	{
		log_error("log_level must be error, warn, info or debug, not \"%s\"", cf_log_level);
		return -1;
	}
	log_level = lvl;
	return 0;
}

/* SIGHUP: read the file and flags again, apply what may change. */
int
config_reload(int (*accept) (void))
{
	struct cf_stage st[CF_N];
	union cf_value sv[CF_N];
	int			lvl;

	if (stage_build(st))
	{
		stage_free(st);
		log_error("configuration not reloaded: fix the errors above");
		return -1;
	}
	saved_take(sv);
	stage_apply(st, true);
	stage_free(st);
	if (accept && accept() != 0)
	{
		saved_restore(sv);
		log_error("configuration not reloaded: the previous settings stay in force");
		return -1;
	}
	saved_free(sv);
	lvl = log_parse_level(cf_log_level);
	if (lvl >= 0)
		log_level = lvl;
	return 0;
}

/* Free every setting. */
void
config_free(void)
{
	for (int i = 0; i < CF_N; i++)
		var_clear(cf_table[i].type, cf_table[i].var);
	free(cf_config);
	cf_config = NULL;
}

/* --help: every option with its default. */
void
config_usage(FILE *out)
{
	fprintf(out,
			"Usage: chat-relay [--config FILE] [--listen HOST:PORT] [--db CONNINFO]\n"
			"                  [--jwt-alg HS256|RS256|ES256] [--jwt-secret-file FILE | --jwt-public-key-file FILE]\n"
			"                  [--jwt-issuer ISS] [--jwt-audience AUD] [--allow-origin ORIGIN]... [OPTION VALUE]...\n\n"
			"WebSocket push relay of the chat extension (protocol v1, see docs/protocol.md).\n"
			"Flags override the config file (name = value lines, same names with - or _).\n"
			"SIGHUP reloads the settings marked *; SIGTERM closes clients with 1012 and exits.\n\n"
			"  --config FILE                 config file (default: none)\n");
	for (int i = 0; i < CF_N; i++)
	{
		const struct cf_entry *e = &cf_table[i];
		char		flag[64];
		const char *arg = e->type == CF_BOOL ? "" : e->type == CF_INT || e->type == CF_DOUBLE ? " N" : " VALUE";

		snprintf(flag, sizeof(flag), "--%s%s", e->name, arg);
		for (char *p = flag + 2; *p; p++)
			if (*p == '_')
				*p = '-';
		fprintf(out, "  %-29s %s%s (default: %s)\n", flag, e->reload ? "* " : "",
				e->help, *e->def ? e->def : "none");
	}
}
