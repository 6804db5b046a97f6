/*
 * conf.c: a daemon's settings from one table (conf.h): the config file
 * reader, the flags, checking every value before any is used, and SIGHUP's
 * all-or-nothing reload.
 *
 * The file holds `name = value` lines (`#` starts a comment, names may use
 * `-` or `_`, values may be double-quoted); list settings such as
 * allow_origin repeat. A flag --name value (or --name=value) overrides the
 * file; a list given by flags replaces the file's list. Boolean flags may be
 * given bare (--allow-no-origin).
 */
#include "conf.h"

#include "alloc.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static const struct conf_spec *spec;
static char *conf_path;			/* --config */

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
	for (int i = 0; i < spec->n; i++)
		if (strcmp(spec->table[i].name, norm) == 0)
			return &spec->table[i];
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
	struct cf_stage *s = &st[e - spec->table];

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
	for (int i = 0; i < spec->n; i++)
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
				free(conf_path);
				conf_path = xstrdup(val);
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

	for (int i = 0; i < spec->n; i++)
	{
		const struct cf_entry *e = &spec->table[i];
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
	for (int i = 0; i < spec->n; i++)
	{
		const struct cf_entry *e = &spec->table[i];
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
	for (int i = 0; i < spec->n; i++)
		if (spec->table[i].reload)
		{
			memcpy(&sv[i], spec->table[i].var, var_size(spec->table[i].type));
			memset(spec->table[i].var, 0, var_size(spec->table[i].type));
		}
}

static void
saved_restore(union cf_value *sv)
{
	for (int i = 0; i < spec->n; i++)
		if (spec->table[i].reload)
		{
			var_clear(spec->table[i].type, spec->table[i].var);
			memcpy(spec->table[i].var, &sv[i], var_size(spec->table[i].type));
		}
}

static void
saved_free(union cf_value *sv)
{
	for (int i = 0; i < spec->n; i++)
		if (spec->table[i].reload)
			var_clear(spec->table[i].type, &sv[i]);
}

/* Build a stage from defaults, the file and the flags. */
static int
stage_build(struct cf_stage *st)
{
	if (conf_path && read_file(conf_path, st))
		return -1;
	if (read_flags(saved_argc, saved_argv, st, NULL))
		return -1;
	return stage_check(st);
}

int
conf_load(const struct conf_spec *s, int argc, char **argv)
{
	struct cf_stage *st;
	bool		help = false;
	int			lvl;

	spec = s;
	saved_argc = argc;
	saved_argv = argv;
	if (read_flags(argc, argv, NULL, &help))
		return -1;
	if (help)
	{
		conf_usage(stdout);
		return 1;
	}
	st = xcalloc((size_t) spec->n, sizeof(*st));
	lvl = stage_build(st);
	if (lvl == 0)
		stage_apply(st, false);
	stage_free(st);
	free(st);
	if (lvl != 0)
		return -1;
	lvl = log_parse_level(*spec->log_level);
	if (lvl < 0)
	{
		log_error("log_level must be error, warn, info or debug, not \"%s\"", *spec->log_level);
		return -1;
	}
	log_level = lvl;
	return 0;
}

int
conf_reload(int (*accept) (void))
{
	struct cf_stage *st = xcalloc((size_t) spec->n, sizeof(*st));
	union cf_value *sv = xcalloc((size_t) spec->n, sizeof(*sv));
	int			lvl;
	int			rc = 0;

	if (stage_build(st))
	{
		log_error("configuration not reloaded: fix the errors above");
		rc = -1;
	}
	else
	{
		saved_take(sv);
		stage_apply(st, true);
		if (accept && accept() != 0)
		{
			saved_restore(sv);
			log_error("configuration not reloaded: the previous settings stay in force");
			rc = -1;
		}
		else
			saved_free(sv);
	}
	stage_free(st);
	free(st);
	free(sv);
	if (rc != 0)
		return rc;
	lvl = log_parse_level(*spec->log_level);
	if (lvl >= 0)
		log_level = lvl;
	return 0;
}

void
conf_free(void)
{
	for (int i = 0; i < spec->n; i++)
		var_clear(spec->table[i].type, spec->table[i].var);
	free(conf_path);
	conf_path = NULL;
}


/* --help: the daemon's head text, then every option with its default. */
void
conf_usage(FILE *out)
{
	fputs(spec->usage, out);
	fprintf(out, "  %-29s %s\n", "--config FILE", "config file (default: none)");
	for (int i = 0; i < spec->n; i++)
	{
		const struct cf_entry *e = &spec->table[i];
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
