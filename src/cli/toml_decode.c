/*
 * toml-decode: the toml-test decoder interface over src/config/toml.c.
 *
 *   toml-decode [FILE]
 *
 * Reads TOML from FILE or standard input and prints the tagged JSON of
 * toml-test on standard output (exit 0). On invalid input prints one line
 * "file:line:col: message" on standard error and exits 1 ("<stdin>" names
 * standard input). Usage and I/O errors exit 2.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sb.h"
#include "config/toml.h"

static void put_scalar(sb_buf *out, const char *type, const char *text, size_t len)
{
	sb_buf_adds(out, "{\"type\": \"");
	sb_buf_adds(out, type);
	sb_buf_adds(out, "\", \"value\": ");
	sb_buf_add_json_str(out, text, len);
	sb_buf_addc(out, '}');
}

/* Shortest "%.Ng" that reads back as the same double. */
static void format_float(double f, char *buf, size_t size)
{
	if (isnan(f)) {
		snprintf(buf, size, "nan");
		return;
	}
	if (isinf(f)) {
		snprintf(buf, size, "%s", f < 0 ? "-inf" : "inf");
		return;
	}
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, size, "%.*g", prec, f);
		if (strtod(buf, NULL) == f)
			return;
	}
}

/* Depth is bounded by the parser (nesting limit), so recursion is safe. */
static void put_value(sb_buf *out, const sb_toml_value *v)
{
	char num[64];
	size_t len;
	const char *s;
	sb_toml_type t = sb_toml_type_of(v);
	switch (t) {
	case SB_TOML_TABLE:
		sb_buf_addc(out, '{');
		for (size_t i = 0; i < sb_toml_table_len(v); i++) {
			if (i)
				sb_buf_add(out, ", ", 2);
			s = sb_toml_table_key(v, i, &len);
			sb_buf_add_json_str(out, s, len);
			sb_buf_add(out, ": ", 2);
			put_value(out, sb_toml_table_value(v, i));
		}
		sb_buf_addc(out, '}');
		break;
	case SB_TOML_ARRAY:
		sb_buf_addc(out, '[');
		for (size_t i = 0; i < sb_toml_array_len(v); i++) {
			if (i)
				sb_buf_add(out, ", ", 2);
			put_value(out, sb_toml_array_at(v, i));
		}
		sb_buf_addc(out, ']');
		break;
	case SB_TOML_STRING:
		s = sb_toml_string(v, &len);
		put_scalar(out, "string", s, len);
		break;
	case SB_TOML_INTEGER:
		snprintf(num, sizeof(num), "%" PRId64, sb_toml_int(v));
		put_scalar(out, "integer", num, strlen(num));
		break;
	case SB_TOML_FLOAT:
		format_float(sb_toml_float(v), num, sizeof(num));
		put_scalar(out, "float", num, strlen(num));
		break;
	case SB_TOML_BOOL:
		s = sb_toml_bool(v) ? "true" : "false";
		put_scalar(out, "bool", s, strlen(s));
		break;
	case SB_TOML_DATETIME:
	case SB_TOML_DATETIME_LOCAL:
	case SB_TOML_DATE_LOCAL:
	case SB_TOML_TIME_LOCAL:
		s = sb_toml_datetime(v);
		put_scalar(out, sb_toml_type_name(t), s, strlen(s));
		break;
	}
}

static int read_stdin(sb_buf *b)
{
	char chunk[16384];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		sb_buf_add(b, chunk, n);
	return ferror(stdin) ? -1 : 0;
}

int main(int argc, char **argv)
{
	int status = 2;
	const char *name = "<stdin>";
	char *text = NULL;
	size_t len = 0;
	sb_toml_value *root = NULL;
	sb_diag d = {0};
	char msg[sizeof(d.file) + sizeof(d.msg) + 32];
	sb_buf out;
	sb_buf_init(&out);

	if (argc > 2 || (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))) {
		fprintf(stderr, "usage: toml-decode [FILE]\n");
		goto out;
	}
	if (argc == 2) {
		name = argv[1];
		if (sb_file_read(name, &text, &len, &d) != 0) {
			fprintf(stderr, "toml-decode: %s\n", sb_diag_format(&d, msg, sizeof(msg)));
			goto out;
		}
	} else {
		sb_buf in;
		sb_buf_init(&in);
		if (read_stdin(&in) != 0) {
			fprintf(stderr, "toml-decode: <stdin>: read failed\n");
			sb_buf_free(&in);
			goto out;
		}
		len = in.len;
		text = sb_buf_steal(&in);
	}
	if (sb_toml_parse(text, len, name, &root, &d) != 0) {
		fprintf(stderr, "%s\n", sb_diag_format(&d, msg, sizeof(msg)));
		status = 1;
		goto out;
	}
	put_value(&out, root);
	sb_buf_addc(&out, '\n');
	if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0) {
		fprintf(stderr, "toml-decode: write failed\n");
		goto out;
	}
	status = 0;
out:
	sb_toml_free(root);
	sb_buf_free(&out);
	free(text);
	return status;
}
