/* Unit tests of the TOML 1.1 reader (src/config/toml.c). */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "config/toml.h"

/*
 * Criterion runs each test in a worker that leaves through _exit(), so
 * LeakSanitizer would never look; check for leaks after every test instead.
 */
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#include <stdlib.h>

static void check_leaks(void)
{
	if (__lsan_do_recoverable_leak_check())
		abort();
}

TestSuite(toml, .fini = check_leaks);
#endif

typedef int (*parse_fn)(const char *, size_t, const char *, sb_toml_value **, sb_diag *);

/* Text that parse (TOML or JSONC) must read; its tree. */
static sb_toml_value *read_ok(parse_fn parse, const char *file, const char *text)
{
	sb_toml_value *root = NULL;
	sb_diag d = {0};
	int r = parse(text, strlen(text), file, &root, &d);
	cr_assert_eq(r, 0, "parse failed: %s:%d:%d: %s", d.file, d.line, d.col, d.msg);
	cr_assert_not_null(root);
	return root;
}

/* Text that parse must refuse; the diagnostic. */
static sb_diag read_err(parse_fn parse, const char *file, const char *text, size_t len)
{
	sb_toml_value *root = (sb_toml_value *)&root; /* must be reset to NULL */
	sb_diag d = {0};
	int r = parse(text, len, file, &root, &d);
	cr_assert_eq(r, SB_EPARSE, "expected SB_EPARSE for %s", text);
	cr_assert_null(root);
	cr_assert_str_eq(d.file, file);
	cr_assert(d.line > 0 && d.col > 0);
	cr_assert(d.msg[0] != '\0');
	return d;
}

static sb_toml_value *parse_ok(const char *text)
{
	return read_ok(sb_toml_parse, "t.toml", text);
}

static sb_diag parse_err_n(const char *text, size_t len)
{
	return read_err(sb_toml_parse, "t.toml", text, len);
}

static sb_diag parse_err(const char *text)
{
	return parse_err_n(text, strlen(text));
}

/* d's position is l:c and its message says substr. */
#define ASSERT_DIAG(diag, l, c, substr)                                                            \
	do {                                                                                       \
		sb_diag d_ = (diag);                                                               \
		cr_expect_eq(d_.line, (l), "line %d != %d (%s)", d_.line, (l), d_.msg);            \
		cr_expect_eq(d_.col, (c), "col %d != %d (%s)", d_.col, (c), d_.msg);               \
		cr_expect(strstr(d_.msg, (substr)) != NULL, "message '%s' lacks '%s'", d_.msg,     \
			  (substr));                                                               \
	} while (0)

#define ASSERT_ERR(text, l, c, substr) ASSERT_DIAG(parse_err(text), l, c, substr)

static const char *str_at(const sb_toml_value *t, const char *key)
{
	const sb_toml_value *v = sb_toml_table_get(t, key);
	cr_assert_not_null(v, "no key %s", key);
	cr_assert_eq(sb_toml_type_of(v), SB_TOML_STRING, "%s is not a string", key);
	return sb_toml_string(v, NULL);
}

static const char *dt_at(const sb_toml_value *t, const char *key, sb_toml_type type)
{
	const sb_toml_value *v = sb_toml_table_get(t, key);
	cr_assert_not_null(v, "no key %s", key);
	cr_assert_eq(sb_toml_type_of(v), type, "%s has type %s", key,
		     sb_toml_type_name(sb_toml_type_of(v)));
	return sb_toml_datetime(v);
}

Test(toml, scalars)
{
	sb_toml_value *root = parse_ok("s = \"hi\"\n"
				       "i = -42\n"
				       "h = 0xdead_BEEF\n"
				       "o = 0o755\n"
				       "b = 0b1010\n"
				       "f = 6.25e-1\n"
				       "t = true\n"
				       "n = false\n"
				       "big = 9_223_372_036_854_775_807\n"
				       "small = -9223372036854775808\n"
				       "pinf = +inf\n"
				       "ninf = -inf\n"
				       "nan = nan\n");
	cr_assert_eq(sb_toml_type_of(root), SB_TOML_TABLE);
	cr_assert_eq(sb_toml_table_len(root), 13);
	cr_assert_str_eq(str_at(root, "s"), "hi");
	cr_assert_eq(sb_toml_int(sb_toml_table_get(root, "i")), -42);
	cr_assert_eq(sb_toml_int(sb_toml_table_get(root, "h")), 0xdeadbeef);
	cr_assert_eq(sb_toml_int(sb_toml_table_get(root, "o")), 0755);
	cr_assert_eq(sb_toml_int(sb_toml_table_get(root, "b")), 10);
	cr_assert_eq(sb_toml_type_of(sb_toml_table_get(root, "f")), SB_TOML_FLOAT);
	cr_assert_float_eq(sb_toml_float(sb_toml_table_get(root, "f")), 0.625, 1e-15);
	cr_assert_eq(sb_toml_type_of(sb_toml_table_get(root, "t")), SB_TOML_BOOL);
	cr_assert(sb_toml_bool(sb_toml_table_get(root, "t")));
	cr_assert_not(sb_toml_bool(sb_toml_table_get(root, "n")));
	cr_assert_eq(sb_toml_int(sb_toml_table_get(root, "big")), INT64_MAX);
	cr_assert_eq(sb_toml_int(sb_toml_table_get(root, "small")), INT64_MIN);
	cr_assert(isinf(sb_toml_float(sb_toml_table_get(root, "pinf"))));
	cr_assert(sb_toml_float(sb_toml_table_get(root, "ninf")) < 0);
	cr_assert(isnan(sb_toml_float(sb_toml_table_get(root, "nan"))));
	cr_assert_null(sb_toml_table_get(root, "missing"));
	sb_toml_free(root);
}

Test(toml, type_names)
{
	cr_assert_str_eq(sb_toml_type_name(SB_TOML_STRING), "string");
	cr_assert_str_eq(sb_toml_type_name(SB_TOML_BOOL), "bool");
	cr_assert_str_eq(sb_toml_type_name(SB_TOML_DATETIME_LOCAL), "datetime-local");
	cr_assert_str_eq(sb_toml_type_name(SB_TOML_DATE_LOCAL), "date-local");
	cr_assert_str_eq(sb_toml_type_name(SB_TOML_TIME_LOCAL), "time-local");
	cr_assert_str_eq(sb_toml_type_name(SB_TOML_TABLE), "table");
	cr_assert_str_eq(sb_toml_type_name(SB_TOML_ARRAY), "array");
}

Test(toml, key_order_and_positions)
{
	sb_toml_value *root = parse_ok("zeta = 1\n"
				       "alpha = 2\n"
				       "\n"
				       "[mid]\n"
				       "  b = 'x'\n"
				       "  a = [1, 2]\n");
	size_t n;
	cr_assert_eq(sb_toml_table_len(root), 3);
	cr_assert_str_eq(sb_toml_table_key(root, 0, &n), "zeta");
	cr_assert_eq(n, 4);
	cr_assert_str_eq(sb_toml_table_key(root, 1, NULL), "alpha");
	cr_assert_str_eq(sb_toml_table_key(root, 2, NULL), "mid");
	cr_assert_null(sb_toml_table_key(root, 3, NULL));
	cr_assert_eq(sb_toml_line(root), 1);
	cr_assert_eq(sb_toml_col(root), 1);

	const sb_toml_value *alpha = sb_toml_table_value(root, 1);
	cr_assert_eq(sb_toml_line(alpha), 2);
	cr_assert_eq(sb_toml_col(alpha), 9);

	const sb_toml_value *mid = sb_toml_table_get(root, "mid");
	cr_assert_eq(sb_toml_line(mid), 4);
	cr_assert_eq(sb_toml_col(mid), 1);
	cr_assert_str_eq(sb_toml_table_key(mid, 0, NULL), "b");
	cr_assert_str_eq(sb_toml_table_key(mid, 1, NULL), "a");
	const sb_toml_value *b = sb_toml_table_get(mid, "b");
	cr_assert_eq(sb_toml_line(b), 5);
	cr_assert_eq(sb_toml_col(b), 7);
	const sb_toml_value *a = sb_toml_table_get(mid, "a");
	cr_assert_eq(sb_toml_type_of(a), SB_TOML_ARRAY);
	cr_assert_eq(sb_toml_line(a), 6);
	cr_assert_eq(sb_toml_col(a), 7);
	cr_assert_eq(sb_toml_array_len(a), 2);
	cr_assert_eq(sb_toml_int(sb_toml_array_at(a, 1)), 2);
	cr_assert_eq(sb_toml_col(sb_toml_array_at(a, 1)), 11);
	cr_assert_null(sb_toml_array_at(a, 2));
	sb_toml_free(root);
}

Test(toml, columns_count_characters)
{
	/* "é" and "€" are one column each although 2 and 3 bytes long */
	sb_toml_value *root = parse_ok("\"é€\" = \"x\"\nu = 1\n");
	const sb_toml_value *v = sb_toml_table_get(root, "é€");
	cr_assert_not_null(v);
	cr_assert_eq(sb_toml_col(v), 8);
	sb_toml_free(root);
	ASSERT_ERR("\"é€\" = \"\\q\"\n", 1, 9, "invalid escape '\\q'");
}

Test(toml, many_keys_use_the_index)
{
	sb_buf b;
	sb_buf_init(&b);
	for (int i = 0; i < 2000; i++)
		sb_buf_addf(&b, "k%d = %d\n", i, i);
	sb_toml_value *root = parse_ok(b.data);
	cr_assert_eq(sb_toml_table_len(root), 2000);
	cr_assert_eq(sb_toml_int(sb_toml_table_get(root, "k1234")), 1234);
	cr_assert_str_eq(sb_toml_table_key(root, 1999, NULL), "k1999");
	sb_toml_free(root);
	sb_buf_addf(&b, "k777 = 1\n");
	ASSERT_ERR(b.data, 2001, 1, "duplicate key 'k777' (first defined at 778:1)");
	sb_buf_free(&b);
}

Test(toml, tables_and_arrays_of_tables)
{
	sb_toml_value *root = parse_ok("[a.b]\n"
				       "x = 1\n"
				       "[a]\n"
				       "y = 2\n"
				       "[[fruit]]\n"
				       "name = 'apple'\n"
				       "[fruit.physical]\n"
				       "color = 'red'\n"
				       "[[fruit]]\n"
				       "name = 'banana'\n");
	const sb_toml_value *a = sb_toml_table_get(root, "a");
	cr_assert_eq(sb_toml_type_of(a), SB_TOML_TABLE);
	cr_assert_eq(sb_toml_line(a), 3); /* defined by its own header */
	cr_assert_eq(sb_toml_int(sb_toml_table_get(sb_toml_table_get(a, "b"), "x")), 1);
	cr_assert_eq(sb_toml_int(sb_toml_table_get(a, "y")), 2);
	const sb_toml_value *fruit = sb_toml_table_get(root, "fruit");
	cr_assert_eq(sb_toml_type_of(fruit), SB_TOML_ARRAY);
	cr_assert_eq(sb_toml_array_len(fruit), 2);
	const sb_toml_value *f0 = sb_toml_array_at(fruit, 0);
	cr_assert_str_eq(str_at(f0, "name"), "apple");
	cr_assert_str_eq(str_at(sb_toml_table_get(f0, "physical"), "color"), "red");
	cr_assert_eq(sb_toml_line(sb_toml_array_at(fruit, 1)), 9);
	cr_assert_str_eq(str_at(sb_toml_array_at(fruit, 1), "name"), "banana");
	sb_toml_free(root);
}

Test(toml, dotted_keys)
{
	sb_toml_value *root = parse_ok("site . \"google.com\" = true\n"
				       "fruit.apple.color = 'red'\n"
				       "fruit.apple.taste.sweet = true\n"
				       "[fruit.apple.texture]\n"
				       "smooth = true\n");
	const sb_toml_value *site = sb_toml_table_get(root, "site");
	cr_assert(sb_toml_bool(sb_toml_table_get(site, "google.com")));
	const sb_toml_value *apple = sb_toml_table_get(sb_toml_table_get(root, "fruit"), "apple");
	cr_assert_eq(sb_toml_line(apple), 2);
	cr_assert_eq(sb_toml_col(apple), 7);
	cr_assert_eq(sb_toml_table_len(apple), 3);
	cr_assert(sb_toml_bool(sb_toml_table_get(sb_toml_table_get(apple, "texture"), "smooth")));
	sb_toml_free(root);
}

Test(toml, strings)
{
	sb_toml_value *root = parse_ok("basic = \"tab\\there \\\"q\\\" \\\\ \\u00e9 \\U0001F600\"\n"
				       "lit = 'C:\\path\\n'\n"
				       "ml = \"\"\"\n"
				       "line1\n"
				       "  line2 \\\n"
				       "     continued\"\"\"\n"
				       "mll = '''\r\n"
				       "raw \\n ''quoted'' '''\n"
				       "quotes = \"\"\"\"\"x\"\"\"\"\"\n"
				       "nul = \"a\\u0000b\"\n");
	cr_assert_str_eq(str_at(root, "basic"), "tab\there \"q\" \\ \xC3\xA9 \xF0\x9F\x98\x80");
	cr_assert_str_eq(str_at(root, "lit"), "C:\\path\\n");
	cr_assert_str_eq(str_at(root, "ml"), "line1\n  line2 continued");
	cr_assert_str_eq(str_at(root, "mll"), "raw \\n ''quoted'' ");
	cr_assert_str_eq(str_at(root, "quotes"), "\"\"x\"\"");
	size_t n;
	const char *s = sb_toml_string(sb_toml_table_get(root, "nul"), &n);
	cr_assert_eq(n, 3);
	cr_assert(memcmp(s, "a\0b", 3) == 0);
	sb_toml_free(root);
}

Test(toml, escapes_1_1)
{
	sb_toml_value *root = parse_ok("esc = \"\\e[0m\"\n"
				       "hex = \"\\x41\\x7f\\xe9\\x00!\"\n"
				       "ml = \"\"\"\\x20\\e\"\"\"\n");
	cr_assert_str_eq(str_at(root, "esc"), "\x1b[0m");
	size_t n;
	const char *s = sb_toml_string(sb_toml_table_get(root, "hex"), &n);
	cr_assert_eq(n, 6);
	cr_assert(memcmp(s, "A\x7f\xC3\xA9\0!", 6) == 0); /* \xHH is U+00HH */
	cr_assert_str_eq(str_at(root, "ml"), " \x1b");
	sb_toml_free(root);
	ASSERT_ERR("a = \"\\x4\"\n", 1, 6, "expected 2 hexadecimal digits");
	ASSERT_ERR("a = \"\\xg0\"\n", 1, 6, "invalid escape '\\x'");
	ASSERT_ERR("a = 'ok'\nb = \"\\q\"\n", 2, 6, "invalid escape '\\q'");
	ASSERT_ERR("a = \"\\uD800\"\n", 1, 6, "not a Unicode scalar value");
	ASSERT_ERR("a = \"\\U00110000\"\n", 1, 6, "not a Unicode scalar value");
}

Test(toml, datetimes)
{
	sb_toml_value *root = parse_ok("odt = 1979-05-27T07:32:00Z\n"
				       "odt2 = 1979-05-27 00:32:00.999999-07:00\n"
				       "odt3 = 1979-05-27t07:32:00.5z\n"
				       "ldt = 1979-05-27T07:32:00\n"
				       "ld = 1979-05-27\n"
				       "lt = 00:32:00.25\n"
				       "leap = 2000-02-29\n");
	cr_assert_str_eq(dt_at(root, "odt", SB_TOML_DATETIME), "1979-05-27T07:32:00Z");
	cr_assert_str_eq(dt_at(root, "odt2", SB_TOML_DATETIME), "1979-05-27T00:32:00.999999-07:00");
	cr_assert_str_eq(dt_at(root, "odt3", SB_TOML_DATETIME), "1979-05-27T07:32:00.5Z");
	cr_assert_str_eq(dt_at(root, "ldt", SB_TOML_DATETIME_LOCAL), "1979-05-27T07:32:00");
	cr_assert_str_eq(dt_at(root, "ld", SB_TOML_DATE_LOCAL), "1979-05-27");
	cr_assert_str_eq(dt_at(root, "lt", SB_TOML_TIME_LOCAL), "00:32:00.25");
	cr_assert_str_eq(dt_at(root, "leap", SB_TOML_DATE_LOCAL), "2000-02-29");
	sb_toml_free(root);
	ASSERT_ERR("d = 2001-02-29\n", 1, 13, "day 29 out of range");
	ASSERT_ERR("d = 2001-13-01\n", 1, 10, "month 13 out of range");
	ASSERT_ERR("d = 2001-01-01T24:00:00\n", 1, 16, "hour 24 out of range");
	ASSERT_ERR("d = 2001-01-01T\n", 1, 16, "expected 2-digit hour");
	ASSERT_ERR("d = 12:00:00.\n", 1, 14, "expected digits after '.'");
}

Test(toml, optional_seconds_1_1)
{
	sb_toml_value *root = parse_ok("t = 13:37\n"
				       "dt = 1979-05-27 07:32Z\n"
				       "off = 1979-05-27T07:32-07:00\n"
				       "ldt = 1979-05-27T07:32\n");
	cr_assert_str_eq(dt_at(root, "t", SB_TOML_TIME_LOCAL), "13:37:00");
	cr_assert_str_eq(dt_at(root, "dt", SB_TOML_DATETIME), "1979-05-27T07:32:00Z");
	cr_assert_str_eq(dt_at(root, "off", SB_TOML_DATETIME), "1979-05-27T07:32:00-07:00");
	cr_assert_str_eq(dt_at(root, "ldt", SB_TOML_DATETIME_LOCAL), "1979-05-27T07:32:00");
	sb_toml_free(root);
	ASSERT_ERR("t = 13:37.5\n", 1, 10, "a fraction needs seconds");
}

Test(toml, multiline_inline_tables_1_1)
{
	sb_toml_value *root = parse_ok("tbl = { # comment after the brace\n"
				       "  a = 1, # after a value\n"
				       "\n"
				       "  # a whole-line comment\n"
				       "  nested = {\n"
				       "    x = [1,\n"
				       "         2,],\n"
				       "  },\n"
				       "  b.c = 'dotted',\n"
				       "}\n"
				       "after = { k = 1, }\n");
	const sb_toml_value *t = sb_toml_table_get(root, "tbl");
	cr_assert_eq(sb_toml_type_of(t), SB_TOML_TABLE);
	cr_assert_eq(sb_toml_line(t), 1);
	cr_assert_eq(sb_toml_col(t), 7);
	cr_assert_eq(sb_toml_table_len(t), 3);
	cr_assert_str_eq(sb_toml_table_key(t, 0, NULL), "a");
	cr_assert_str_eq(sb_toml_table_key(t, 1, NULL), "nested");
	cr_assert_str_eq(sb_toml_table_key(t, 2, NULL), "b");
	const sb_toml_value *nested = sb_toml_table_get(t, "nested");
	cr_assert_eq(sb_toml_line(nested), 5);
	cr_assert_eq(sb_toml_col(nested), 12);
	cr_assert_eq(sb_toml_array_len(sb_toml_table_get(nested, "x")), 2);
	cr_assert_str_eq(str_at(sb_toml_table_get(t, "b"), "c"), "dotted");
	cr_assert_eq(sb_toml_int(sb_toml_table_get(sb_toml_table_get(root, "after"), "k")), 1);
	sb_toml_free(root);
	ASSERT_ERR("t = {,}\n", 1, 6, "expected a key");
	ASSERT_ERR("t = {a = 1,,}\n", 1, 12, "expected a key");
	ASSERT_ERR("t = {a = 1\nb = 2}\n", 2, 1, "expected ',' or '}'");
	ASSERT_ERR("t = {a = 1,\n", 2, 1, "expected a key, found end of file");
	ASSERT_ERR("t = {a\n= 1}\n", 1, 7, "expected '=' after key");
}

Test(toml, redefinition_errors)
{
	ASSERT_ERR("a = 1\nb = 2\na = 3\n", 3, 1, "duplicate key 'a' (first defined at 1:1)");
	ASSERT_ERR("[t]\n[u]\n[t]\n", 3, 2, "table 't' already defined at 1:1");
	ASSERT_ERR("a = 1\n[a]\n", 2, 2, "it is already an integer (defined at 1:1)");
	ASSERT_ERR("a.b = 1\n[a]\n", 2, 2, "table 'a' already defined at 1:1");
	ASSERT_ERR("[a.b.c]\nz = 9\n[a]\nb.c.t = 1\n", 4, 3, "cannot add keys to table 'c'");
	ASSERT_ERR("a = {b = 1}\na.c = 2\n", 2, 1, "cannot add keys to inline table 'a'");
	ASSERT_ERR("a = {}\n[a.b]\n", 2, 2, "cannot define a table inside 'a'");
	ASSERT_ERR("a = []\n[[a]]\n", 2, 3, "it is already an array (defined at 1:1)");
	ASSERT_ERR("[[a]]\n[a]\n", 2, 2, "it is already an array of tables");
	ASSERT_ERR("t = {a = 1, a = 2}\n", 1, 13, "duplicate key 'a' (first defined at 1:6)");
	ASSERT_ERR("t = {a = {b = 1}, a.c = 2}\n", 1, 19, "cannot add keys to inline table 'a'");
}

Test(toml, syntax_errors)
{
	ASSERT_ERR("key value\n", 1, 5, "expected '=' after key");
	ASSERT_ERR("x = 1\ny = # nothing\n", 2, 5, "expected a value");
	ASSERT_ERR("a = 1 b = 2\n", 1, 7, "expected newline after value");
	ASSERT_ERR("a = [1 2]\n", 1, 8, "expected ',' or ']'");
	ASSERT_ERR("a = 01\n", 1, 5, "leading zeros");
	ASSERT_ERR("a = 1__0\n", 1, 6, "'_' must be between two digits");
	ASSERT_ERR("a = 9223372036854775808\n", 1, 5, "integer out of range");
	ASSERT_ERR("a = 0x8000000000000000\n", 1, 5, "integer out of range");
	ASSERT_ERR("a = 1.\n", 1, 7, "expected a digit");
	ASSERT_ERR("a = tru\n", 1, 5, "expected a value");
	ASSERT_ERR("a = \"open\nb = 1\n", 1, 10, "unterminated string");
	ASSERT_ERR("a = \"\"\"open\n", 2, 1, "unterminated multi-line string");
	ASSERT_ERR("[a\n", 1, 3, "expected ']' to close the table header");
	ASSERT_ERR("[[a]\n", 1, 5, "expected ']]'");
	ASSERT_ERR("\"\"\"k\"\"\" = 1\n", 1, 1, "multi-line strings cannot be used as keys");
	ASSERT_ERR("a..b = 1\n", 1, 3, "expected a key");
}

Test(toml, control_characters_and_encoding)
{
	ASSERT_ERR("s = \"a\x07\"\n", 1, 7, "control character U+0007 not allowed in string");
	ASSERT_ERR("s = 'a\x7f'\n", 1, 7, "control character U+007F not allowed in literal string");
	ASSERT_ERR("# x\x01\n", 1, 4, "control character U+0001 not allowed in comment");
	ASSERT_ERR("a = 1\r\nb = 2\r", 2, 6, "carriage return");
	ASSERT_ERR("s = \"\"\"a\rb\"\"\"\n", 1, 9, "carriage return");
	ASSERT_ERR("s = \"\xC0\xAF\"\n", 1, 6, "invalid UTF-8");     /* overlong '/' */
	ASSERT_ERR("s = \"\xED\xA0\x80\"\n", 1, 6, "invalid UTF-8"); /* surrogate */
	ASSERT_ERR("s = \"\xF4\x90\x80\x80\"\n", 1, 6, "invalid UTF-8");
	ASSERT_ERR("s = \"\xE2\x82\"\n", 1, 6, "invalid UTF-8"); /* truncated */
	ASSERT_ERR("\xE3\x80\x80k = 1\n", 1, 1, "U+3000");
	sb_diag d = parse_err_n("s = \"a\0\"\n", 9);
	cr_expect_eq(d.col, 7);
	cr_expect(strstr(d.msg, "U+0000") != NULL, "%s", d.msg);
}

Test(toml, crlf_bom_and_empty)
{
	sb_toml_value *root = parse_ok("\xEF\xBB\xBF"
				       "a = 1\r\n"
				       "s = \"\"\"x\r\ny\"\"\"\r\n"
				       "# comment\r\n");
	cr_assert_eq(sb_toml_line(sb_toml_table_get(root, "a")), 1);
	cr_assert_eq(sb_toml_col(sb_toml_table_get(root, "a")), 5); /* the BOM is not counted */
	cr_assert_str_eq(str_at(root, "s"), "x\ny");
	sb_toml_free(root);
	root = parse_ok("");
	cr_assert_eq(sb_toml_table_len(root), 0);
	sb_toml_free(root);
	sb_toml_free(NULL);
}

Test(toml, nesting_is_capped)
{
	sb_buf b;
	sb_buf_init(&b);
	sb_buf_adds(&b, "a = ");
	for (int i = 0; i < 1000; i++)
		sb_buf_addc(&b, '[');
	sb_diag d = parse_err(b.data);
	cr_expect(strstr(d.msg, "nesting too deep") != NULL, "%s", d.msg);
	cr_expect_eq(d.line, 1);
	cr_expect_eq(d.col, 5 + 128);
	sb_buf_reset(&b);
	for (int i = 0; i < 300; i++)
		sb_buf_adds(&b, "k.");
	sb_buf_adds(&b, "k = 1\n");
	d = parse_err(b.data);
	cr_expect(strstr(d.msg, "too many parts") != NULL, "%s", d.msg);
	/* 100 levels is fine */
	sb_buf_reset(&b);
	sb_buf_adds(&b, "a = ");
	for (int i = 0; i < 100; i++)
		sb_buf_adds(&b, "{b = ");
	sb_buf_adds(&b, "1");
	for (int i = 0; i < 100; i++)
		sb_buf_addc(&b, '}');
	sb_toml_value *root = parse_ok(b.data);
	const sb_toml_value *v = sb_toml_table_get(root, "a");
	for (int i = 0; i < 100; i++)
		v = sb_toml_table_get(v, "b");
	cr_assert_eq(sb_toml_int(v), 1);
	sb_toml_free(root);
	sb_buf_free(&b);
}

Test(toml, hostile_inputs_do_not_crash)
{
	static const char *const docs[] = {
	    "[",
	    "[[",
	    "{",
	    "a=",
	    "a=[",
	    "a={",
	    "a=\"",
	    "a='''",
	    "a=\"\\",
	    "a=1e",
	    "a=0x",
	    "a=+",
	    "a=-i",
	    "a=12:",
	    "a=2000-",
	    "a=2000-01-01T",
	    "=",
	    "\"",
	    "a.=1",
	    "[a.]",
	    "[[a]]]",
	    "a={b=1,",
	    "a=[1,,]",
	    "\xFF",
	    "a=\"\\U",
	    "a=\"\\x",
	    "a=\"\"\"\\",
	    "a=\"\"\"\\  ",
	    "a=2000-01-01 ",
	    "a=00:00:00.",
	    "\r",
	    "a\t=\t1\t\r",
	};
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		sb_toml_value *root = NULL;
		sb_diag d = {0};
		int r = sb_toml_parse(docs[i], strlen(docs[i]), "h", &root, &d);
		if (r == 0)
			sb_toml_free(root);
		else
			cr_expect(d.line > 0 && d.col > 0, "no position for doc %zu", i);
	}
	/* length is honoured: nothing is read past len */
	sb_toml_value *root = NULL;
	sb_diag d = {0};
	cr_assert_eq(sb_toml_parse("a = 1 junk", 5, "h", &root, &d), 0);
	cr_assert_eq(sb_toml_int(sb_toml_table_get(root, "a")), 1);
	sb_toml_free(root);
}

/* ---- JSON with comments (wrangler.json, wrangler.jsonc) ---------------- */

static sb_toml_value *jsonc_ok(const char *text)
{
	return read_ok(sb_toml_parse_jsonc, "w.jsonc", text);
}

#define ASSERT_JERR(text, l, c, substr)                                                            \
	ASSERT_DIAG(read_err(sb_toml_parse_jsonc, "w.jsonc", text, strlen(text)), l, c, substr)

Test(toml, jsonc_values_comments_and_trailing_commas)
{
	sb_toml_value *root =
	    jsonc_ok("\xEF\xBB\xBF// wrangler.jsonc\n"
		     "{\n"
		     "  \"name\": \"w\", /* inline */\n"
		     "  \"n\": -42, \"f\": 1.5e3, \"z\": 0, \"t\": true, \"no\": false,\n"
		     "  \"esc\": \"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\\u0000x\",\n"
		     "  \"routes\": [{ \"pattern\": \"w.example.com/*\", }, \"x\",],\n"
		     "  \"env\": { \"staging\": { \"vars\": {} } },\n"
		     "}\n");
	cr_assert_str_eq(str_at(root, "name"), "w");
	cr_assert_eq(sb_toml_int(sb_toml_table_get(root, "n")), -42);
	cr_assert_eq(sb_toml_int(sb_toml_table_get(root, "z")), 0);
	cr_assert_float_eq(sb_toml_float(sb_toml_table_get(root, "f")), 1500.0, 1e-9);
	cr_assert(sb_toml_bool(sb_toml_table_get(root, "t")));
	cr_assert_not(sb_toml_bool(sb_toml_table_get(root, "no")));
	size_t n;
	const char *e = sb_toml_string(sb_toml_table_get(root, "esc"), &n);
	static const char want[] = "a\"\\/\b\f\n\r\t\xC3\xA9\xF0\x9F\x98\x80\0x";
	cr_assert_eq(n, sizeof(want) - 1);
	cr_assert(memcmp(e, want, n) == 0);
	const sb_toml_value *routes = sb_toml_table_get(root, "routes");
	cr_assert_eq(sb_toml_type_of(routes), SB_TOML_ARRAY);
	cr_assert_eq(sb_toml_array_len(routes), 2);
	const sb_toml_value *r0 = sb_toml_array_at(routes, 0);
	cr_assert_eq(sb_toml_type_of(r0), SB_TOML_TABLE);
	cr_assert_str_eq(str_at(r0, "pattern"), "w.example.com/*");
	/* positions as for TOML: the BOM is not a column */
	cr_assert_eq(sb_toml_line(r0), 6);
	cr_assert_eq(sb_toml_col(r0), 14);
	cr_assert_eq(sb_toml_type_of(sb_toml_table_get(sb_toml_table_get(root, "env"), "staging")),
		     SB_TOML_TABLE);
	sb_toml_free(root);
}

Test(toml, jsonc_errors_say_where)
{
	ASSERT_JERR("{\"name\": \"w\",\n \"x\": null}", 2, 7, "null is not supported");
	ASSERT_JERR("{\"name\": \"w\",\n \"name\": \"v\"}", 2, 2, "duplicate key 'name'");
	ASSERT_JERR("{\"a\": 1 \"b\": 2}", 1, 9, "expected ',' or '}'");
	ASSERT_JERR("[1, 2]", 1, 1, "expected '{'");
	ASSERT_JERR("{} x", 1, 4, "after the object");
	ASSERT_JERR("{\"a\": \"x\ny\"}", 1, 9, "not allowed in a string");
	ASSERT_JERR("{\"a\": \"\\ud800\"}", 1, 8, "without its pair");
	ASSERT_JERR("{\"a\": \"\\udc00\"}", 1, 8, "lone low surrogate");
	ASSERT_JERR("{\"a\": \"\\q\"}", 1, 8, "invalid escape");
	ASSERT_JERR("{\"a\": 01}", 1, 8, "expected ',' or '}'");
	ASSERT_JERR("{\"a\": 1.}", 1, 9, "after '.'");
	ASSERT_JERR("{\"a\": 99999999999999999999}", 1, 7, "out of range");
	ASSERT_JERR("{\"a\": 1 /* open", 1, 9, "unterminated comment");
	ASSERT_JERR("{a: 1}", 1, 2, "member name in double quotes");
	ASSERT_JERR("{\"a\": tru}", 1, 7, "expected a value");
	ASSERT_JERR("{\"a\": \"\xff\"}", 1, 8, "invalid UTF-8");
	ASSERT_JERR("{\"a\": \"x", 1, 7, "unterminated string");
	ASSERT_JERR("{\"a\": \"x\\", 1, 7, "unterminated string");
}
