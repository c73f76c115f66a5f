/* Fuzz target: the TOML and JSONC parsers (src/config/toml.c) on any bytes. A parse
 * either gives a tree or an error with a position; the tree is walked so
 * that every value accessor runs on what the parser built. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/toml.h"

static size_t walk(const sb_toml_value *v)
{
	size_t n = 1;
	switch (sb_toml_type_of(v)) {
	case SB_TOML_TABLE:
		for (size_t i = 0; i < sb_toml_table_len(v); i++) {
			size_t kl;
			const char *k = sb_toml_table_key(v, i, &kl);
			if (!k || k[kl] != '\0')
				abort(); /* keys are NUL-terminated at their length */
			n += walk(sb_toml_table_value(v, i));
		}
		break;
	case SB_TOML_ARRAY:
		for (size_t i = 0; i < sb_toml_array_len(v); i++)
			n += walk(sb_toml_array_at(v, i));
		break;
	case SB_TOML_STRING: {
		size_t sl;
		const char *s = sb_toml_string(v, &sl);
		if (!s || s[sl] != '\0')
			abort();
		break;
	}
	default: break;
	}
	return n;
}

static void parse_one(int (*parse)(const char *, size_t, const char *, sb_toml_value **, sb_diag *),
		      const uint8_t *data, size_t size)
{
	sb_toml_value *root = NULL;
	sb_diag d = {0};
	int rc = parse((const char *)data, size, "fuzz.toml", &root, &d);
	if (rc == 0) {
		if (!root || sb_toml_type_of(root) != SB_TOML_TABLE)
			abort();
		walk(root);
	} else if (root || d.line < 1) {
		abort(); /* a failed parse leaves no tree and says where */
	}
	sb_toml_free(root);
}

/* The same bytes through both readers: TOML, and JSON with comments
 * (wrangler.jsonc), which builds the same tree. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	parse_one(sb_toml_parse, data, size);
	parse_one(sb_toml_parse_jsonc, data, size);
	return 0;
}
