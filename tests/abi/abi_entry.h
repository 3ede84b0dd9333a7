/* One checked fact about the iommufd uAPI, as produced by abi_table.inc. */
#ifndef IOASID_TESTS_ABI_ENTRY_H
#define IOASID_TESTS_ABI_ENTRY_H

#include <stddef.h>

struct abi_entry {
	char kind;		/* 'S' struct, 'F' field, 'E' enum type,
				   'C' constant, 'T' C++ enumerator type */
	const char *name;	/* identical in both tables: same .def */
	unsigned long long value;
	/* Constants only: the identifier and what the preprocessor turned it
	   into. They differ exactly when the identifier is a macro, which
	   matters to callers who test it with #ifdef. */
	const char *token;
	const char *expansion;
};

#ifdef __cplusplus
extern "C" {
#endif

/* Tables are built from separate objects, so neither header can leak into
   the other's translation unit. */
extern const struct abi_entry abi_table_ours[];
extern const size_t abi_table_ours_count;
extern const struct abi_entry abi_table_kernel[];
extern const size_t abi_table_kernel_count;

#ifdef __cplusplus
}
#endif

#endif
