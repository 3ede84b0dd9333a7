/* SPDX-License-Identifier: MIT */
/*
 * libioasid-preload.so: makes an unmodified, dynamically linked program talk
 * to ioasidd over its socket while believing it opened the kernel's iommufd
 * node.
 *
 * open() of an intercepted path ($IOASID_INTERCEPT, a ':'-separated list;
 * default /dev/iommu and /dev/ioasid) returns a connected transport socket.
 * On such an fd, ioctl() goes to the daemon, read()/write() fail with EINVAL
 * as on the kernel's iommufd file (it has neither), and close()/dup()/fcntl
 * keep the transport's fd table right. fork() needs nothing here (the
 * transport notices a new process on first use) and exec passes the table
 * on through the environment. Every other fd and path is passed through
 * untouched. Descriptors an ioctl hands over (the selftest's access fd, a
 * fault queue's fd) are in the transport's table too: their read()/write()
 * go to the daemon's file, their ioctl() is ENOTTY.
 *
 * open() of /dev/vfio/devices/<name> (the prefix is $IOASID_INTERCEPT_VFIO,
 * empty to leave those paths alone) asks the daemon for its emulated device
 * of that name; when it has none, the real open() follows, so real VFIO
 * devices keep working. A device fd's ioctls go to the daemon (the iommufd
 * number of VFIO_DEVICE_BIND_IOMMUFD is described to it, see the
 * transport); read/write/pread/pwrite/mmap fail as the kernel's fail on a
 * device without regions: EBADF/EACCES by access mode, else EINVAL.
 */
#define _GNU_SOURCE
/* Each of open/open64, openat/openat64, fcntl/fcntl64 is its own symbol to
 * wrap; with 64-bit off_t forced on, glibc's headers would rename one onto
 * the other. */
#undef _FILE_OFFSET_BITS
#include "transport.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <ioasid/socket.h>

#define EXPORT __attribute__((visibility("default")))

extern char **environ;

/* dlsym(RTLD_NEXT) once per symbol; the result never changes. */
#define REAL(name)                                                             \
	static __typeof__(name) *real_##name;                                  \
	if (!real_##name)                                                      \
		*(void **)&real_##name = dlsym(RTLD_NEXT, #name)

static int fail(int err)
{
	errno = err;
	return -1;
}

static int intercepted(const char *path)
{
	if (!path)
		return 0;
	const char *list = getenv("IOASID_INTERCEPT");
	if (!list || !*list)
		list = "/dev/iommu:/dev/ioasid";
	size_t len = strlen(path);
	for (const char *p = list; *p;) {
		const char *end = strchr(p, ':');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (n == len && memcmp(p, path, n) == 0)
			return 1;
		if (!end)
			break;
		p = end + 1;
	}
	return 0;
}

/* openat() reaches the device only by an absolute path; a path relative to
 * a directory fd is never one of ours. */
static int intercepted_at(const char *path)
{
	return path && path[0] == '/' && intercepted(path);
}

static int open_device(int flags)
{
	int fd = ioasid_transport_open(NULL, (flags & O_CLOEXEC) != 0);
	if (fd < 0)
		return fail(-fd);
	ioasid_transport_set_access_mode(fd, flags);
	/* The file's O_NONBLOCK, as F_GETFL shows it: the socket carries it. */
	if ((flags & O_NONBLOCK) && fcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
		int err = errno;
		close(fd);
		return fail(err);
	}
	return fd;
}

/* The name of a path under the VFIO cdev directory, or NULL. */
static const char *vfio_name(const char *path)
{
	const char *prefix = getenv("IOASID_INTERCEPT_VFIO");
	if (!prefix)
		prefix = "/dev/vfio/devices/";
	size_t n = strlen(prefix);
	if (!path || !*prefix || strncmp(path, prefix, n) != 0)
		return NULL;
	const char *name = path + n;
	if (!*name || strchr(name, '/') || strlen(name) >= IOASID_SOCKET_DEVICE_NAME_LEN)
		return NULL;
	return name;
}

/* One of the daemon's device files for `path`: 1 with *fd set (or -1 and
 * errno for a failure that is the open's answer), 0 when the daemon has no
 * such device and the real open() must run. */
static int open_vfio(const char *path, int flags, int *fd)
{
	const char *name = vfio_name(path);
	if (!name)
		return 0;
	int ret = ioasid_transport_open_device(NULL, name, (flags & O_CLOEXEC) != 0);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0) {
		*fd = fail(-ret);
		return 1;
	}
	ioasid_transport_set_access_mode(ret, flags);
	*fd = ret;
	return 1;
}

static int open_vfio_at(const char *path, int flags, int *fd)
{
	return path && path[0] == '/' && open_vfio(path, flags, fd);
}

static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
}

EXPORT int open(const char *path, int flags, ...)
{
	REAL(open);
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	int fd;
	if (intercepted(path))
		return open_device(flags);
	if (open_vfio(path, flags, &fd))
		return fd;
	return real_open(path, flags, mode);
}

EXPORT int open64(const char *path, int flags, ...)
{
	REAL(open64);
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	int fd;
	if (intercepted(path))
		return open_device(flags);
	if (open_vfio(path, flags, &fd))
		return fd;
	return real_open64(path, flags, mode);
}

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	REAL(openat);
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	int fd;
	if (intercepted_at(path))
		return open_device(flags);
	if (open_vfio_at(path, flags, &fd))
		return fd;
	return real_openat(dirfd, path, flags, mode);
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
	REAL(openat64);
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	int fd;
	if (intercepted_at(path))
		return open_device(flags);
	if (open_vfio_at(path, flags, &fd))
		return fd;
	return real_openat64(dirfd, path, flags, mode);
}

/* What _FORTIFY_SOURCE builds call instead of open()/openat(). */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);

EXPORT int __open_2(const char *path, int flags)
{
	REAL(__open_2);
	int fd;
	if (intercepted(path))
		return open_device(flags);
	if (open_vfio(path, flags, &fd))
		return fd;
	return real___open_2(path, flags);
}

EXPORT int __open64_2(const char *path, int flags)
{
	REAL(__open64_2);
	int fd;
	if (intercepted(path))
		return open_device(flags);
	if (open_vfio(path, flags, &fd))
		return fd;
	return real___open64_2(path, flags);
}

EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
	REAL(__openat_2);
	int fd;
	if (intercepted_at(path))
		return open_device(flags);
	if (open_vfio_at(path, flags, &fd))
		return fd;
	return real___openat_2(dirfd, path, flags);
}

EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
	REAL(__openat64_2);
	int fd;
	if (intercepted_at(path))
		return open_device(flags);
	if (open_vfio_at(path, flags, &fd))
		return fd;
	return real___openat64_2(dirfd, path, flags);
}

/* ioctl_fioasync(): the daemon's files, as iommufd's, have no fasync
 * method, so changing O_ASYNC is ENOTTY and asking for what is set is 0.
 * The socket is left alone: it would raise SIGIO on every reply. */
static int fioasync(int fd, const void *arg)
{
	int on;
	struct iovec local = { &on, sizeof(on) };
	struct iovec remote = { (void *)arg, sizeof(on) };
	/* get_user(): a bad pointer is EFAULT, not a crash of the caller
	 * (where a seccomp filter forbids the call, the pointer is trusted). */
	if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != (ssize_t)sizeof(on)) {
		if (errno == EFAULT)
			return fail(EFAULT);
		on = *(const int *)arg;
	}
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0)
		return -1;
	return !on != !(flags & O_ASYNC) ? fail(ENOTTY) : 0;
}

EXPORT int ioctl(int fd, unsigned long request, ...)
{
	REAL(ioctl);
	va_list ap;
	va_start(ap, request);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	/* do_vfs_ioctl() answers these for every file before the file's own
	 * ioctl: close-on-exec and O_NONBLOCK, flags that the socket standing
	 * for the file carries as well (the transport waits on a non-blocking
	 * socket as iommufd's ioctls would). */
	if (!ioasid_transport_owns(fd) || request == FIOCLEX || request == FIONCLEX ||
	    request == FIONBIO)
		return real_ioctl(fd, request, arg);
	if (request == FIOASYNC)
		return fioasync(fd, arg);
	int ret = ioasid_transport_ioctl(fd, request, (uint64_t)(uintptr_t)arg);
	return ret < 0 ? fail(-ret) : ret;
}

/* vfs_read()/vfs_write(): a file not opened for the direction gives EBADF,
 * and one that has no read/write method (iommufd has neither) EINVAL. The
 * daemon's files (an access fd, a fault fd) answer through the daemon. */
static ssize_t file_result(ssize_t ret)
{
	return ret < 0 ? fail((int)-ret) : ret;
}

EXPORT ssize_t read(int fd, void *buf, size_t count)
{
	REAL(read);
	int mode = ioasid_transport_access_mode(fd);
	if (mode < 0)
		return real_read(fd, buf, count);
	if (mode != O_WRONLY && ioasid_transport_is_file(fd))
		return file_result(ioasid_transport_read(fd, (uint64_t)(uintptr_t)buf, count));
	return fail(mode == O_WRONLY ? EBADF : EINVAL);
}

EXPORT ssize_t write(int fd, const void *buf, size_t count)
{
	REAL(write);
	int mode = ioasid_transport_access_mode(fd);
	if (mode < 0)
		return real_write(fd, buf, count);
	if (mode != O_RDONLY && ioasid_transport_is_file(fd))
		return file_result(ioasid_transport_write(fd, (uint64_t)(uintptr_t)buf, count));
	return fail(mode == O_RDONLY ? EBADF : EINVAL);
}

/* pread/pwrite reach a VFIO device's regions, of which ours have none:
 * EBADF by access mode (vfs_read/vfs_write), else EINVAL (before the bind,
 * and after it no offset names a region). */
static int device_rw_error(int fd, int write)
{
	int mode = ioasid_transport_access_mode(fd);
	return fail(mode == (write ? O_RDONLY : O_WRONLY) ? EBADF : EINVAL);
}

EXPORT ssize_t pread(int fd, void *buf, size_t count, off_t offset)
{
	REAL(pread);
	if (!ioasid_transport_is_device(fd))
		return real_pread(fd, buf, count, offset);
	return device_rw_error(fd, 0);
}

EXPORT ssize_t pread64(int fd, void *buf, size_t count, off64_t offset)
{
	REAL(pread64);
	if (!ioasid_transport_is_device(fd))
		return real_pread64(fd, buf, count, offset);
	return device_rw_error(fd, 0);
}

EXPORT ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset)
{
	REAL(pwrite);
	if (!ioasid_transport_is_device(fd))
		return real_pwrite(fd, buf, count, offset);
	return device_rw_error(fd, 1);
}

EXPORT ssize_t pwrite64(int fd, const void *buf, size_t count, off64_t offset)
{
	REAL(pwrite64);
	if (!ioasid_transport_is_device(fd))
		return real_pwrite64(fd, buf, count, offset);
	return device_rw_error(fd, 1);
}

/* do_mmap(): a file not open for reading, or a shared writable mapping of
 * one not open for writing, is EACCES; then the device's mmap, which has
 * no region to map: EINVAL. */
static void *device_mmap_error(int fd, int prot, int flags)
{
	int mode = ioasid_transport_access_mode(fd);
	if (mode == O_WRONLY || ((flags & MAP_TYPE) == MAP_SHARED && (prot & PROT_WRITE) && mode == O_RDONLY))
		errno = EACCES;
	else
		errno = EINVAL;
	return MAP_FAILED;
}

EXPORT void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset)
{
	REAL(mmap);
	if ((flags & MAP_ANONYMOUS) || !ioasid_transport_is_device(fd))
		return real_mmap(addr, length, prot, flags, fd, offset);
	return device_mmap_error(fd, prot, flags);
}

EXPORT void *mmap64(void *addr, size_t length, int prot, int flags, int fd, off64_t offset)
{
	REAL(mmap64);
	if ((flags & MAP_ANONYMOUS) || !ioasid_transport_is_device(fd))
		return real_mmap64(addr, length, prot, flags, fd, offset);
	return device_mmap_error(fd, prot, flags);
}

EXPORT int close(int fd)
{
	REAL(close);
	ioasid_transport_close(fd);
	return real_close(fd);
}

EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
	REAL(close_range);
	int ret = real_close_range(first, last, flags);
	if (ret == 0 && !(flags & CLOSE_RANGE_CLOEXEC))
		ioasid_transport_close_range(first, last);
	return ret;
}

EXPORT void closefrom(int first)
{
	REAL(closefrom);
	real_closefrom(first);
	if (first >= 0)
		ioasid_transport_close_range((unsigned int)first, ~0u);
}

EXPORT int dup(int fd)
{
	REAL(dup);
	int newfd = real_dup(fd);
	if (newfd >= 0)
		ioasid_transport_dup(fd, newfd);
	return newfd;
}

EXPORT int dup2(int fd, int newfd)
{
	REAL(dup2);
	int ret = real_dup2(fd, newfd);
	if (ret >= 0) {
		if (ioasid_transport_owns(fd))
			ioasid_transport_dup(fd, ret);
		else if (ret != fd)
			ioasid_transport_forget(ret);
	}
	return ret;
}

EXPORT int dup3(int fd, int newfd, int flags)
{
	REAL(dup3);
	int ret = real_dup3(fd, newfd, flags);
	if (ret >= 0) {
		if (ioasid_transport_owns(fd))
			ioasid_transport_dup(fd, ret);
		else
			ioasid_transport_forget(ret);
	}
	return ret;
}

static int fcntl_common(int (*real)(int, int, ...), int fd, int cmd, va_list ap)
{
	/* Every fcntl argument is an int, a long or a pointer; passing it on
	 * as a long-sized word is what glibc's own fcntl does. */
	void *arg = va_arg(ap, void *);
	int ret = real(fd, cmd, arg);
	if (ret >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
		ioasid_transport_dup(fd, ret);
	return ret;
}

EXPORT int fcntl(int fd, int cmd, ...)
{
	REAL(fcntl);
	va_list ap;
	va_start(ap, cmd);
	int ret = fcntl_common(real_fcntl, fd, cmd, ap);
	va_end(ap);
	return ret;
}

int fcntl64(int fd, int cmd, ...);
EXPORT int fcntl64(int fd, int cmd, ...)
{
	REAL(fcntl64);
	va_list ap;
	va_start(ap, cmd);
	int ret = fcntl_common(real_fcntl64, fd, cmd, ap);
	va_end(ap);
	return ret;
}

/*
 * exec: the new program gets the transport state of every fd that survives
 * the exec in IOASID_INHERITED_FDS, on top of the environment it is given.
 */
struct exec_env {
	char *vars[4098];
	char state[8192];
};

/* Returns the environment to pass: `envp` itself when nothing changes. */
static char **env_with_state(char *const envp[], struct exec_env *env)
{
	static const char prefix[] = IOASID_TRANSPORT_ENV "=";
	const size_t skip = sizeof(prefix) - 1;
	memcpy(env->state, prefix, skip);
	int n = ioasid_transport_export(env->state + skip, sizeof(env->state) - skip);
	size_t count = 0, out = 0;
	while (envp && envp[count])
		count++;
	if (n <= 0 || count > 4096)
		return (char **)envp;
	for (size_t i = 0; i < count; i++)
		if (strncmp(envp[i], prefix, skip) != 0)
			env->vars[out++] = envp[i];
	env->vars[out++] = env->state;
	env->vars[out] = NULL;
	return env->vars;
}

EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	REAL(execve);
	struct exec_env env;
	return real_execve(path, argv, env_with_state(envp, &env));
}

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	REAL(execvpe);
	struct exec_env env;
	return real_execvpe(file, argv, env_with_state(envp, &env));
}

EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	REAL(fexecve);
	struct exec_env env;
	return real_fexecve(fd, argv, env_with_state(envp, &env));
}

EXPORT int execv(const char *path, char *const argv[])
{
	return execve(path, argv, environ);
}

EXPORT int execvp(const char *file, char *const argv[])
{
	return execvpe(file, argv, environ);
}

/* The list forms gather their arguments and go through the forms above. */
static char **gather_args(const char *arg0, va_list ap, char **argv, size_t max, char ***envp)
{
	size_t n = 0;
	argv[n++] = (char *)arg0;
	while (n < max && (argv[n] = va_arg(ap, char *)) != NULL)
		n++;
	if (n == max)
		return NULL;
	if (envp)
		*envp = va_arg(ap, char **);
	return argv;
}

EXPORT int execl(const char *path, const char *arg, ...)
{
	char *argv[4096];
	va_list ap;
	va_start(ap, arg);
	char **args = gather_args(arg, ap, argv, 4096, NULL);
	va_end(ap);
	return args ? execve(path, args, environ) : fail(E2BIG);
}

EXPORT int execlp(const char *file, const char *arg, ...)
{
	char *argv[4096];
	va_list ap;
	va_start(ap, arg);
	char **args = gather_args(arg, ap, argv, 4096, NULL);
	va_end(ap);
	return args ? execvpe(file, args, environ) : fail(E2BIG);
}

EXPORT int execle(const char *path, const char *arg, ...)
{
	char *argv[4096];
	char **envp = NULL;
	va_list ap;
	va_start(ap, arg);
	char **args = gather_args(arg, ap, argv, 4096, &envp);
	va_end(ap);
	return args ? execve(path, args, envp) : fail(E2BIG);
}

__attribute__((constructor)) static void import_inherited(void)
{
	const char *state = getenv(IOASID_TRANSPORT_ENV);
	if (!state)
		return;
	ioasid_transport_import(state);
	unsetenv(IOASID_TRANSPORT_ENV);
}
