/*
 * Runs a fuzz target over files, without libFuzzer: `make check` builds each
 * target with gcc and ASan+UBSan against this main and replays the committed
 * corpus (tests/fuzz/corpus/<target>/), so an input that once crashed stays
 * a test. `make fuzz` links the same targets with clang's libFuzzer instead.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
	int rc = 0;
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		if (!f) {
			perror(argv[i]);
			rc = 1;
			continue;
		}
		uint8_t *buf = NULL;
		size_t len = 0, cap = 0;
		for (;;) {
			if (len == cap) {
				cap = cap ? cap * 2 : 4096;
				buf = realloc(buf, cap);
				if (!buf)
					abort();
			}
			size_t n = fread(buf + len, 1, cap - len, f);
			if (n == 0)
				break;
			len += n;
		}
		fclose(f);
		/* an exact-size copy, so that ASan sees a read one past the end */
		uint8_t *data = malloc(len ? len : 1);
		if (!data)
			abort();
		for (size_t j = 0; j < len; j++)
			data[j] = buf[j];
		free(buf);
		LLVMFuzzerTestOneInput(data, len);
		free(data);
	}
	if (!rc)
		printf("%d inputs ran\n", argc - 1);
	return rc;
}
