/*
 * conf.h: a daemon's settings from one table: each entry names a setting,
 * its type, the variable it fills, whether SIGHUP may change it, its
 * default, limits and help. conf.c reads the config file and the flags
 * into it; the daemon only writes the table.
 */
#ifndef CORE_CONF_H
#define CORE_CONF_H

#include <stdbool.h>
#include <stdio.h>

struct cf_list
{
	char	  **v;
	int			n;
};

enum cf_type
{
	CF_STR,						/* char * */
	CF_INT,						/* int */
	CF_DOUBLE,					/* double */
	CF_BOOL,					/* bool */
	CF_LIST						/* struct cf_list, repeatable */
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

struct conf_spec
{
	const struct cf_entry *table;
	int			n;
	const char *usage;			/* --help's text before the options */
	char	  **log_level;		/* the table's log level variable: applied to log.c */
};

/* 0: run; 1: --help was printed; -1: an error, already logged. */
int			conf_load(const struct conf_spec *spec, int argc, char **argv);

/*
 * SIGHUP: read the file and flags again and apply the reloadable settings,
 * then accept() (e.g. load keys); if anything fails, the previous settings
 * are put back, all of them. 0 when applied.
 */
int			conf_reload(int (*accept) (void));
void		conf_free(void);
void		conf_usage(FILE *out);

#endif
