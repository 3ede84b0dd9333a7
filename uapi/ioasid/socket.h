/* SPDX-License-Identifier: MIT */
/*
 * ioasid socket transport: the messages a client exchanges with ioasidd over
 * its Unix socket (SOCK_SEQPACKET, one message per datagram).
 *
 * The socket stands for an open file of the device. A connection's first
 * message either opens a new context or joins an existing one (what a
 * forked child does to keep sharing its parent's file); every later message
 * is one ioctl. The daemon learns who sent a message from the kernel
 * (SO_PASSCRED/SCM_CREDENTIALS), never from its contents, and reaches the
 * sender's memory itself for anything outside the inline bytes: the struct
 * travels inline, the buffers its fields point to stay in the client.
 *
 * Requests and replies are plain structs with explicit padding; everything is
 * in the host's byte order (both ends are on one machine).
 *
 * A connection may instead stand for an open file of an emulated device's
 * VFIO cdev, /dev/vfio/devices/<name> (IOASID_SOCKET_OPEN_DEVICE): its
 * ioctls are then the VFIO device ioctls. Those message types were added
 * later, within version 1: a daemon that predates them ends the connection
 * (a protocol error), which a client takes as "no such device".
 *
 * Version 2 adds files the daemon hands to its client beside the iommufd
 * itself (the kernel's anonymous-inode fds: the selftest's access fd, a
 * fault queue's fd); see "Files" below. A connection speaks the version of
 * its first message, and every later message on it carries that version;
 * the daemon accepts 1 and 2 and never hands a file to a version-1
 * connection (such an ioctl fails with EOPNOTSUPP, as over CUSE).
 */
#ifndef IOASID_SOCKET_H
#define IOASID_SOCKET_H

#include <linux/types.h>

#define IOASID_SOCKET_MAGIC 0x64736169u /* "iasd" little-endian */
#define IOASID_SOCKET_VERSION 2
#define IOASID_SOCKET_VERSION_MIN 1 /* the oldest a daemon still accepts */
#define IOASID_SOCKET_DEFAULT_PATH "/run/ioasid/ioasid.sock"

/* The most struct bytes a request carries inline (all of them, in practice:
 * the largest iommufd struct is under 100 bytes). */
#define IOASID_SOCKET_MAX_INLINE 4096u
#define IOASID_SOCKET_TOKEN_LEN 16

enum ioasid_socket_msg {
	IOASID_SOCKET_OPEN = 1,  /* new context; reply: ioasid_socket_opened */
	IOASID_SOCKET_JOIN = 2,  /* existing context or device file by token;
				  * reply: opened */
	IOASID_SOCKET_IOCTL = 3, /* one ioctl; reply: ioasid_socket_ioctl_reply */
	IOASID_SOCKET_OPEN_DEVICE = 4, /* a device's VFIO file; reply: opened */
	IOASID_SOCKET_IOCTL_FD = 5,    /* an ioctl naming an fd; reply: as IOCTL */
	IOASID_SOCKET_RELEASE = 6,     /* last close of a device file or a
					* file; reply: ioasid_socket_ioctl_reply */
	IOASID_SOCKET_IOCTL_FILE = 7,  /* v2, daemon to client only: an ioctl
					* reply that hands over a file */
	IOASID_SOCKET_READ = 8,        /* v2: read(2) on a file; reply: ioctl_reply
					* and the bytes */
	IOASID_SOCKET_WRITE = 9,       /* v2: write(2) on a file, with the bytes;
					* reply: ioasid_socket_ioctl_reply */
	IOASID_SOCKET_FILE_READY = 10  /* v2, daemon to client only, unasked, seq
					* 0, a bare header: the file has become
					* readable. poll(2) on the file's socket
					* then sees POLLIN, as on the kernel's
					* file; the client drops the message
					* wherever it finds it */
};

struct ioasid_socket_hdr {
	__u32 magic;
	__u16 version;
	__u16 type;      /* enum ioasid_socket_msg */
	__u32 seq;       /* chosen by the client, echoed in the reply */
	__u32 length;    /* bytes after the fixed part of this message */
};

/* IOASID_SOCKET_OPEN carries nothing else. */

struct ioasid_socket_join {
	struct ioasid_socket_hdr hdr;
	__u8 token[IOASID_SOCKET_TOKEN_LEN];
};

struct ioasid_socket_opened {
	struct ioasid_socket_hdr hdr;
	__s32 result;       /* 0 or -errno */
	__u32 context_id;   /* as ioasidctl status shows it */
	__u8 token[IOASID_SOCKET_TOKEN_LEN]; /* lets another connection join */
};

/* Followed by hdr.length bytes: the client's memory at `arg` as it was when
 * sent (fewer than the struct's size if the rest was not readable). */
struct ioasid_socket_ioctl {
	struct ioasid_socket_hdr hdr;
	__u32 cmd;
	__u32 __reserved;
	__aligned_u64 arg;
};

/* Followed by hdr.length bytes: the new contents of the inline bytes
 * [out_offset, out_offset + hdr.length), to be copied back to arg +
 * out_offset. Bytes outside the inline copy were written by the daemon
 * directly. */
struct ioasid_socket_ioctl_reply {
	struct ioasid_socket_hdr hdr;
	__s32 result;       /* 0 or -errno: what ioctl(2) returns */
	__u32 out_offset;
};

/*
 * VFIO device files.
 *
 * IOASID_SOCKET_OPEN_DEVICE is a connection's first message, as OPEN: it
 * opens the VFIO cdev of the emulated device whose node is
 * /dev/vfio/devices/<name>. The reply is ioasid_socket_opened: result 0
 * with a token (JOIN with it shares the open file, as after fork()), or
 * -ENOENT when the daemon has no device of that name (the client then
 * opens the real path). context_id is 0.
 */
#define IOASID_SOCKET_DEVICE_NAME_LEN 64

struct ioasid_socket_open_device {
	struct ioasid_socket_hdr hdr;
	char name[IOASID_SOCKET_DEVICE_NAME_LEN]; /* NUL-terminated, no '/' */
};

/*
 * VFIO_DEVICE_BIND_IOMMUFD names an iommufd by its number in the client's
 * descriptor table, which the daemon cannot read. The client says what the
 * number is: IOASID_SOCKET_IOCTL_FD is an IOASID_SOCKET_IOCTL (same header,
 * cmd and arg; hdr.length counts the inline bytes, which follow this
 * struct) plus that answer. The token of a context is the capability to
 * join it, which the client holds because it opened or inherited that
 * context: binding to it gives nothing joining would not. A plain
 * IOASID_SOCKET_IOCTL of the bind reads as an fd that is not open (EBADF).
 */
enum ioasid_socket_fd_kind {
	IOASID_SOCKET_FD_CLOSED = 0,  /* no such open fd: EBADF */
	IOASID_SOCKET_FD_OTHER = 1,   /* open, but no context of this daemon:
				       * EBADFD */
	IOASID_SOCKET_FD_CONTEXT = 2  /* a connection to this daemon's context
				       * with this token */
};

struct ioasid_socket_ioctl_fd {
	struct ioasid_socket_ioctl ioctl;
	__s32 fd;        /* the number, as the struct at arg holds it */
	__u32 fd_kind;   /* enum ioasid_socket_fd_kind */
	__u8 token[IOASID_SOCKET_TOKEN_LEN]; /* with IOASID_SOCKET_FD_CONTEXT */
};

/*
 * IOASID_SOCKET_RELEASE (the header alone) on a device connection: the
 * client's last descriptor of the device file is being closed and no other
 * process shares the connection. The daemon unbinds the device (what the
 * kernel's close does) and answers result 0 before the client closes the
 * socket, so that a close() is complete when it returns. Without it the
 * device unbinds when the daemon sees the connection end, a moment after
 * the close.
 *
 * Version 2 sends it on a context's connection too, on the same terms: the
 * daemon lets go of the context and, when nothing else holds it (another
 * connection that joined it, a file handed out from it), tears it down
 * (every mapping unpinned, every device detached) before it answers. A
 * program that closes its iommufd and at once opens a new one sees the
 * old one gone, as with the kernel's release().
 */

/*
 * Files (version 2).
 *
 * An ioctl that creates a file (the kernel's get_unused_fd_flags() +
 * fd_install()) succeeds with an ioasid_socket_file_reply instead of the
 * plain reply, its hdr.type IOASID_SOCKET_IOCTL_FILE, and exactly one
 * descriptor attached (SCM_RIGHTS): the client's end of a new connection
 * that stands for the file. The client installs it O_CLOEXEC, copies the
 * inline bytes back as for any reply, then writes the descriptor's number,
 * a __u32, at arg + number_offset (the daemon wrote the rest of the struct).
 * If it cannot, it closes the descriptor and the ioctl fails with EFAULT.
 * `token` lets another connection join the file, as a context's token does
 * (a forked child that reads or writes the inherited descriptor).
 *
 * On a file's connection the client sends only these, each answered with an
 * ioasid_socket_ioctl_reply (hdr.type as the request):
 *   IOASID_SOCKET_READ: ioasid_socket_read, `count` being read(2)'s own
 *     (the file's rules apply to it); result is the byte count read or
 *     -errno, and that many bytes follow the reply (hdr.length). At most
 *     IOASID_SOCKET_MAX_INLINE bytes per message: a larger read(2) is
 *     answered short.
 *   IOASID_SOCKET_WRITE: the header and hdr.length bytes to write (at most
 *     IOASID_SOCKET_MAX_INLINE); result is the byte count written or -errno.
 *   IOASID_SOCKET_RELEASE: the header alone, as for a device file: the
 *     client's last descriptor of the file, not shared with another
 *     process, is being closed. The daemon drops the file (and with it, the
 *     reference it holds on its context) before it answers, so that close()
 *     is complete when it returns.
 * An ioctl(2) on the descriptor is answered by the client itself: ENOTTY,
 * as for an anonymous-inode file without an ioctl method.
 *
 * The daemon recognises the file again when an ioctl names the client's
 * number for it (IOMMU_TEST_CMD's access ops): it takes a duplicate of the
 * descriptor (pidfd_getfd()) and compares it with the client ends it made.
 */
struct ioasid_socket_file_reply {
	struct ioasid_socket_ioctl_reply reply;
	__u32 number_offset;
	__u32 __reserved;
	__u8 token[IOASID_SOCKET_TOKEN_LEN];
};

struct ioasid_socket_read {
	struct ioasid_socket_hdr hdr;
	__u32 count;
	__u32 __reserved;
};

#endif /* IOASID_SOCKET_H */
