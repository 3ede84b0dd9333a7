/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers of the integration test programs.
 *
 * The programs are plain C11 against the kernel's own <linux/iommufd.h>
 * (extracted from the linux-source tarball, see include/linux/meson.build):
 * they open the device named by $IOASID_TEST_DEVICE (default /dev/iommu)
 * and use open/ioctl/close exactly as a program on a kernel with iommufd
 * would. Under the harness the preload shim makes those calls reach ioasidd.
 *
 * Every check prints what failed (file:line, the expression, expected and
 * actual values, errno names) and counts as a failure; the program exits
 * 0 when nothing failed, 1 otherwise, 77 to skip.
 */
#ifndef IOASID_IT_COMMON_H
#define IOASID_IT_COMMON_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/iommufd.h>

#define IT_SKIP 77
/* it_init() arms alarm() with this; a program may re-arm it. */
#define IT_WATCHDOG_SECONDS 100
#define IT_PAGE 4096ul

/* Failures so far in this process. */
extern int it_failures;
/* Name of this program (set by it_init) and a role for messages ("child"). */
extern const char *it_prog;
extern char it_role[32];

void it_init(int argc, char **argv);
/* Exit status for the end of main(): 0 when nothing failed. */
int it_finish(void);
void it_set_role(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void it_fail_at(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void it_fatal_at(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));
void it_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *it_errname(int err);

#define IT_FAIL(...) it_fail_at(__FILE__, __LINE__, __VA_ARGS__)
#define IT_FATAL(...) it_fatal_at(__FILE__, __LINE__, __VA_ARGS__)

/* `expr` is a call returning 0 / -1 with errno. */
#define EXPECT_OK(expr)                                                        \
	__extension__({                                                        \
		errno = 0;                                                     \
		long it_rc_ = (long)(expr);                                    \
		int it_err_ = errno;                                           \
		if (it_rc_ != 0)                                               \
			IT_FAIL("%s: expected success, got %ld (errno %s)",    \
				#expr, it_rc_, it_errname(it_err_));           \
		it_rc_ == 0;                                                   \
	})

#define ASSERT_OK(expr)                                                        \
	do {                                                                   \
		errno = 0;                                                     \
		long it_rc_ = (long)(expr);                                    \
		int it_err_ = errno;                                           \
		if (it_rc_ != 0)                                               \
			IT_FATAL("%s: expected success, got %ld (errno %s)",   \
				 #expr, it_rc_, it_errname(it_err_));          \
	} while (0)

#define EXPECT_ERRNO(err, expr)                                                \
	__extension__({                                                        \
		errno = 0;                                                     \
		long it_rc_ = (long)(expr);                                    \
		int it_err_ = errno;                                           \
		bool it_ok_ = it_rc_ == -1 && it_err_ == (err);                \
		if (!it_ok_)                                                   \
			IT_FAIL("%s: expected -1/%s, got %ld (errno %s)",      \
				#expr, it_errname(err), it_rc_,                \
				it_rc_ == -1 ? it_errname(it_err_) : "-");     \
		it_ok_;                                                        \
	})

#define EXPECT_EQ(expected, actual)                                            \
	__extension__({                                                        \
		unsigned long long it_e_ = (unsigned long long)(expected);     \
		unsigned long long it_a_ = (unsigned long long)(actual);       \
		if (it_e_ != it_a_)                                            \
			IT_FAIL("%s == %s: expected %#llx (%llu), got %#llx (%llu)", \
				#expected, #actual, it_e_, it_e_, it_a_, it_a_); \
		it_e_ == it_a_;                                                \
	})

#define EXPECT_TRUE(cond)                                                      \
	__extension__({                                                        \
		bool it_c_ = (cond);                                           \
		if (!it_c_)                                                    \
			IT_FAIL("expected: %s", #cond);                        \
		it_c_;                                                         \
	})

/* --- the device ---------------------------------------------------------- */

const char *it_device(void);
/* open(it_device(), O_RDWR | extra_flags); fatal on failure. */
int it_open(int extra_flags);

/* --- ioctl wrappers: 0 or -1/errno, like ioctl(2) ------------------------ */

int it_ioas_alloc(int fd, uint32_t *id);
int it_destroy(int fd, uint32_t id);
int it_map(int fd, uint32_t ioas, uint32_t flags, const void *va, uint64_t length,
	   uint64_t *iova);
/* Fixed-IOVA read/write map. */
int it_map_fixed(int fd, uint32_t ioas, const void *va, uint64_t length, uint64_t iova);
int it_unmap(int fd, uint32_t ioas, uint64_t iova, uint64_t length, uint64_t *unmapped);
int it_copy(int fd, uint32_t flags, uint32_t dst_ioas, uint32_t src_ioas, uint64_t length,
	    uint64_t *dst_iova, uint64_t src_iova);
int it_option(int fd, uint32_t option_id, uint16_t op, uint32_t object_id, uint64_t *val64);

/* mmap()ed anonymous memory, touched; fatal on failure. */
void *it_buffer(size_t length);

/* Fatal allocation helpers, for setup steps. */
uint32_t it_must_alloc(int fd);

/* --- IOASID_EMU_STATUS ---------------------------------------------------- */

/* The daemon's JSON report (malloc'ed) or NULL with errno. all = flag
 * IOASID_STATUS_ALL. */
char *it_status(int fd, bool all);

/* A small JSON tree, enough to read the status report. */
enum it_json_type { IT_JSON_NULL, IT_JSON_BOOL, IT_JSON_NUMBER, IT_JSON_STRING,
		    IT_JSON_ARRAY, IT_JSON_OBJECT };
struct it_json {
	enum it_json_type type;
	bool boolean;
	double number;
	char *string;        /* STRING: value; members: key */
	size_t count;        /* ARRAY/OBJECT: number of items */
	struct it_json **items;
	char **keys;         /* OBJECT: key of each item */
};

struct it_json *it_json_parse(const char *text);
void it_json_free(struct it_json *value);
const struct it_json *it_json_get(const struct it_json *object, const char *key);
/* Number member as int64, or `fallback` when absent / not a number. */
long long it_json_int(const struct it_json *object, const char *key, long long fallback);

/* The status report, parsed; NULL (and a failure printed) on error. */
struct it_json *it_status_json(int fd, bool all);
/* contexts[] of a report, or NULL. */
const struct it_json *it_status_contexts(const struct it_json *report);
/* The context of a report whose "id" is `id`, or NULL. */
const struct it_json *it_status_context_by_id(const struct it_json *report, long long id);
/* The first context listing `pid` in its "pids", or NULL. */
const struct it_json *it_status_context_by_pid(const struct it_json *report, pid_t pid);
/* Waits, in 10 ms naps up to `naps` times, until the report seen through
 * `observer_fd` no longer lists context `ctx`. A bound against hangs, not a
 * timing assertion. */
bool it_wait_context_gone(int observer_fd, long long ctx, int naps);
/* The id of the context behind `fd` (from a report without the ALL flag),
 * or -1 with a failure printed. */
long long it_context_id(int fd);

/* --- processes ------------------------------------------------------------ */

/* A pipe used as a one-shot event between processes. */
struct it_event {
	int rd, wr;
};
void it_event_init(struct it_event *ev);
void it_event_signal(struct it_event *ev, uint64_t value);
/* Waits (bounded by `seconds`) for a value; fatal on timeout or EOF. */
uint64_t it_event_wait(struct it_event *ev, int seconds);
void it_event_close(struct it_event *ev);

/* Waits for `pid` and returns its exit status (0..255), 128+signal when
 * killed. Bounded by `seconds`: a child that does not end is killed and
 * counts as a failure. */
int it_wait_child(pid_t pid, int seconds);

/* Capability check on this process (effective set). */
bool it_has_cap(int cap);

#endif /* IOASID_IT_COMMON_H */
