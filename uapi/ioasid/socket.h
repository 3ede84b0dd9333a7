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
 */
#ifndef IOASID_SOCKET_H
#define IOASID_SOCKET_H

#include <linux/types.h>

#define IOASID_SOCKET_MAGIC 0x64736169u /* "iasd" little-endian */
#define IOASID_SOCKET_VERSION 1
#define IOASID_SOCKET_DEFAULT_PATH "/run/ioasid/ioasid.sock"

/* The most struct bytes a request carries inline (all of them, in practice:
 * the largest iommufd struct is under 100 bytes). */
#define IOASID_SOCKET_MAX_INLINE 4096u
#define IOASID_SOCKET_TOKEN_LEN 16

enum ioasid_socket_msg {
	IOASID_SOCKET_OPEN = 1,  /* new context; reply: ioasid_socket_opened */
	IOASID_SOCKET_JOIN = 2,  /* existing context by token; reply: opened */
	IOASID_SOCKET_IOCTL = 3  /* one ioctl; reply: ioasid_socket_ioctl_reply */
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

#endif /* IOASID_SOCKET_H */
