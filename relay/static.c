/*
 * static.c: static files for browsers (the demo app and chat-client.js)
 * from the folder named by `www`, and the dispatch of /dev/token.
 *
 * Only GET, only regular files inside the folder: a path with a segment
 * that starts with "." (dotfiles, "." and ".."), a backslash or a control
 * character is refused before touching the file system, and the file's
 * realpath must still lie inside the folder's realpath (a symlink may not
 * lead out) and have no dot segment either. Only known extensions are
 * served, each with its content type; every answer carries
 * X-Content-Type-Options: nosniff and the configured Content-Security-Policy
 * (no inline script by default). Files are small: each is read whole (at
 * most WWW_MAX_FILE bytes) and sent with the connection's HTTP body.
 */
#include "alloc.h"
#include "static.h"
#include "config.h"
#include "log.h"
#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WWW_MAX_FILE (4 * 1024 * 1024)
#define WWW_MAX_PATH 1024

static const struct
{
	const char *ext;
	const char *type;
}			www_types[] = {
	{"html", "text/html; charset=utf-8"},
	{"js", "text/javascript; charset=utf-8"},
	{"mjs", "text/javascript; charset=utf-8"},
	{"css", "text/css; charset=utf-8"},
	{"svg", "image/svg+xml"},
	{"png", "image/png"},
	{"jpg", "image/jpeg"},
	{"jpeg", "image/jpeg"},
	{"gif", "image/gif"},
	{"webp", "image/webp"},
	{"ico", "image/x-icon"},
	{"json", "application/json"},
	{"webmanifest", "application/manifest+json"},
	{"txt", "text/plain; charset=utf-8"},
	{"woff2", "font/woff2"},
};

/* A body buffer with LWS_PRE headroom holding s. */
unsigned char *
www_body(const char *s, size_t *len)
{
	unsigned char *b;

	*len = strlen(s);
	b = xmalloc(LWS_PRE + *len + 1);
	memcpy(b + LWS_PRE, s, *len);
	return b;
}

/* Add one header line; nonzero when the buffer is full. */
static int
add_header(struct lws *wsi, const char *name, const char *value, unsigned char **p, unsigned char *end)
{
	return lws_add_http_header_by_name(wsi, (const unsigned char *) name, (const unsigned char *) value,
									   (int) strlen(value), p, end);
}

/* Send the status line and headers; the body follows when writeable. */
int
www_reply(struct lws *wsi, struct conn *c, unsigned int status, const char *ctype,
		  unsigned char *body, size_t len, const char *cache, bool csp)
{
	unsigned char hdr[LWS_PRE + 4096];
	unsigned char *start = hdr + LWS_PRE,
			   *p = start,
			   *end = hdr + sizeof(hdr) - 1;

	free(c->http_body);
	c->http_body = body;
	c->http_len = len;
	if (lws_add_http_common_headers(wsi, status, ctype, (lws_filepos_t) len, &p, end) ||
		add_header(wsi, "cache-control:", cache, &p, end) ||
		add_header(wsi, "x-content-type-options:", "nosniff", &p, end) ||
		add_header(wsi, "referrer-policy:", "no-referrer", &p, end) ||
		add_header(wsi, "cross-origin-opener-policy:", "same-origin", &p, end) ||
		(csp && *cf_www_csp && add_header(wsi, "content-security-policy:", cf_www_csp, &p, end)) ||
		(status == 405 && add_header(wsi, "allow:", "GET", &p, end)) ||
		lws_finalize_write_http_header(wsi, start, &p, end))
		return 1;
	if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0)
	{
		/*
		 * Not a GET (a refusal): lws waits for the request body and would
		 * not call HTTP_WRITEABLE, so the small body goes out now.
		 */
		/* a HEAD request gets the headers alone */
		bool		head = lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0;
		int			m = head ? 0 : lws_write(wsi, body + LWS_PRE, len, LWS_WRITE_HTTP_FINAL);

		free(c->http_body);
		c->http_body = NULL;
		if (m < 0)
			return -1;
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	}
	lws_callback_on_writable(wsi);
	return 0;
}

/* A short plain-text answer. */
static int
www_text(struct lws *wsi, struct conn *c, unsigned int status, const char *text)
{
	size_t		len;
	unsigned char *b = www_body(text, &len);

	return www_reply(wsi, c, status, "text/plain; charset=utf-8", b, len, "no-store", true);
}

/* The content type of a file name, or NULL when not served. */
static const char *
content_type(const char *name)
{
	const char *slash = strrchr(name, '/');
	const char *dot = strrchr(slash ? slash : name, '.');

	if (dot == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof(www_types) / sizeof(www_types[0]); i++)
		if (strcasecmp(dot + 1, www_types[i].ext) == 0)
			return www_types[i].type;
	return NULL;
}

/*
 * Is a (relative or absolute) path free of dot segments, backslashes and
 * control characters? Empty segments ("//") are allowed, as browsers make them.
 */
static bool
path_clean(const char *path)
{
	bool		seg_start = true;

	for (const unsigned char *s = (const unsigned char *) path; *s; s++)
	{
		if (*s < 0x20 || *s == 0x7f || *s == '\\')
			return false;
		if (seg_start && *s == '.')
			return false;
		seg_start = *s == '/';
	}
	return true;
}

/* Read a regular file of at most WWW_MAX_FILE bytes into a body buffer. */
static unsigned char *
read_file(const char *path, size_t *len, int *err)
{
	int			fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	unsigned char *b;
	size_t		got = 0;

	*err = 404;
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
	{
		close(fd);
		return NULL;
	}
	if (st.st_size > WWW_MAX_FILE)
	{
		*err = 413;
		close(fd);
		return NULL;
	}
	b = xmalloc(LWS_PRE + (size_t) st.st_size + 1);
	while (got < (size_t) st.st_size)
	{
		ssize_t		n = read(fd, b + LWS_PRE + got, (size_t) st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t) n;
	}
	close(fd);
	*len = got;
	*err = 0;
	return b;
}

/* Serve one file from the www folder. */
static int
serve_file(struct lws *wsi, struct conn *c, const char *path)
{
	char		root[PATH_MAX];
	char		want[PATH_MAX];
	char		real[PATH_MAX];
	const char *ctype;
	const char *rel;
	size_t		rootlen,
				len;
	unsigned char *body;
	int			err;
	struct stat st;

	if (realpath(cf_www, root) == NULL)
	{
		log_error("www folder %s: %s", cf_www, strerror(errno));
		return www_text(wsi, c, 404, "not found\n");
	}
	if (snprintf(want, sizeof(want), "%s%s", root, path) >= (int) sizeof(want))
		return www_text(wsi, c, 404, "not found\n");
	/* a folder (or "/") means its index.html */
	if (want[strlen(want) - 1] == '/' || (stat(want, &st) == 0 && S_ISDIR(st.st_mode)))
	{
		size_t		n = strlen(want);

		if (snprintf(want + n, sizeof(want) - n, "%sindex.html",
					 want[n - 1] == '/' ? "" : "/") >= (int) (sizeof(want) - n))
			return www_text(wsi, c, 404, "not found\n");
	}
	if (realpath(want, real) == NULL)
		return www_text(wsi, c, 404, "not found\n");
	rootlen = strlen(root);
	if (strncmp(real, root, rootlen) != 0 || real[rootlen] != '/')
	{
		log_warn("www: %s leads outside the folder; refused", path);
		return www_text(wsi, c, 404, "not found\n");
	}
	rel = real + rootlen;
	if (!path_clean(rel) || (ctype = content_type(rel)) == NULL)
		return www_text(wsi, c, 404, "not found\n");
	body = read_file(real, &len, &err);
	if (body == NULL)
		return www_text(wsi, c, (unsigned int) err, err == 413 ? "file too large\n" : "not found\n");
	return www_reply(wsi, c, 200, ctype, body, len, "no-cache", true);
}

/* Answer an HTTP request if it is ours. */
bool
www_http(struct lws *wsi, struct conn *c, const char *path, int *rc)
{
	bool		get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;

	if (strcmp(path, "/dev/token") == 0)
	{
		*rc = get ? devtoken_http(wsi, c) : www_text(wsi, c, 405, "GET only\n");
		return true;
	}
	if (!*cf_www)
		return false;
	if (!get)
		*rc = www_text(wsi, c, 405, "GET only\n");
	else if (path[0] != '/' || strlen(path) > WWW_MAX_PATH || !path_clean(path))
		*rc = www_text(wsi, c, 404, "not found\n");
	else
		*rc = serve_file(wsi, c, path);
	return true;
}

/* At start: say what is served, and warn about development tokens. */
void
www_startup(void)
{
	char		root[PATH_MAX];

	if (*cf_www)
	{
		if (realpath(cf_www, root) == NULL)
			log_error("www folder %s: %s (static files will not be found)", cf_www, strerror(errno));
		else
			log_info("serving static files from %s", root);
	}
	if (cf_dev_tokens)
		log_warn("development tokens are ON: anyone who reaches GET /dev/token can act as any user; "
				 "never enable dev_tokens in production");
}
