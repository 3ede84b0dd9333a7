/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "it_common.h"

#include <ioasid/emu.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int it_failures;
const char *it_prog = "it";
char it_role[32];

static void watchdog(int sig)
{
	(void)sig;
	char msg[160];
	int n = snprintf(msg, sizeof(msg), "%s [pid %d] FAIL: watchdog: still running after %d s\n",
			 it_prog, (int)getpid(), IT_WATCHDOG_SECONDS);
	if (n > 0)
		(void)!write(2, msg, (size_t)n);
	_exit(1);
}

void it_init(int argc, char **argv)
{
	(void)argc;
	if (argv && argv[0]) {
		const char *slash = strrchr(argv[0], '/');
		it_prog = slash ? slash + 1 : argv[0];
	}
	/* Output of several processes interleaves: line at a time. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	setvbuf(stderr, NULL, _IOLBF, 0);
	/* A hang guard, well inside meson's timeout, so that a hung call
	 * ends the program with a message rather than a bare TIMEOUT. */
	signal(SIGALRM, watchdog);
	alarm(IT_WATCHDOG_SECONDS);
}

int it_finish(void)
{
	if (it_failures) {
		fprintf(stderr, "%s%s%s: %d failure(s)\n", it_prog, it_role[0] ? " " : "", it_role,
			it_failures);
		return 1;
	}
	printf("%s%s%s: ok\n", it_prog, it_role[0] ? " " : "", it_role);
	return 0;
}

void it_set_role(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(it_role, sizeof(it_role), fmt, ap);
	va_end(ap);
}

static void vreport(const char *what, const char *file, int line, const char *fmt, va_list ap)
{
	char msg[1024];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	fprintf(stderr, "%s%s%s [pid %d] %s %s:%d: %s\n", it_prog, it_role[0] ? " " : "", it_role,
		(int)getpid(), what, file, line, msg);
}

void it_fail_at(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport("FAIL", file, line, fmt, ap);
	va_end(ap);
	it_failures++;
}

void it_fatal_at(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport("FATAL", file, line, fmt, ap);
	va_end(ap);
	it_failures++;
	exit(it_finish());
}

void it_log(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printf("%s%s%s: %s\n", it_prog, it_role[0] ? " " : "", it_role, msg);
}

const char *it_errname(int err)
{
	static __thread char other[32];
	switch (err) {
#define E(x) case x: return #x
	E(0); E(EPERM); E(ENOENT); E(ESRCH); E(EINTR); E(EIO); E(ENXIO); E(E2BIG);
	E(EBADF); E(ECHILD); E(EAGAIN); E(ENOMEM); E(EACCES); E(EFAULT); E(EBUSY);
	E(EEXIST); E(ENODEV); E(EINVAL); E(ENOSPC); E(ENOTTY); E(ERANGE); E(EDEADLK);
	E(ENOSYS); E(EOVERFLOW); E(EBADFD); E(EMSGSIZE); E(EPROTO); E(EOPNOTSUPP);
	E(EADDRINUSE); E(ECONNRESET); E(ENOTCONN); E(ECONNREFUSED); E(ETIMEDOUT);
	E(EPIPE); E(ENOTSOCK);
#undef E
	default:
		snprintf(other, sizeof(other), "errno %d", err);
		return other;
	}
}

/* --- the device ---------------------------------------------------------- */

const char *it_device(void)
{
	const char *dev = getenv("IOASID_TEST_DEVICE");
	return dev && *dev ? dev : "/dev/iommu";
}

int it_open(int extra_flags)
{
	int fd = open(it_device(), O_RDWR | extra_flags);
	if (fd < 0)
		IT_FATAL("open(%s): %s", it_device(), it_errname(errno));
	return fd;
}

/* --- ioctl wrappers -------------------------------------------------------- */

int it_ioas_alloc(int fd, uint32_t *id)
{
	struct iommu_ioas_alloc cmd = { .size = sizeof(cmd) };
	int rc = ioctl(fd, IOMMU_IOAS_ALLOC, &cmd);
	if (rc == 0 && id)
		*id = cmd.out_ioas_id;
	return rc;
}

int it_destroy(int fd, uint32_t id)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd), .id = id };
	return ioctl(fd, IOMMU_DESTROY, &cmd);
}

int it_map(int fd, uint32_t ioas, uint32_t flags, const void *va, uint64_t length, uint64_t *iova)
{
	struct iommu_ioas_map cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.ioas_id = ioas,
		.user_va = (uintptr_t)va,
		.length = length,
		.iova = iova ? *iova : 0,
	};
	int rc = ioctl(fd, IOMMU_IOAS_MAP, &cmd);
	if (rc == 0 && iova)
		*iova = cmd.iova;
	return rc;
}

int it_map_fixed(int fd, uint32_t ioas, const void *va, uint64_t length, uint64_t iova)
{
	return it_map(fd, ioas,
		      IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			      IOMMU_IOAS_MAP_WRITEABLE,
		      va, length, &iova);
}

int it_unmap(int fd, uint32_t ioas, uint64_t iova, uint64_t length, uint64_t *unmapped)
{
	struct iommu_ioas_unmap cmd = {
		.size = sizeof(cmd), .ioas_id = ioas, .iova = iova, .length = length,
	};
	int rc = ioctl(fd, IOMMU_IOAS_UNMAP, &cmd);
	if (rc == 0 && unmapped)
		*unmapped = cmd.length;
	return rc;
}

int it_copy(int fd, uint32_t flags, uint32_t dst_ioas, uint32_t src_ioas, uint64_t length,
	    uint64_t *dst_iova, uint64_t src_iova)
{
	struct iommu_ioas_copy cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.dst_ioas_id = dst_ioas,
		.src_ioas_id = src_ioas,
		.length = length,
		.dst_iova = dst_iova ? *dst_iova : 0,
		.src_iova = src_iova,
	};
	int rc = ioctl(fd, IOMMU_IOAS_COPY, &cmd);
	if (rc == 0 && dst_iova)
		*dst_iova = cmd.dst_iova;
	return rc;
}

int it_option(int fd, uint32_t option_id, uint16_t op, uint32_t object_id, uint64_t *val64)
{
	struct iommu_option cmd = {
		.size = sizeof(cmd),
		.option_id = option_id,
		.op = op,
		.object_id = object_id,
		.val64 = val64 ? *val64 : 0,
	};
	int rc = ioctl(fd, IOMMU_OPTION, &cmd);
	if (rc == 0 && val64)
		*val64 = cmd.val64;
	return rc;
}

void *it_buffer(size_t length)
{
	void *p = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		IT_FATAL("mmap(%zu): %s", length, it_errname(errno));
	memset(p, 0xa5, length);
	return p;
}

uint32_t it_must_alloc(int fd)
{
	uint32_t id = 0;
	if (it_ioas_alloc(fd, &id))
		IT_FATAL("IOMMU_IOAS_ALLOC: %s", it_errname(errno));
	return id;
}

/* --- IOASID_EMU_STATUS ---------------------------------------------------- */

char *it_status(int fd, bool all)
{
	uint32_t len = 4096;
	for (int attempt = 0; attempt < 8; attempt++) {
		char *buf = calloc(1, (size_t)len + 1);
		if (!buf)
			return NULL;
		struct ioasid_emu_status cmd = {
			.size = sizeof(cmd),
			.flags = all ? IOASID_STATUS_ALL : 0,
			.buf_len = len,
			.buf_uptr = (uintptr_t)buf,
		};
		if (ioctl(fd, IOASID_EMU_STATUS, &cmd) == 0) {
			if (cmd.out_len > len) {
				free(buf);
				errno = EPROTO;
				return NULL;
			}
			buf[cmd.out_len] = '\0';
			return buf;
		}
		int err = errno;
		free(buf);
		if (err != EMSGSIZE) {
			errno = err;
			return NULL;
		}
		/* The report may grow between the calls: leave some room. */
		len = cmd.out_len + 4096;
	}
	errno = EMSGSIZE;
	return NULL;
}

/* A recursive-descent JSON parser: objects, arrays, strings (escapes kept
 * simple: \uXXXX becomes '?'), numbers, true/false/null. */
struct parser {
	const char *p;
	int depth;
};

static void skip_ws(struct parser *ps)
{
	while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
		ps->p++;
}

static struct it_json *parse_value(struct parser *ps);

static char *parse_string(struct parser *ps)
{
	if (*ps->p != '"')
		return NULL;
	ps->p++;
	size_t cap = 16, len = 0;
	char *out = malloc(cap);
	if (!out)
		return NULL;
	while (*ps->p && *ps->p != '"') {
		char c = *ps->p++;
		if (c == '\\') {
			char e = *ps->p++;
			switch (e) {
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'u':
				for (int i = 0; i < 4; i++)
					if (*ps->p)
						ps->p++;
				c = '?';
				break;
			case '\0':
				free(out);
				return NULL;
			default: c = e; break;
			}
		}
		if (len + 2 > cap) {
			cap *= 2;
			char *grown = realloc(out, cap);
			if (!grown) {
				free(out);
				return NULL;
			}
			out = grown;
		}
		out[len++] = c;
	}
	if (*ps->p != '"') {
		free(out);
		return NULL;
	}
	ps->p++;
	out[len] = '\0';
	return out;
}

static bool push_item(struct it_json *v, struct it_json *item, char *key)
{
	struct it_json **items = realloc(v->items, (v->count + 1) * sizeof(*items));
	if (!items)
		return false;
	v->items = items;
	if (v->type == IT_JSON_OBJECT) {
		char **keys = realloc(v->keys, (v->count + 1) * sizeof(*keys));
		if (!keys)
			return false;
		v->keys = keys;
		v->keys[v->count] = key;
	}
	v->items[v->count++] = item;
	return true;
}

static struct it_json *parse_container(struct parser *ps, bool object)
{
	struct it_json *v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	v->type = object ? IT_JSON_OBJECT : IT_JSON_ARRAY;
	ps->p++;
	skip_ws(ps);
	char close = object ? '}' : ']';
	if (*ps->p == close) {
		ps->p++;
		return v;
	}
	for (;;) {
		char *key = NULL;
		skip_ws(ps);
		if (object) {
			key = parse_string(ps);
			if (!key)
				goto fail;
			skip_ws(ps);
			if (*ps->p != ':') {
				free(key);
				goto fail;
			}
			ps->p++;
		}
		struct it_json *item = parse_value(ps);
		if (!item || !push_item(v, item, key)) {
			free(key);
			it_json_free(item);
			goto fail;
		}
		skip_ws(ps);
		if (*ps->p == ',') {
			ps->p++;
			continue;
		}
		if (*ps->p == close) {
			ps->p++;
			return v;
		}
		goto fail;
	}
fail:
	it_json_free(v);
	return NULL;
}

static struct it_json *parse_value(struct parser *ps)
{
	if (++ps->depth > 64)
		return NULL;
	skip_ws(ps);
	struct it_json *v = NULL;
	if (*ps->p == '{' || *ps->p == '[') {
		v = parse_container(ps, *ps->p == '{');
	} else if (*ps->p == '"') {
		char *s = parse_string(ps);
		if (s && (v = calloc(1, sizeof(*v)))) {
			v->type = IT_JSON_STRING;
			v->string = s;
		} else {
			free(s);
		}
	} else if (!strncmp(ps->p, "true", 4) || !strncmp(ps->p, "false", 5)) {
		if ((v = calloc(1, sizeof(*v)))) {
			v->type = IT_JSON_BOOL;
			v->boolean = ps->p[0] == 't';
			ps->p += v->boolean ? 4 : 5;
		}
	} else if (!strncmp(ps->p, "null", 4)) {
		if ((v = calloc(1, sizeof(*v)))) {
			v->type = IT_JSON_NULL;
			ps->p += 4;
		}
	} else {
		char *end;
		double d = strtod(ps->p, &end);
		if (end != ps->p && (v = calloc(1, sizeof(*v)))) {
			v->type = IT_JSON_NUMBER;
			v->number = d;
			ps->p = end;
		}
	}
	ps->depth--;
	return v;
}

struct it_json *it_json_parse(const char *text)
{
	struct parser ps = { .p = text };
	struct it_json *v = parse_value(&ps);
	skip_ws(&ps);
	if (v && *ps.p) {
		it_json_free(v);
		return NULL;
	}
	return v;
}

void it_json_free(struct it_json *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->count; i++) {
		it_json_free(v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->string);
	free(v);
}

const struct it_json *it_json_get(const struct it_json *object, const char *key)
{
	if (!object || object->type != IT_JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < object->count; i++)
		if (!strcmp(object->keys[i], key))
			return object->items[i];
	return NULL;
}

long long it_json_int(const struct it_json *object, const char *key, long long fallback)
{
	const struct it_json *v = it_json_get(object, key);
	return v && v->type == IT_JSON_NUMBER ? (long long)v->number : fallback;
}

struct it_json *it_status_json(int fd, bool all)
{
	char *text = it_status(fd, all);
	if (!text) {
		IT_FAIL("IOASID_EMU_STATUS(all=%d): %s", all, it_errname(errno));
		return NULL;
	}
	struct it_json *report = it_json_parse(text);
	if (!report || !it_status_contexts(report)) {
		IT_FAIL("IOASID_EMU_STATUS: not a report with a \"contexts\" array: %.400s", text);
		it_json_free(report);
		report = NULL;
	}
	free(text);
	return report;
}

const struct it_json *it_status_contexts(const struct it_json *report)
{
	const struct it_json *contexts = it_json_get(report, "contexts");
	return contexts && contexts->type == IT_JSON_ARRAY ? contexts : NULL;
}

const struct it_json *it_status_context_by_id(const struct it_json *report, long long id)
{
	const struct it_json *contexts = it_status_contexts(report);
	for (size_t i = 0; contexts && i < contexts->count; i++)
		if (it_json_int(contexts->items[i], "id", -1) == id)
			return contexts->items[i];
	return NULL;
}

const struct it_json *it_status_context_by_pid(const struct it_json *report, pid_t pid)
{
	const struct it_json *contexts = it_status_contexts(report);
	for (size_t i = 0; contexts && i < contexts->count; i++) {
		const struct it_json *pids = it_json_get(contexts->items[i], "pids");
		for (size_t j = 0; pids && pids->type == IT_JSON_ARRAY && j < pids->count; j++)
			if (pids->items[j]->type == IT_JSON_NUMBER &&
			    (pid_t)pids->items[j]->number == pid)
				return contexts->items[i];
	}
	return NULL;
}

long long it_context_id(int fd)
{
	struct it_json *report = it_status_json(fd, false);
	if (!report)
		return -1;
	const struct it_json *contexts = it_status_contexts(report);
	long long id = -1;
	if (contexts->count != 1)
		IT_FAIL("status without IOASID_STATUS_ALL lists %zu contexts, expected 1",
			contexts->count);
	else if ((id = it_json_int(contexts->items[0], "id", -1)) < 0)
		IT_FAIL("status: context without a numeric \"id\"");
	it_json_free(report);
	return id;
}

/* --- processes ------------------------------------------------------------ */

void it_event_init(struct it_event *ev)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC))
		IT_FATAL("pipe2: %s", it_errname(errno));
	ev->rd = p[0];
	ev->wr = p[1];
}

void it_event_signal(struct it_event *ev, uint64_t value)
{
	if (write(ev->wr, &value, sizeof(value)) != (ssize_t)sizeof(value))
		IT_FATAL("event write: %s", it_errname(errno));
}

uint64_t it_event_wait(struct it_event *ev, int seconds)
{
	struct pollfd pfd = { .fd = ev->rd, .events = POLLIN };
	int rc;
	do {
		rc = poll(&pfd, 1, seconds * 1000);
	} while (rc < 0 && errno == EINTR);
	if (rc == 0)
		IT_FATAL("no event from the other process within %d s", seconds);
	uint64_t value;
	ssize_t got = read(ev->rd, &value, sizeof(value));
	if (got != (ssize_t)sizeof(value))
		IT_FATAL("event read: %zd (%s): the other process is gone", got,
			 got < 0 ? it_errname(errno) : "EOF");
	return value;
}

void it_event_close(struct it_event *ev)
{
	if (ev->rd >= 0)
		close(ev->rd);
	if (ev->wr >= 0)
		close(ev->wr);
	ev->rd = ev->wr = -1;
}

int it_wait_child(pid_t pid, int seconds)
{
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		int status;
		pid_t got = waitpid(pid, &status, WNOHANG);
		if (got == pid) {
			if (WIFEXITED(status))
				return WEXITSTATUS(status);
			return 128 + WTERMSIG(status);
		}
		if (got < 0 && errno != EINTR) {
			IT_FAIL("waitpid(%d): %s", (int)pid, it_errname(errno));
			return -1;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= seconds) {
			IT_FAIL("child %d did not end within %d s; killing it", (int)pid, seconds);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		struct timespec nap = { .tv_nsec = 10 * 1000 * 1000 };
		nanosleep(&nap, NULL);
	}
}

bool it_has_cap(int cap)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return false;
	char line[256];
	unsigned long long eff = 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &eff) == 1)
			break;
	fclose(f);
	return (eff >> cap) & 1;
}

bool it_wait_context_gone(int observer_fd, long long ctx, int naps)
{
	for (int i = 0; i < naps; i++) {
		struct it_json *report = it_status_json(observer_fd, true);
		if (!report)
			return false;
		bool present = it_status_context_by_id(report, ctx) != NULL;
		it_json_free(report);
		if (!present)
			return true;
		struct timespec nap = { .tv_nsec = 10 * 1000 * 1000 };
		nanosleep(&nap, NULL);
	}
	return false;
}
