/*
 * base64url.c: base64url without padding (base64url.h).
 */
#include "base64url.h"

#include "alloc.h"

#include <stdint.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void
base64url_encode(const unsigned char *in, size_t n, char *out)
{
	uint32_t	acc = 0;
	int			bits = 0;

	for (size_t i = 0; i < n; i++)
	{
		acc = (acc << 8 | in[i]) & 0xffff;
		bits += 8;
		while (bits >= 6)
		{
			bits -= 6;
			*out++ = alphabet[(acc >> bits) & 63];
		}
	}
	if (bits > 0)
		*out++ = alphabet[(acc << (6 - bits)) & 63];
	*out = '\0';
}

char *
base64url_encode_new(const unsigned char *in, size_t n)
{
	char	   *out = xmalloc(BASE64URL_LEN(n) + 1);

	base64url_encode(in, n, out);
	return out;
}

/* The value of one character, or -1. */
static int
value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-' || c == '+')
		return 62;
	if (c == '_' || c == '/')
		return 63;
	return -1;
}

int
base64url_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
	uint32_t	acc = 0;
	int			bits = 0;
	size_t		n = 0;

	for (int pad = 0; pad < 2 && len > 0 && in[len - 1] == '='; pad++)
		len--;
	for (size_t i = 0; i < len; i++)
	{
		int			v = value((unsigned char) in[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6 | (uint32_t) v) & 0xffffff;
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			if (n == cap)
				return -1;
			out[n++] = (unsigned char) (acc >> bits);
		}
	}
	/* one character alone cannot end a base64 text */
	return bits >= 6 ? -1 : (int) n;
}
