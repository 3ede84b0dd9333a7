/* SPDX-License-Identifier: MIT */
/*
 * Client side of the ioasid socket transport. See transport.h for what it
 * promises; the comments here say why it is built this way.
 */
#define _GNU_SOURCE
#include "transport.h"

#include <ioasid/socket.h>
#include <ioasid/vfio.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

/*
 * One connection to the daemon, shared by every fd of this process that was
 * dup'ed from the same open. `owner` is the process that made (or joined
 * through) the connection: a forked child inherits the socket but must not
 * read replies meant for its parent, so it joins on a socket of its own the
 * first time it uses the fd.
 *
 * A connection is either a context (an iommufd), with `is_device` an open
 * file of a device's VFIO cdev, or with `is_file` a file the daemon handed
 * over (an access or fault fd; its socket came with an ioctl's reply). `shared` says that another process
 * may hold the same socket (this one forked, or inherited it over exec):
 * then only the daemon, seeing the socket's end, knows when the file's
 * last reference goes.
 */
struct connection {
	pthread_mutex_t lock; /* one request in flight per connection */
	unsigned int refs;    /* fds in `fds` that point here */
	pid_t owner;
	uint32_t seq;
	uint32_t context_id;
	int access_mode; /* O_RDONLY, O_WRONLY or O_RDWR, as opened */
	int is_device;
	int is_file;
	int shared;
	uint8_t token[IOASID_SOCKET_TOKEN_LEN];
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* The preload shim wraps close() and dup3() to keep the table below in
 * step; the transport's own calls must not come back through those
 * wrappers (they would take table_lock again), so they go to the kernel. */
static int raw_close(int fd)
{
	return (int)syscall(SYS_close, fd);
}

static int raw_dup3(int oldfd, int newfd, int flags)
{
	return (int)syscall(SYS_dup3, oldfd, newfd, flags);
}

/*
 * Connections by fd. Looking an fd up takes no lock: the shim looks up
 * every fd that read(), write() and close() see, and those may run in
 * signal handlers. Changes are made under table_lock. A table that grows is
 * replaced, never freed, because a lookup may still be reading it.
 */
struct table {
	size_t len;
	struct connection *_Atomic slots[];
};
static struct table *_Atomic fd_table;
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t cached_pid;

static pid_t self_pid(void)
{
	pid_t pid = __atomic_load_n(&cached_pid, __ATOMIC_RELAXED);
	if (pid == 0) {
		pid = getpid();
		__atomic_store_n(&cached_pid, pid, __ATOMIC_RELAXED);
	}
	return pid;
}

/* The child of fork() runs alone: locks a parent thread held stay held
 * forever unless re-initialised, and its pid is new. Parent and child now
 * both hold every socket. */
static void after_fork_in_child(void)
{
	cached_pid = 0;
	pthread_mutex_init(&table_lock, NULL);
	struct table *t = atomic_load(&fd_table);
	for (size_t i = 0; t && i < t->len; i++) {
		struct connection *conn = atomic_load(&t->slots[i]);
		if (conn) {
			pthread_mutex_init(&conn->lock, NULL);
			conn->shared = 1;
		}
	}
}

static void after_fork_in_parent(void)
{
	pthread_mutex_lock(&table_lock);
	struct table *t = atomic_load(&fd_table);
	for (size_t i = 0; t && i < t->len; i++) {
		struct connection *conn = atomic_load(&t->slots[i]);
		if (conn)
			conn->shared = 1;
	}
	pthread_mutex_unlock(&table_lock);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void register_atfork(void)
{
	pthread_atfork(NULL, after_fork_in_parent, after_fork_in_child);
}

static struct connection *lookup(int fd)
{
	struct table *t = atomic_load_explicit(&fd_table, memory_order_acquire);
	if (fd < 0 || !t || (size_t)fd >= t->len)
		return NULL;
	return atomic_load_explicit(&t->slots[fd], memory_order_acquire);
}

/* Called with table_lock held. */
static int table_set(int fd, struct connection *conn)
{
	struct table *t = atomic_load(&fd_table);
	if (!t || (size_t)fd >= t->len) {
		size_t len = t ? t->len : 1024;
		while (len <= (size_t)fd)
			len *= 2;
		struct table *grown = calloc(1, sizeof(*grown) + len * sizeof(grown->slots[0]));
		if (!grown)
			return -ENOMEM;
		grown->len = len;
		for (size_t i = 0; t && i < t->len; i++)
			atomic_init(&grown->slots[i], atomic_load(&t->slots[i]));
		atomic_store_explicit(&fd_table, grown, memory_order_release);
		t = grown;
	}
	atomic_store_explicit(&t->slots[fd], conn, memory_order_release);
	return 0;
}

static void release(struct connection *conn)
{
	if (--conn->refs == 0) {
		pthread_mutex_destroy(&conn->lock);
		free(conn);
	}
}

/* A reference for the length of a call, so that a close() of the fd in
 * another thread cannot free the connection under it (a kernel file stays
 * alive for the length of an ioctl too). */
static struct connection *get_connection(int fd)
{
	if (!lookup(fd))
		return NULL;
	pthread_mutex_lock(&table_lock);
	struct connection *conn = lookup(fd);
	if (conn)
		conn->refs++;
	pthread_mutex_unlock(&table_lock);
	return conn;
}

static void put_connection(struct connection *conn)
{
	pthread_mutex_lock(&table_lock);
	release(conn);
	pthread_mutex_unlock(&table_lock);
}

static void fill_hdr(struct ioasid_socket_hdr *hdr, uint16_t type, uint32_t seq, uint32_t length)
{
	hdr->magic = IOASID_SOCKET_MAGIC;
	hdr->version = IOASID_SOCKET_VERSION;
	hdr->type = type;
	hdr->seq = seq;
	hdr->length = length;
}

/*
 * The client may make the descriptor non-blocking (O_NONBLOCK at open,
 * FIONBIO, fcntl), which sets the flag on the socket standing for the file.
 * The kernel's iommufd ioctls never return EAGAIN for it, so a call waits
 * for the socket as a blocking one would. 0, or -errno from poll().
 */
static int wait_for(int sock, short events)
{
	struct pollfd p = { .fd = sock, .events = events };
	while (poll(&p, 1, -1) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

static int send_all(int sock, const struct iovec *iov, int iovcnt)
{
	struct msghdr msg = { .msg_iov = (struct iovec *)iov, .msg_iovlen = iovcnt };
	for (;;) {
		if (sendmsg(sock, &msg, MSG_NOSIGNAL) >= 0)
			return 0;
		if (errno == EINTR)
			continue;
		if ((errno == EAGAIN || errno == EWOULDBLOCK) && wait_for(sock, POLLOUT) == 0)
			continue;
		/* The daemon is gone: a CUSE node answers ENOTCONN then too. */
		return -ENOTCONN;
	}
}

/*
 * Waits for the reply to `seq`. A reply with another number can only be a
 * leftover of a request whose caller gave up; it is dropped. A signal does
 * not abandon the request: the daemon is already working on it, as the
 * kernel would be, so the wait resumes.
 */
static ssize_t receive_reply_fd(int sock, uint32_t seq, void *buf, size_t len, int *fd)
{
	if (fd)
		*fd = -1;
	for (;;) {
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(sizeof(int))];
		} control;
		struct iovec iov = { buf, len };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
				      .msg_control = &control, .msg_controllen = sizeof(control) };
		ssize_t got = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
		    wait_for(sock, POLLIN) == 0)
			continue;
		/* A descriptor only ever comes with the reply that hands over
		 * a file; one anywhere else is not kept. */
		int received = -1;
		for (struct cmsghdr *c = got > 0 ? CMSG_FIRSTHDR(&msg) : NULL; c;
		     c = CMSG_NXTHDR(&msg, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			for (int i = 0; i < n; i++) {
				int one;
				memcpy(&one, CMSG_DATA(c) + i * sizeof(int), sizeof(one));
				if (received < 0)
					received = one;
				else
					raw_close(one);
			}
		}
		/* The daemon is gone. A CUSE file fails the call in flight
		 * with ECONNABORTED and later ones with ENOTCONN; here the
		 * two cannot be told apart (a daemon's sockets may outlive
		 * it for a moment, taking a request nobody will answer),
		 * so every call gets ENOTCONN. */
		if (got <= 0)
			return -ENOTCONN;
		const struct ioasid_socket_hdr *hdr = buf;
		if ((size_t)got < sizeof(*hdr) || hdr->magic != IOASID_SOCKET_MAGIC) {
			if (received >= 0)
				raw_close(received);
			return -EPROTO;
		}
		/* What made poll() see POLLIN on a file; the daemon says it
		 * again after a read that leaves something to read. */
		if (hdr->type == IOASID_SOCKET_FILE_READY) {
			if (received >= 0)
				raw_close(received);
			continue;
		}
		if (hdr->seq == seq && fd && hdr->type == IOASID_SOCKET_IOCTL_FILE) {
			*fd = received;
			return got;
		}
		if (received >= 0)
			raw_close(received);
		if (hdr->seq == seq)
			return got;
	}
}

static ssize_t receive_reply(int sock, uint32_t seq, void *buf, size_t len)
{
	return receive_reply_fd(sock, seq, buf, len, NULL);
}

/* Sends OPEN, JOIN or OPEN_DEVICE (`device` names the device) on a new
 * socket and fills `conn` from the answer. */
static int handshake(int sock, struct connection *conn, int join, const char *device)
{
	union {
		struct ioasid_socket_hdr hdr;
		struct ioasid_socket_join join;
		struct ioasid_socket_open_device open_device;
	} request;
	memset(&request, 0, sizeof(request));
	struct iovec iov = { &request, sizeof(request.hdr) };
	if (join) {
		fill_hdr(&request.hdr, IOASID_SOCKET_JOIN, 0, 0);
		memcpy(request.join.token, conn->token, sizeof(request.join.token));
		iov.iov_len = sizeof(request.join);
	} else if (device) {
		fill_hdr(&request.hdr, IOASID_SOCKET_OPEN_DEVICE, 0, 0);
		snprintf(request.open_device.name, sizeof(request.open_device.name), "%s", device);
		iov.iov_len = sizeof(request.open_device);
	} else {
		fill_hdr(&request.hdr, IOASID_SOCKET_OPEN, 0, 0);
	}
	int ret = send_all(sock, &iov, 1);
	if (ret)
		return ret;
	struct ioasid_socket_opened reply;
	ssize_t got = receive_reply(sock, 0, &reply, sizeof(reply));
	if (got < 0)
		return (int)got;
	if ((size_t)got < sizeof(reply))
		return -EPROTO;
	if (reply.result)
		return reply.result;
	conn->context_id = reply.context_id;
	memcpy(conn->token, reply.token, sizeof(conn->token));
	conn->owner = self_pid();
	return 0;
}

static int connect_to(const char *path, int cloexec)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	strcpy(addr.sun_path, path);
	int sock = socket(AF_UNIX, SOCK_SEQPACKET | (cloexec ? SOCK_CLOEXEC : 0), 0);
	if (sock < 0)
		return -errno;
	while (connect(sock, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		if (errno == EINTR)
			continue;
		int err = errno;
		raw_close(sock);
		/* No daemon behind the path: as if the device node were absent. */
		return err == ECONNREFUSED ? -ENOENT : -err;
	}
	/* The daemon reaches our memory with process_vm_readv/writev. Under
	 * Yama's ptrace_scope=1 an unprivileged daemon may do that only to a
	 * process that named it; the relation is per process, so a forked
	 * child names it again when it connects. Without Yama this fails
	 * harmlessly. */
	struct ucred peer;
	socklen_t peer_len = sizeof(peer);
	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &peer, &peer_len) == 0 && peer.pid > 0)
		prctl(PR_SET_PTRACER, (unsigned long)peer.pid, 0, 0, 0);
	return sock;
}

static int open_connection(const char *socket_path, const char *device, int cloexec)
{
	int saved_errno = errno;
	pthread_once(&atfork_once, register_atfork);
	if (!socket_path)
		socket_path = getenv("IOASID_SOCKET");
	if (!socket_path || !*socket_path)
		socket_path = IOASID_SOCKET_DEFAULT_PATH;

	struct connection *conn = calloc(1, sizeof(*conn));
	if (!conn) {
		errno = saved_errno;
		return -ENOMEM;
	}
	pthread_mutex_init(&conn->lock, NULL);
	conn->refs = 1;
	conn->access_mode = O_RDWR;
	conn->is_device = device != NULL;
	snprintf(conn->path, sizeof(conn->path), "%s", socket_path);

	int sock = connect_to(socket_path, cloexec);
	int ret = sock < 0 ? sock : handshake(sock, conn, 0, device);
	if (ret == 0) {
		pthread_mutex_lock(&table_lock);
		ret = table_set(sock, conn);
		pthread_mutex_unlock(&table_lock);
	}
	if (ret) {
		if (sock >= 0)
			raw_close(sock);
		pthread_mutex_destroy(&conn->lock);
		free(conn);
		errno = saved_errno;
		return ret;
	}
	errno = saved_errno;
	return sock;
}

int ioasid_transport_open(const char *socket_path, int cloexec)
{
	return open_connection(socket_path, NULL, cloexec);
}

int ioasid_transport_open_device(const char *socket_path, const char *name, int cloexec)
{
	if (!name || !*name || strchr(name, '/') || strlen(name) >= IOASID_SOCKET_DEVICE_NAME_LEN)
		return -ENOENT;
	int fd = open_connection(socket_path, name, cloexec);
	/* A daemon without the device, without device files at all (it ends
	 * the connection), or no daemon: not a device of ours. */
	return fd >= 0 || fd == -ENOMEM || fd == -EMFILE || fd == -ENFILE ? fd : -ENOENT;
}

int ioasid_transport_owns(int fd)
{
	return lookup(fd) != NULL;
}

int ioasid_transport_is_device(int fd)
{
	struct connection *conn = lookup(fd);
	return conn && conn->is_device;
}

int ioasid_transport_is_file(int fd)
{
	struct connection *conn = lookup(fd);
	return conn && conn->is_file;
}

void ioasid_transport_set_access_mode(int fd, int mode)
{
	struct connection *conn = get_connection(fd);
	if (conn) {
		conn->access_mode = mode & O_ACCMODE;
		put_connection(conn);
	}
}

int ioasid_transport_access_mode(int fd)
{
	struct connection *conn = get_connection(fd);
	if (!conn)
		return -EBADF;
	int mode = conn->access_mode;
	put_connection(conn);
	return mode;
}

int ioasid_transport_context_id(int fd)
{
	struct connection *conn = get_connection(fd);
	if (!conn)
		return -EBADF;
	int id = (int)conn->context_id;
	put_connection(conn);
	return id;
}

/*
 * A forked child's first use of an inherited connection: join the context
 * on a socket of its own and put that socket under every fd number that
 * shared the old one, so the parent keeps its connection to itself. The
 * child's reference to the old socket goes away with the dup3(), just as
 * the kernel would drop its reference to a file the child closes.
 */
static int rejoin(struct connection *conn, int fd)
{
	/* The file is already open: a daemon that is gone means ENOTCONN, as
	 * for a CUSE file whose server died, whatever connect() said. */
	int sock = connect_to(conn->path, 1);
	if (sock < 0)
		return -ENOTCONN;
	int ret = handshake(sock, conn, 1, NULL);
	if (ret) {
		raw_close(sock);
		return ret;
	}
	pthread_mutex_lock(&table_lock);
	struct table *t = atomic_load(&fd_table);
	for (size_t i = 0; t && i < t->len; i++) {
		if (atomic_load(&t->slots[i]) != conn)
			continue;
		int flags = fcntl((int)i, F_GETFD);
		if (raw_dup3(sock, (int)i, (flags >= 0 && (flags & FD_CLOEXEC)) ? O_CLOEXEC : 0) < 0 &&
		    (int)i == fd)
			ret = -errno;
	}
	pthread_mutex_unlock(&table_lock);
	raw_close(sock);
	return ret;
}

/* Reads what the client's memory holds at `arg` without risking a fault in
 * the client: a bad pointer must come back as EFAULT from the daemon, as
 * from the kernel, not as SIGSEGV here. Returns how many bytes were read. */
static size_t read_own_memory(uint64_t arg, void *buf, size_t want)
{
	const size_t page = 4096;
	struct iovec local = { buf, want };
	struct iovec remote[2];
	size_t first = page - (arg & (page - 1));
	int n = 1;
	remote[0].iov_base = (void *)(uintptr_t)arg;
	remote[0].iov_len = want < first ? want : first;
	if (want > first) {
		remote[1].iov_base = (void *)(uintptr_t)(arg + first);
		remote[1].iov_len = want - first;
		n = 2;
	}
	ssize_t got = process_vm_readv(self_pid(), &local, 1, remote, n, 0);
	return got > 0 ? (size_t)got : 0;
}

static int write_own_memory(uint64_t addr, const void *buf, size_t len)
{
	struct iovec local = { (void *)buf, len };
	struct iovec remote = { (void *)(uintptr_t)addr, len };
	ssize_t done = process_vm_writev(self_pid(), &local, 1, &remote, 1, 0);
	return done == (ssize_t)len ? 0 : -EFAULT;
}

/*
 * VFIO_DEVICE_BIND_IOMMUFD's fd number, described for the daemon (which
 * cannot see our descriptor table): one of our context connections to the
 * same daemon is named by its token; anything else open is "other".
 */
static void describe_fd(int number, const struct connection *device,
			struct ioasid_socket_ioctl_fd *out)
{
	out->fd = number;
	out->fd_kind = IOASID_SOCKET_FD_CLOSED;
	memset(out->token, 0, sizeof(out->token));
	if (number < 0)
		return;
	struct connection *conn = get_connection(number);
	if (conn) {
		if (!conn->is_device && strcmp(conn->path, device->path) == 0) {
			out->fd_kind = IOASID_SOCKET_FD_CONTEXT;
			memcpy(out->token, conn->token, sizeof(out->token));
		} else {
			out->fd_kind = IOASID_SOCKET_FD_OTHER;
		}
		put_connection(conn);
	} else if (fcntl(number, F_GETFD) >= 0) {
		out->fd_kind = IOASID_SOCKET_FD_OTHER;
	}
}

struct ioctl_message {
	struct ioasid_socket_ioctl_fd request; /* .ioctl alone unless IOCTL_FD */
	unsigned char bytes[IOASID_SOCKET_MAX_INLINE];
};

struct reply_message {
	union {
		struct ioasid_socket_ioctl_reply reply;
		struct ioasid_socket_file_reply file;
	};
	unsigned char bytes[IOASID_SOCKET_MAX_INLINE];
};

/*
 * A file the daemon handed over with an ioctl's reply: `fd` (already
 * O_CLOEXEC) becomes a connection of its own in the table, a file of the
 * same daemon and context as `from`. Returns 0 or -errno, with `fd` closed
 * on failure.
 */
static int adopt_file(int fd, const struct connection *from, const struct ioasid_socket_file_reply *reply)
{
	struct connection *conn = calloc(1, sizeof(*conn));
	if (!conn) {
		raw_close(fd);
		return -ENOMEM;
	}
	pthread_mutex_init(&conn->lock, NULL);
	conn->refs = 1;
	conn->owner = self_pid();
	conn->context_id = from->context_id;
	conn->access_mode = O_RDWR; /* anon_inode_getfile(..., O_RDWR) */
	conn->is_file = 1;
	memcpy(conn->token, reply->token, sizeof(conn->token));
	memcpy(conn->path, from->path, sizeof(conn->path));
	pthread_mutex_lock(&table_lock);
	struct connection *stale = lookup(fd);
	int ret = table_set(fd, conn);
	if (ret == 0 && stale)
		release(stale);
	pthread_mutex_unlock(&table_lock);
	if (ret) {
		pthread_mutex_destroy(&conn->lock);
		free(conn);
		raw_close(fd);
	}
	return ret;
}

int ioasid_transport_ioctl(int fd, unsigned long cmd, uint64_t arg)
{
	int saved_errno = errno;
	struct connection *conn = get_connection(fd);
	if (!conn)
		return -EBADF;
	/* The daemon's files have no ioctls, as anon-inode files without an
	 * unlocked_ioctl method. */
	if (conn->is_file) {
		put_connection(conn);
		return -ENOTTY;
	}

	/* Every iommufd struct starts with its size; send that much inline.
	 * One read usually does: the first bytes up to the end of their page
	 * (never a fault that a shorter struct would not have), enough for any
	 * iommufd struct; only a longer one needs a second read. */
	struct ioctl_message msg;
	size_t inline_len = 0;
	size_t first = 4096 - (arg & 4095);
	size_t got = read_own_memory(arg, msg.bytes, first < 128 ? first : 128);
	if (got >= sizeof(uint32_t)) {
		uint32_t size;
		memcpy(&size, msg.bytes, sizeof(size));
		size_t want = size < sizeof(size) ? sizeof(size) : size;
		if (want > sizeof(msg.bytes))
			want = sizeof(msg.bytes);
		inline_len = want <= got ? want : read_own_memory(arg, msg.bytes, want);
	}

	/* A device's bind names an iommufd by its number here. */
	const int with_fd = conn->is_device && (uint32_t)cmd == VFIO_DEVICE_BIND_IOMMUFD;
	if (with_fd) {
		int32_t number = -1;
		if (inline_len >= offsetof(struct vfio_device_bind_iommufd, out_devid))
			memcpy(&number, msg.bytes + offsetof(struct vfio_device_bind_iommufd, iommufd),
			       sizeof(number));
		describe_fd(number, conn, &msg.request);
	}

	pthread_mutex_lock(&conn->lock);
	int ret = 0;
	if (conn->owner != self_pid())
		ret = rejoin(conn, fd);
	if (ret == 0) {
		uint32_t seq = ++conn->seq;
		fill_hdr(&msg.request.ioctl.hdr, with_fd ? IOASID_SOCKET_IOCTL_FD : IOASID_SOCKET_IOCTL,
			 seq, (uint32_t)inline_len);
		msg.request.ioctl.cmd = (uint32_t)cmd;
		msg.request.ioctl.__reserved = 0;
		msg.request.ioctl.arg = arg;
		struct iovec iov[2] = {
			{ &msg.request, with_fd ? sizeof(msg.request) : sizeof(msg.request.ioctl) },
			{ msg.bytes, inline_len },
		};
		ret = send_all(fd, iov, 2);

		struct reply_message reply;
		int file = -1;
		ssize_t got = ret ? ret : receive_reply_fd(fd, seq, &reply, sizeof(reply), &file);
		const int with_file = got >= 0 && reply.reply.hdr.type == IOASID_SOCKET_IOCTL_FILE;
		const size_t fixed = with_file ? sizeof(reply.file) : sizeof(reply.reply);
		const unsigned char *bytes = (const unsigned char *)&reply + fixed;
		if (got < 0) {
			ret = (int)got;
		} else if ((size_t)got < fixed || (size_t)got - fixed != reply.reply.hdr.length ||
			   reply.reply.out_offset > inline_len ||
			   reply.reply.hdr.length > inline_len - reply.reply.out_offset ||
			   (with_file && (file < 0 || reply.reply.result != 0))) {
			ret = -EPROTO;
		} else {
			ret = reply.reply.result;
			/* The daemon could not reach our memory and handed back
			 * what it wrote into the inline copy instead. */
			if (reply.reply.hdr.length) {
				int copied = write_own_memory(arg + reply.reply.out_offset, bytes,
							      reply.reply.hdr.length);
				if (copied)
					ret = copied;
			}
			/* fd_install(): the number goes into the struct last. */
			if (with_file && ret == 0) {
				uint32_t number = (uint32_t)file;
				ret = write_own_memory(arg + reply.file.number_offset, &number,
						       sizeof(number));
				if (ret == 0)
					ret = adopt_file(file, conn, &reply.file);
				else
					raw_close(file);
				file = -1;
			}
		}
		if (file >= 0)
			raw_close(file);
	}
	pthread_mutex_unlock(&conn->lock);
	put_connection(conn);
	errno = saved_errno;
	return ret;
}

/* read(2) or write(2) on a file: one message each way, at most
 * IOASID_SOCKET_MAX_INLINE bytes (a larger call is answered short). */
static ssize_t file_io(int fd, uint16_t type, uint64_t buf, size_t count)
{
	int saved_errno = errno;
	struct connection *conn = get_connection(fd);
	if (!conn)
		return -EBADF;
	if (!conn->is_file) {
		put_connection(conn);
		return -EINVAL;
	}
	const size_t n = count < IOASID_SOCKET_MAX_INLINE ? count : IOASID_SOCKET_MAX_INLINE;
	struct {
		union {
			struct ioasid_socket_hdr hdr;
			struct ioasid_socket_read read;
		};
		unsigned char bytes[IOASID_SOCKET_MAX_INLINE];
	} request;
	memset(&request, 0, sizeof(request.read));
	struct iovec iov[2] = { { &request, sizeof(request.read) }, { request.bytes, 0 } };
	ssize_t ret = 0;
	if (type == IOASID_SOCKET_WRITE) {
		/* A buffer we cannot read is EFAULT, as copy_from_user(). */
		if (read_own_memory(buf, request.bytes, n) != n)
			ret = -EFAULT;
		iov[0].iov_len = sizeof(request.hdr);
		iov[1].iov_len = n;
	} else {
		/* The count itself, not what one reply can carry: the file's
		 * rules apply to it (a fault fd's whole records). */
		request.read.count = count < UINT32_MAX ? (uint32_t)count : UINT32_MAX;
	}

	pthread_mutex_lock(&conn->lock);
	if (ret == 0 && conn->owner != self_pid())
		ret = rejoin(conn, fd);
	if (ret == 0) {
		uint32_t seq = ++conn->seq;
		fill_hdr(&request.hdr, type, seq, type == IOASID_SOCKET_WRITE ? (uint32_t)n : 0);
		ret = send_all(fd, iov, 2);
		struct reply_message reply;
		ssize_t got = ret ? ret : receive_reply(fd, seq, &reply, sizeof(reply));
		if (got < 0) {
			ret = got;
		} else if ((size_t)got < sizeof(reply.reply) ||
			   (size_t)got - sizeof(reply.reply) != reply.reply.hdr.length ||
			   reply.reply.result > (int32_t)n ||
			   reply.reply.hdr.length != (type == IOASID_SOCKET_READ && reply.reply.result > 0
							      ? (uint32_t)reply.reply.result
							      : 0)) {
			ret = -EPROTO;
		} else {
			ret = reply.reply.result;
			/* The bytes follow the plain reply. */
			if (ret > 0 && type == IOASID_SOCKET_READ &&
			    write_own_memory(buf, (const unsigned char *)&reply + sizeof(reply.reply),
					     (size_t)ret) != 0)
				ret = -EFAULT;
		}
	}
	pthread_mutex_unlock(&conn->lock);
	put_connection(conn);
	errno = saved_errno;
	return ret;
}

ssize_t ioasid_transport_read(int fd, uint64_t buf, size_t count)
{
	return file_io(fd, IOASID_SOCKET_READ, buf, count);
}

ssize_t ioasid_transport_write(int fd, uint64_t buf, size_t count)
{
	return file_io(fd, IOASID_SOCKET_WRITE, buf, count);
}

void ioasid_transport_dup(int oldfd, int newfd)
{
	if (oldfd == newfd || newfd < 0)
		return;
	pthread_mutex_lock(&table_lock);
	struct connection *conn = lookup(oldfd);
	struct connection *old = lookup(newfd);
	if (old) {
		table_set(newfd, NULL);
		release(old);
	}
	if (conn && table_set(newfd, conn) == 0)
		conn->refs++;
	pthread_mutex_unlock(&table_lock);
}

/*
 * The last close of a context, a device file or a file that no other
 * process shares: the daemon tears the context down (unless something else
 * holds it), unbinds or drops the file before the socket closes, so its
 * effects are complete when close() returns, as after the kernel's close.
 * `fd` is still open.
 */
static void release_file(int fd, struct connection *conn)
{
	pthread_mutex_lock(&conn->lock);
	uint32_t seq = ++conn->seq;
	struct ioasid_socket_hdr request;
	fill_hdr(&request, IOASID_SOCKET_RELEASE, seq, 0);
	struct iovec iov = { &request, sizeof(request) };
	struct ioasid_socket_ioctl_reply reply;
	if (send_all(fd, &iov, 1) == 0)
		(void)receive_reply(fd, seq, &reply, sizeof(reply));
	pthread_mutex_unlock(&conn->lock);
}

/* `fd` no longer names the connection; `may_release`: it is still open
 * (about to be closed). Takes no lock for an fd that is not ours: close()
 * may run in a signal handler. */
static void drop_fd(int fd, int may_release)
{
	if (!lookup(fd))
		return;
	int saved_errno = errno;
	pthread_mutex_lock(&table_lock);
	struct connection *conn = lookup(fd);
	int release_now = 0;
	if (conn) {
		table_set(fd, NULL);
		/* The last reference (no other fd, no call in flight), made
		 * or joined by this process, which never forked since. */
		release_now = may_release && conn->refs == 1 && !conn->shared &&
			      conn->owner == self_pid();
		if (!release_now)
			release(conn);
	}
	pthread_mutex_unlock(&table_lock);
	if (release_now) {
		release_file(fd, conn);
		put_connection(conn);
	}
	errno = saved_errno;
}

void ioasid_transport_close(int fd)
{
	drop_fd(fd, 1);
}

void ioasid_transport_forget(int fd)
{
	drop_fd(fd, 0);
}

void ioasid_transport_close_range(unsigned int first, unsigned int last)
{
	struct table *t = atomic_load_explicit(&fd_table, memory_order_acquire);
	for (size_t fd = first; t && fd < t->len && fd <= last; fd++)
		if (atomic_load(&t->slots[fd]))
			drop_fd((int)fd, 0);
}

/* Entry format: "fd:context:token-hex:path-hex", then ":d" for a device
 * file or ":f" for a file, entries joined by ','. The path is hex too, so it may hold any
 * byte. */
int ioasid_transport_export(char *buf, unsigned long len)
{
	size_t used = 0;
	int ret = 0;
	if (len)
		buf[0] = '\0';
	pthread_mutex_lock(&table_lock);
	struct table *t = atomic_load(&fd_table);
	for (size_t fd = 0; t && fd < t->len && ret == 0; fd++) {
		struct connection *conn = atomic_load(&t->slots[fd]);
		int flags = conn ? fcntl((int)fd, F_GETFD) : -1;
		if (!conn || flags < 0 || (flags & FD_CLOEXEC))
			continue;
		char entry[40 + 2 * IOASID_SOCKET_TOKEN_LEN + 2 * sizeof(conn->path)];
		int n = snprintf(entry, sizeof(entry), "%s%zu:%u:", used ? "," : "", fd,
				 conn->context_id);
		for (size_t i = 0; i < IOASID_SOCKET_TOKEN_LEN; i++)
			n += snprintf(entry + n, sizeof(entry) - n, "%02x", conn->token[i]);
		entry[n++] = ':';
		for (size_t i = 0; conn->path[i]; i++)
			n += snprintf(entry + n, sizeof(entry) - n, "%02x",
				      (unsigned char)conn->path[i]);
		if (conn->is_device)
			n += snprintf(entry + n, sizeof(entry) - n, ":d");
		else if (conn->is_file)
			n += snprintf(entry + n, sizeof(entry) - n, ":f");
		if (used + n + 1 > len)
			ret = -ENOSPC;
		else
			memcpy(buf + used, entry, n + 1), used += n;
	}
	pthread_mutex_unlock(&table_lock);
	return ret ? ret : (int)used;
}

static int hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decodes hex up to the next ':' or ',' into out; returns bytes or -1. */
static long decode_hex(const char **p, unsigned char *out, size_t max)
{
	size_t n = 0;
	while (**p && **p != ':' && **p != ',') {
		int hi = hex_nibble((*p)[0]), lo = hex_nibble((*p)[1]);
		if (hi < 0 || lo < 0 || n == max)
			return -1;
		out[n++] = (unsigned char)(hi << 4 | lo);
		*p += 2;
	}
	return (long)n;
}

/*
 * The imported fds belong to no process yet (owner 0): the socket may still
 * be shared with the parent that forked this program, so the first ioctl
 * joins the context afresh, exactly as after fork(). A malformed entry ends
 * the import; whatever it named is then left alone.
 */
void ioasid_transport_import(const char *state)
{
	pthread_once(&atfork_once, register_atfork);
	const char *p = state;
	while (p && *p) {
		char *end;
		unsigned long fd = strtoul(p, &end, 10);
		if (*end != ':')
			return;
		p = end + 1;
		unsigned long context = strtoul(p, &end, 10);
		if (*end != ':')
			return;
		p = end + 1;
		struct connection *conn = calloc(1, sizeof(*conn));
		if (!conn)
			return;
		long token_len = decode_hex(&p, conn->token, sizeof(conn->token));
		long path_len = *p == ':' ? (p++, decode_hex(&p, (unsigned char *)conn->path,
							    sizeof(conn->path) - 1))
					  : -1;
		int is_device = 0, is_file = 0;
		if (path_len > 0 && p[0] == ':' && (p[1] == 'd' || p[1] == 'f')) {
			is_device = p[1] == 'd';
			is_file = p[1] == 'f';
			p += 2;
		}
		int type = 0;
		socklen_t type_len = sizeof(type);
		if (token_len != IOASID_SOCKET_TOKEN_LEN || path_len <= 0 || fd > 65536 ||
		    getsockopt((int)fd, SOL_SOCKET, SO_TYPE, &type, &type_len) != 0 ||
		    type != SOCK_SEQPACKET) {
			free(conn);
			return;
		}
		pthread_mutex_init(&conn->lock, NULL);
		conn->refs = 1;
		conn->access_mode = O_RDWR;
		conn->context_id = (uint32_t)context;
		conn->is_device = is_device;
		conn->is_file = is_file;
		conn->shared = 1; /* the program that exec'ed may hold it too */
		pthread_mutex_lock(&table_lock);
		if (table_set((int)fd, conn) != 0)
			pthread_mutex_destroy(&conn->lock), free(conn);
		pthread_mutex_unlock(&table_lock);
		if (*p == ',')
			p++;
	}
}
