/* src/common: UTF-8 checks, buffers and pools. */
#include <criterion/criterion.h>
#include <stdio.h>

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
