/* SPDX-License-Identifier: MIT */
/*
 * Client side of the ioasid socket transport (uapi/ioasid/socket.h), shared
 * by libioasid and the preload shim. Not installed: an internal static
 * library built position-independent.
 *
 * A transport fd is a connected SOCK_SEQPACKET socket that stands for one
 * open file of the device. These functions keep the little per-fd state the
 * protocol needs (the context token, the process that owns the connection)
 * and make the fd behave like the kernel's file across dup() and fork():
 * a forked child that uses an inherited fd first joins the same context on
 * a connection of its own, then swaps it in under the same fd number.
 *
 * Everything returns 0 (or an fd) on success and a negative errno on failure,
 * and leaves errno alone.
 */
#ifndef IOASID_CLIENT_TRANSPORT_H
#define IOASID_CLIENT_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Connects to the daemon at `socket_path` (NULL: $IOASID_SOCKET, else
 * IOASID_SOCKET_DEFAULT_PATH) and opens a new context. `cloexec` as
 * O_CLOEXEC on open(2). Returns the fd. */
int ioasid_transport_open(const char *socket_path, int cloexec);

/* Opens the VFIO cdev of the daemon's emulated device whose node is
 * /dev/vfio/devices/<name>. Returns the fd, or -ENOENT when the daemon has
 * no such device (or there is no daemon, or it predates device files), or
 * another -errno. The fd's ioctls are the VFIO device ioctls; its
 * VFIO_DEVICE_BIND_IOMMUFD takes an iommufd opened with
 * ioasid_transport_open() on the same socket path. */
int ioasid_transport_open_device(const char *socket_path, const char *name, int cloexec);

/* Nonzero when `fd` is a transport fd this process knows about (opened
 * here, dup'ed from one, or inherited over fork/exec). */
int ioasid_transport_owns(int fd);
/* Nonzero when it is one of a device file. */
int ioasid_transport_is_device(int fd);

/* Nonzero when it is one of the daemon's files: a descriptor an ioctl
 * handed over (IOMMU_TEST_CMD's access fd, a fault queue's fd). The
 * transport installs those itself, O_CLOEXEC, and keeps them in its table
 * like the fds it opened. */
int ioasid_transport_is_file(int fd);

/* read(2)/write(2) on one of the daemon's files, through the daemon: the
 * byte count or -errno. At most IOASID_SOCKET_MAX_INLINE bytes per call
 * (short otherwise); an unreadable or unwritable buffer is -EFAULT. */
ssize_t ioasid_transport_read(int fd, uint64_t buf, size_t count);
ssize_t ioasid_transport_write(int fd, uint64_t buf, size_t count);

/* One ioctl on the context behind `fd`. Returns what the kernel's ioctl
 * handler would: 0 or -errno. A daemon that is gone gives -ENOTCONN (a CUSE
 * file gives ECONNABORTED for the one call in flight when its daemon dies,
 * ENOTCONN after). */
int ioasid_transport_ioctl(int fd, unsigned long cmd, uint64_t arg);

/* Bookkeeping for the fd table: call after a successful dup/dup2/dup3/fcntl
 * F_DUPFD of a transport fd, and before close() of one. The last close()
 * of a device file (or of one of the daemon's files) this process alone
 * holds waits for the daemon to unbind the device (drop the file), as the
 * kernel's close does. An ioctl on one of the daemon's files is -ENOTTY. When the fd number was
 * already closed or reused (dup2/dup3 onto it), call
 * ioasid_transport_forget() instead. */
void ioasid_transport_dup(int oldfd, int newfd);
void ioasid_transport_close(int fd);
void ioasid_transport_forget(int fd);
/* After a successful close_range()/closefrom() without CLOSE_RANGE_CLOEXEC. */
void ioasid_transport_close_range(unsigned int first, unsigned int last);

/* execve() loses this process's memory but not its fds. Before an exec,
 * ioasid_transport_export() writes the state of every transport fd that
 * survives it (no FD_CLOEXEC) into `buf` as one string for the new
 * program's environment; the new program hands that string to
 * ioasid_transport_import(). Returns the string's length (0: nothing to
 * pass) or -ENOSPC. */
#define IOASID_TRANSPORT_ENV "IOASID_INHERITED_FDS"
int ioasid_transport_export(char *buf, unsigned long len);
void ioasid_transport_import(const char *state);

/* The access mode (O_RDONLY, O_WRONLY, O_RDWR) the fd was opened with;
 * O_RDWR unless set. read(2)/write(2) check it as the kernel does. */
void ioasid_transport_set_access_mode(int fd, int mode);
int ioasid_transport_access_mode(int fd);

/* The context's id as the daemon's status report shows it, or -errno. */
int ioasid_transport_context_id(int fd);

#ifdef __cplusplus
}
#endif

#endif /* IOASID_CLIENT_TRANSPORT_H */
