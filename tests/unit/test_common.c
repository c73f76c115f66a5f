/* src/common: UTF-8 checks, buffers and pools. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "common/sb.h"
#include "memfs.h"

TestSuite(common, .fini = leak_check);

Test(common, utf8_valid_and_clean)
{
	cr_assert(sb_utf8_valid("Zürich ✓ 𝄞", strlen("Zürich ✓ 𝄞")));
	cr_assert(!sb_utf8_valid("\xe9"
				 "cole",
				 5));			  /* Latin-1 */
	cr_assert(!sb_utf8_valid("\xc0\xaf", 2));	  /* overlong '/' */
	cr_assert(!sb_utf8_valid("\xed\xa0\x80", 3));	  /* a surrogate */
	cr_assert(!sb_utf8_valid("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
	cr_assert(!sb_utf8_valid("\xe2\x9c", 2));	  /* cut short */
	char s[] = "ok \xe9 and \xe2\x9c";
	sb_utf8_clean(s);
	cr_assert_str_eq(s, "ok ? and ??");
	char t[] = "Zürich";
	sb_utf8_clean(t);
	cr_assert_str_eq(t, "Zürich");
}

Test(common, buf_put_appends_and_terminates)
{
	sb_buf b;
	sb_buf_init(&b);
	for (int i = 0; i < 1000; i++) {
		char *p = sb_buf_put(&b, 3);
		memcpy(p, "abc", 3);
	}
	cr_assert_eq(b.len, 3000);
	cr_assert_eq(b.data[3000], '\0');
	cr_assert_eq(memcmp(b.data + 2997, "abc", 3), 0);
	sb_buf_free(&b);
}

Test(common, pool_allocations)
{
	/* the first block lives in the pool's own allocation; later ones are
	 * chained, a large request gets a block of its own, and everything is
	 * zeroed, 8-byte aligned and freed at once (ASan checks the bounds and
	 * the frees) */
	sb_pool *p = sb_pool_new(256);
	size_t start = sb_pool_footprint(p);
	cr_assert_geq(start, 256);
	char *prev = NULL;
	for (int i = 0; i < 100; i++) {
		unsigned char *a = sb_pool_alloc(p, (size_t)(i % 13) + 1);
		cr_assert_eq((uintptr_t)a % 8, 0);
		for (int k = 0; k < i % 13 + 1; k++)
			cr_assert_eq(a[k], 0);
		memset(a, 0xab, (size_t)(i % 13) + 1);
		char *s = sb_pool_strndup(p, "hello, pool", 5);
		cr_assert_str_eq(s, "hello");
		cr_assert_neq(s, prev);
		prev = s;
	}
	cr_assert_gt(sb_pool_footprint(p), start); /* more blocks were chained */
	size_t before = sb_pool_footprint(p);
	unsigned char *big = sb_pool_alloc(p, 1000);
	for (int k = 0; k < 1000; k++)
		cr_assert_eq(big[k], 0);
	cr_assert_geq(sb_pool_footprint(p), before + 1000);
	/* small allocations go on in the current block, not after the big one */
	char *after = sb_pool_strdup(p, "x");
	cr_assert_str_eq(after, "x");
	sb_pool_free(p);
	sb_pool_free(NULL);
}

Test(common, line_chunk_keeps_lines_whole)
{
	/* within the limit: everything */
	cr_assert_eq(sb_line_chunk("ab\ncd\n", 6, 8), 6);
	cr_assert_eq(sb_line_chunk("ab\ncd\n", 6, 6), 6);
	/* over it: the whole lines that fit */
	cr_assert_eq(sb_line_chunk("ab\ncd\nef\n", 9, 7), 6);
	cr_assert_eq(sb_line_chunk("ab\ncd\nef\n", 9, 6), 6);
	cr_assert_eq(sb_line_chunk("ab\ncd\nef\n", 9, 5), 3);
	/* a first line longer than the limit goes alone */
	cr_assert_eq(sb_line_chunk("abcdef\ngh\n", 10, 4), 7);
	/* no newline at all: everything */
	cr_assert_eq(sb_line_chunk("abcdefgh", 8, 4), 8);
	/* every cut of a buffer of lines of varied lengths ends a line and
	 * stays within the limit unless it is one long line */
	char buf[4000];
	size_t n = 0;
	for (int i = 0; n + 200 < sizeof(buf); i++) {
		size_t len = (size_t)(i * 37 % 150) + 1;
		memset(buf + n, 'x', len);
		n += len;
		buf[n++] = '\n';
	}
	for (size_t max = 1; max <= 300; max++) {
		for (size_t off = 0; off < n;) {
			size_t k = sb_line_chunk(buf + off, n - off, max);
			cr_assert(k > 0 && off + k <= n);
			cr_assert_eq(buf[off + k - 1], '\n', "max %zu off %zu k %zu", max, off, k);
			if (k > max)
				cr_assert_null(memchr(buf + off, '\n', k - 1), "a long line alone");
			off += k;
		}
	}
}

/* RFC 3986 5.2.4 and 5.4's examples, and the edges of the rules. */
Test(common, path_remove_dots)
{
	static const char *const cases[][2] = {
	    {"/a/b/c/./../../g", "/a/g"},
	    {"mid/content=5/../6", "mid/6"},
	    {"/a/b/c/../../../g", "/g"},
	    {"/a/b/c/../../../../g", "/g"},
	    {"/..", "/"},
	    {"/.", "/"},
	    {"/a/..", "/"},
	    {"/a/b/..", "/a/"},
	    {"/a/./b", "/a/b"},
	    {"/a//../b", "/a/b"},
	    {"/a/b/", "/a/b/"},
	    {"/a..b/.c/..d", "/a..b/.c/..d"},
	    {"../a", "a"},
	    {"./a", "a"},
	    {"", ""},
	};
	char out[64];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = sb_path_remove_dots(cases[i][0], strlen(cases[i][0]), out);
		cr_assert_eq(n, strlen(cases[i][1]), "%s: %.*s", cases[i][0], (int)n, out);
		cr_assert(memcmp(out, cases[i][1], n) == 0, "%s: %.*s", cases[i][0], (int)n, out);
	}
}

/* What a client sends for a URL: dots resolved, the query kept as it is. */
Test(common, url_target_resolves_dot_segments)
{
	static const char *const cases[][2] = {
	    {"https://h.example/a/../b?x=/../y#f", "/b?x=/../y"},
	    {"https://h.example/..", "/"},
	    {"https://h.example/a/./b", "/a/b"},
	    {"https://h.example/a..b/c", "/a..b/c"},
	    {"https://h.example?q", "/?q"},
	    {"https://h.example", "/"},
	};
	/* a buffer too small to resolve into: the path as written, not "/" */
	sb_url lu;
	char small[8];
	size_t ll;
	cr_assert_eq(sb_url_split("https://h.example/abc/../defgh", &lu), 0);
	const char *lt = sb_url_target(&lu, small, sizeof(small), &ll);
	cr_assert(ll == 13 && memcmp(lt, "/abc/../defgh", 13) == 0, "%.*s", (int)ll, lt);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sb_url u;
		char buf[128];
		size_t len;
		cr_assert_eq(sb_url_split(cases[i][0], &u), 0);
		const char *t = sb_url_target(&u, buf, sizeof(buf), &len);
		cr_assert(len == strlen(cases[i][1]) && memcmp(t, cases[i][1], len) == 0,
			  "%s: %.*s", cases[i][0], (int)len, t);
	}
}

Test(common, edit_distance_counts_typos)
{
	cr_assert_eq(sb_edit_distance("check", "check"), 0);
	cr_assert_eq(sb_edit_distance("chek", "check"), 1);	   /* a deletion */
	cr_assert_eq(sb_edit_distance("rollbakc", "rollback"), 1); /* a transposition */
	cr_assert_eq(sb_edit_distance("data_dri", "data_dir"), 1);
	cr_assert_eq(sb_edit_distance("rutes", "routes"), 1);
	cr_assert_eq(sb_edit_distance("", "abc"), 3);
	cr_assert_eq(sb_edit_distance("zone", "verify"), 6);
	char longer[64];
	memset(longer, 'a', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	cr_assert_eq(sb_edit_distance(longer, "a"), SIZE_MAX);
}

Test(common, hexval_takes_both_cases_and_nothing_else)
{
	const char *digits = "0123456789abcdef";
	for (int i = 0; i < 16; i++) {
		cr_assert_eq(sb_hexval(digits[i]), i);
		cr_assert_eq(sb_hexval(toupper((unsigned char)digits[i])), i);
	}
	/* the neighbours of each range, a byte with the high bit, and EOF */
	const int others[] = {'/', ':', '@', 'G', '`', 'g', ' ', '\0', 0xff, (char)0xc3, -1};
	for (size_t i = 0; i < sizeof(others) / sizeof(*others); i++)
		cr_assert_eq(sb_hexval(others[i]), -1, "%d", others[i]);
}

Test(common, where_leaves_out_a_place_there_is_not)
{
	char b[SB_WHERE_SIZE];
	cr_assert_str_eq(sb_where("a.toml", 3, 7, b, sizeof(b)), "a.toml:3:7");
	cr_assert_str_eq(sb_where("a.toml", 3, 0, b, sizeof(b)), "a.toml:3");
	cr_assert_str_eq(sb_where("deploy web-production", 0, 0, b, sizeof(b)),
			 "deploy web-production");
	cr_assert_str_eq(sb_where(NULL, 0, 0, b, sizeof(b)), "?");
	cr_assert_str_eq(sb_where("", 2, 1, b, sizeof(b)), "?:2:1");
}

/* An upstream's host is a name, an IPv4 address or an IPv6 one in []: "a b"
 * passed `check` and `routes` and failed only when serve resolved it. */
Test(common, upstream_url_host_is_a_name_or_an_address)
{
	const char *good[] = {"http://127.0.0.1:9101",	   "http://[::1]:80",
			      "http://my_host.local:8080", "http://API.example.com",
			      "http://[2001:db8::1]",	   "http://[::ffff:1.2.3.4]:1"};
	const char *bad[] = {"http://a b:80", "http://a%20b:80",	  "http://[zz]:1",
			     "http://[]:80",  "http://[fe80::1%eth0]:80", "http://a\tb"};
	const char *why;
	for (size_t i = 0; i < SB_ARRAY_LEN(good); i++)
		cr_assert_eq(sb_url_check_upstream(good[i], &why), 0, "%s: %s", good[i], why);
	for (size_t i = 0; i < SB_ARRAY_LEN(bad); i++) {
		why = NULL;
		cr_assert_eq(sb_url_check_upstream(bad[i], &why), SB_EINVAL, "%s accepted", bad[i]);
		cr_assert(why != NULL, "%s", bad[i]);
	}
	why = NULL;
	sb_url_check_upstream("http://a b:80", &why);
	cr_assert(strstr(why, "the host must be a name or an IP address"), "%s", why);
}

/* RFC 3986 3.1: a scheme is case-insensitive; only http and https count. */
Test(common, http_scheme_len_in_any_case)
{
	cr_assert_eq(sb_http_scheme_len("https://a"), 8);
	cr_assert_eq(sb_http_scheme_len("HTTPS://a"), 8);
	cr_assert_eq(sb_http_scheme_len("Http://a"), 7);
	cr_assert_eq(sb_http_scheme_len("http://"), 7);
	cr_assert_eq(sb_http_scheme_len("http:/a"), 0);
	cr_assert_eq(sb_http_scheme_len("httpx://a"), 0);
	cr_assert_eq(sb_http_scheme_len("ftp://a"), 0);
	cr_assert_eq(sb_http_scheme_len("a.example.com/https://"), 0);
	cr_assert_eq(sb_http_scheme_len(""), 0);
}
