/*
 * Compares the kernel-side and ioasid-side ABI tables entry by entry.
 * Exit status 0 only if every size, offset, signedness and value matches.
 */
#include <stdio.h>
#include <string.h>

#include "abi_entry.h"

static int is_macro(const struct abi_entry *e)
{
	return strcmp(e->token, e->expansion) != 0;
}

int main(void)
{
	const size_t n = abi_table_kernel_count;
	size_t i, checked = 0, bad = 0;
	size_t per_kind[5] = { 0, 0, 0, 0, 0 };
	static const char kinds[] = "SFECT";

	if (n == 0 || abi_table_ours_count != n) {
		printf("abi-layout: table sizes differ or are empty "
		       "(kernel %zu, ours %zu)\n", n, abi_table_ours_count);
		return 1;
	}

	for (i = 0; i < n; i++) {
		const struct abi_entry *k = &abi_table_kernel[i];
		const struct abi_entry *o = &abi_table_ours[i];
		const char *kp = strchr(kinds, k->kind);

		if (kp != NULL)
			per_kind[kp - kinds]++;
		if (strcmp(k->name, o->name) != 0) {
			/* Both come from one .def: a build setup problem. */
			printf("MISMATCH entry %zu: names differ: %s / %s\n",
			       i, k->name, o->name);
			bad++;
			continue;
		}
		checked++;
		if (k->value != o->value) {
			printf("MISMATCH %s: kernel %llu (0x%llx), ours %llu (0x%llx)\n",
			       k->name, k->value, k->value, o->value, o->value);
			bad++;
		}
		if (k->token != NULL) {
			checked++;
			if (is_macro(k) != is_macro(o)) {
				printf("MISMATCH %s: kernel makes it %s, ours %s\n",
				       k->name,
				       is_macro(k) ? "a macro" : "an enumerator",
				       is_macro(o) ? "a macro" : "an enumerator");
				bad++;
			}
		}
	}

	printf("abi-layout (%s): %zu checks over %zu entries "
	       "[struct %zu, field %zu, enum-size %zu, constant %zu, "
	       "c++-enum-type %zu], %zu mismatch(es)\n",
#ifdef ABI_LANG
	       ABI_LANG,
#else
	       "?",
#endif
	       checked, n, per_kind[0], per_kind[1], per_kind[2], per_kind[3],
	       per_kind[4], bad);
	return bad == 0 ? 0 : 1;
}
