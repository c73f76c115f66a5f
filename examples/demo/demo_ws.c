/*
 * WebSocket for demo-service (RFC 6455): the opening handshake, then an echo.
 *
 * Frames are handled whole: a frame is acted on only once all its bytes are
 * buffered (the connection's input buffer grows for it, up to MAX_FRAME).
 * Each data frame goes back as it came, same opcode and FIN bit, unmasked,
 * so fragmented messages are echoed fragment by fragment. Pings get pongs,
 * a close gets a close and then the TCP connection ends.
 */
#include "demo.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/sha.h>

#define MAX_FRAME (16u << 20)

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* Does the comma-separated list [v, v+n) contain token (any case)? */
static bool has_token(const char *v, size_t n, const char *token)
{
	size_t tlen = strlen(token);
	const char *end = v + n;
	while (v < end) {
		const char *comma = memchr(v, ',', (size_t)(end - v));
		const char *a = v, *b = comma ? comma : end;
		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		if ((size_t)(b - a) == tlen && strncasecmp(a, token, tlen) == 0)
			return true;
		v = comma ? comma + 1 : end;
	}
	return false;
}

static bool is_b64(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '+' || ch == '/';
}

int demo_ws_upgrade(struct demo_conn *c)
{
	size_t ulen = 0, vlen = 0, klen = 0;
	const char *up = demo_hdr_get(c, "upgrade", &ulen, NULL);
	const char *version = demo_hdr_get(c, "sec-websocket-version", &vlen, NULL);
	const char *key = demo_hdr_get(c, "sec-websocket-key", &klen, NULL);

	/* llhttp flags an upgrade only with "Connection: upgrade" and Upgrade */
	if (!c->upgraded || c->parser.method != HTTP_GET || c->http10 || !up ||
	    !has_token(up, ulen, "websocket"))
		return 426;
	if (!version || vlen != 2 || memcmp(version, "13", 2) != 0)
		return 426;
	/* the key is 16 random bytes in base64: 22 characters and "==" */
	if (!key || klen != 24 || key[22] != '=' || key[23] != '=')
		return 400;
	for (size_t i = 0; i < 22; i++)
		if (!is_b64(key[i]))
			return 400;

	uint8_t md[SHA_DIGEST_LENGTH];
	unsigned mdlen = 0;
	char accept[32];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx)
		sb_oom();
	int ok = EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) && EVP_DigestUpdate(ctx, key, klen) &&
		 EVP_DigestUpdate(ctx, ws_guid, sizeof(ws_guid) - 1) &&
		 EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return 500;
	EVP_EncodeBlock((unsigned char *)accept, md, (int)mdlen);

	sb_buf b;
	sb_buf_init(&b);
	sb_buf_addf(&b,
		    "HTTP/1.1 101 Switching Protocols\r\nServer: switchboard-demo\r\n"
		    "X-Demo-Worker: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		    "Sec-WebSocket-Accept: %s\r\n\r\n",
		    demo_cfg.name, accept);
	size_t n = b.len;
	demo_conn_write_owned(c, sb_buf_steal(&b), n);
	c->ws = true;
	return 0;
}

/* Queue one unmasked frame. */
static void ws_send(struct demo_conn *c, uint8_t b0, const uint8_t *payload, size_t n)
{
	char *f = sb_xmalloc(n + 10);
	size_t h = 0;
	f[h++] = (char)b0;
	if (n < 126) {
		f[h++] = (char)n;
	} else if (n <= 0xffff) {
		f[h++] = 126;
		f[h++] = (char)(n >> 8);
		f[h++] = (char)n;
	} else {
		f[h++] = 127;
		for (int i = 7; i >= 0; i--)
			f[h++] = (char)((uint64_t)n >> (8 * i));
	}
	if (n)
		memcpy(f + h, payload, n);
	demo_conn_write_owned(c, f, h + n);
}

/* Send a close with a status code (once) and end the connection. */
static void ws_close(struct demo_conn *c, unsigned code, const uint8_t *payload, size_t n)
{
	if (!c->ws_close_sent) {
		uint8_t body[2] = {(uint8_t)(code >> 8), (uint8_t)code};
		if (payload)
			ws_send(c, 0x88, payload, n);
		else
			ws_send(c, 0x88, body, code ? 2 : 0);
		c->ws_close_sent = true;
	}
	demo_conn_end(c);
}

bool demo_ws_step(struct demo_conn *c)
{
	uint8_t *p = (uint8_t *)c->in + c->in_off;
	size_t avail = c->in_len - c->in_off, h = 2;
	uint64_t len;

	if (avail < 2)
		return false;
	bool fin = p[0] & 0x80, masked = p[1] & 0x80;
	unsigned op = p[0] & 0x0f;
	len = p[1] & 0x7f;
	if (len == 126) {
		if (avail < 4)
			return false;
		len = (uint64_t)p[2] << 8 | p[3];
		h = 4;
	} else if (len == 127) {
		if (avail < 10)
			return false;
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | p[2 + i];
		h = 10;
	}
	/* reserved bits without an extension, unmasked client frames, unknown
	 * opcodes, long or fragmented control frames: protocol errors */
	bool control = op & 0x8;
	if ((p[0] & 0x70) || !masked || (op > 2 && op < 8) || op > 10 ||
	    (control && (!fin || len > 125)) || (op == 0 && !c->ws_fragment) ||
	    (op != 0 && !control && c->ws_fragment)) {
		ws_close(c, 1002, NULL, 0);
		return false;
	}
	if (len > MAX_FRAME) {
		ws_close(c, 1009, NULL, 0);
		return false;
	}
	if (avail < h + 4 + len)
		return false;
	const uint8_t *mask = p + h;
	uint8_t *payload = p + h + 4;
	for (uint64_t i = 0; i < len; i++)
		payload[i] ^= mask[i & 3];
	c->in_off += h + 4 + (size_t)len;

	switch (op) {
	case 0x0:
	case 0x1:
	case 0x2:
		if (!control)
			c->ws_fragment = !fin;
		ws_send(c, (uint8_t)((fin ? 0x80 : 0) | op), payload, (size_t)len);
		return true;
	case 0x8:
		/* echo the peer's code; a 1-byte body is not a valid close */
		if (len == 1)
			ws_close(c, 1002, NULL, 0);
		else
			ws_close(c, 0, len ? payload : NULL, len >= 2 ? 2 : 0);
		return false;
	case 0x9: ws_send(c, 0x8a, payload, (size_t)len); return true;
	default: /* pong */ return true;
	}
}
