/* src/common: UTF-8 checks and buffers. */
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
