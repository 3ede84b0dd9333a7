/* SPDX-License-Identifier: MIT */
/*
 * it_daemon_killed [KILL|TERM]: the daemon is SIGKILLed (or, with TERM,
 * asked to stop with SIGTERM) while clients are connected.
 * Every later ioctl on their fds fails at once with ENOTCONN (what a CUSE
 * node answers once its server is gone) instead of hanging; close() still
 * works. A client busy in a loop of ioctls when the kill lands sees its
 * calls succeed up to some point and ENOTCONN from then on.
 *
 * The daemon's pid comes from $IOASID_TEST_DAEMON_PID (set by run.sh); the
 * harness expects the daemon to be dead afterwards.
 */
#define _GNU_SOURCE
#include "it_common.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SZ_64K 0x10000ul

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "it_daemon_killed: FAIL: hung (alarm fired)\n";
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(1);
}

/* True once a connection to $IOASID_SOCKET is refused (or the path is
 * gone); bounded by 30 s. Plain socket calls, which the shim leaves alone. */
static bool socket_refuses(void)
{
	const char *path = getenv("IOASID_SOCKET");
	if (!path || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return true;
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	strcpy(addr.sun_path, path);
	for (int i = 0; i < 3000; i++) {
		int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (s < 0)
			IT_FATAL("socket: %s", it_errname(errno));
		int rc = connect(s, (struct sockaddr *)&addr, sizeof(addr));
		int err = errno;
		close(s);
		if (rc != 0 && (err == ECONNREFUSED || err == ENOENT))
			return true;
		struct timespec nap = { .tv_nsec = 10 * 1000 * 1000 };
		nanosleep(&nap, NULL);
	}
	return false;
}

/* A client in a tight loop of ioctls: succeeds, then ENOTCONN for good. */
static int busy_client(struct it_event *started)
{
	it_set_role("busy");
	alarm(60);
	int fd = it_open(0);
	uint32_t ioas = it_must_alloc(fd);
	char *buf = it_buffer(SZ_64K);
	it_event_signal(started, 1);
	unsigned long ok = 0;
	for (;;) {
		uint64_t iova = 0;
		errno = 0;
		int rc = it_map(fd, ioas, IOMMU_IOAS_MAP_READABLE, buf, SZ_64K, &iova);
		if (rc == 0)
			rc = it_unmap(fd, ioas, iova, SZ_64K, NULL);
		if (rc == 0) {
			ok++;
			continue;
		}
		/* The call in flight when the daemon dies fails with
		 * ECONNABORTED, as a CUSE file's does (fuse_abort_conn());
		 * one started afterwards with ENOTCONN. */
		if (errno != ENOTCONN && errno != ECONNABORTED)
			IT_FAIL("ioctl after %lu good rounds: %s, expected ECONNABORTED or ENOTCONN",
				ok, it_errname(errno));
		break;
	}
	/* A CUSE daemon's descriptors close one by one as it dies: each close
	 * ends the requests that descriptor had taken with ECONNABORTED
	 * (fuse_dev_release()), and only the last aborts the connection
	 * (fuse_abort_conn()), after which every call is ENOTCONN. So a call
	 * made in between may be ECONNABORTED too; bounded, then ENOTCONN. */
	for (int i = 0; i < 3000; i++) {
		uint32_t id;
		if (it_ioas_alloc(fd, &id) == 0) {
			IT_FAIL("an ioctl succeeded after the daemon's death");
			break;
		}
		if (errno != ECONNABORTED)
			break;
		usleep(1000);
	}
	/* Once gone, always gone. */
	for (int i = 0; i < 3; i++) {
		uint32_t id;
		EXPECT_ERRNO(ENOTCONN, it_ioas_alloc(fd, &id));
	}
	EXPECT_OK(close(fd));
	return it_finish();
}

int main(int argc, char **argv)
{
	it_init(argc, argv);
	const char *pid_text = getenv("IOASID_TEST_DAEMON_PID");
	if (!pid_text || !*pid_text) {
		it_log("IOASID_TEST_DAEMON_PID not set: skipped");
		return IT_SKIP;
	}
	pid_t daemon_pid = (pid_t)atoi(pid_text);
	int sig = SIGKILL;
	if (argc > 1 && !strcmp(argv[1], "TERM"))
		sig = SIGTERM;
	else if (argc > 1 && strcmp(argv[1], "KILL"))
		IT_FATAL("usage: %s [KILL|TERM]", argv[0]);
	it_set_role("(SIG%s)", sig == SIGKILL ? "KILL" : "TERM");
	signal(SIGALRM, on_alarm);
	alarm(60);

	char *buf = it_buffer(SZ_64K);
	int fd = it_open(0);
	uint32_t ioas = it_must_alloc(fd);
	EXPECT_OK(it_map_fixed(fd, ioas, buf, SZ_64K, 0x100000));
	int fd_dup = dup(fd);
	if (fd_dup < 0)
		IT_FATAL("dup: %s", it_errname(errno));
	/* A second context, never used after the kill until the end. */
	int fd_other = it_open(0);
	it_must_alloc(fd_other);

	struct it_event started;
	it_event_init(&started);
	pid_t busy = fork();
	if (busy < 0)
		IT_FATAL("fork: %s", it_errname(errno));
	if (busy == 0) {
		close(fd);
		close(fd_dup);
		close(fd_other);
		_exit(busy_client(&started));
	}
	it_event_wait(&started, 60);

	/* A child holding the inherited fd, to use it only after the kill. */
	struct it_event killed;
	it_event_init(&killed);
	pid_t heir = fork();
	if (heir < 0)
		IT_FATAL("fork: %s", it_errname(errno));
	if (heir == 0) {
		it_set_role("heir (SIG%s)", sig == SIGKILL ? "KILL" : "TERM");
		alarm(60);
		it_event_wait(&killed, 60);
		uint32_t id;
		EXPECT_ERRNO(ENOTCONN, it_ioas_alloc(fd, &id));
		EXPECT_OK(close(fd));
		_exit(it_finish());
	}

	int pidfd = (int)syscall(SYS_pidfd_open, daemon_pid, 0);
	if (pidfd < 0)
		IT_FATAL("pidfd_open(%d): %s", (int)daemon_pid, it_errname(errno));
	if (kill(daemon_pid, sig))
		IT_FATAL("kill(%d): %s", (int)daemon_pid, it_errname(errno));
	/* Bounded wait for the daemon to be gone (a hang guard, not timing). */
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
	if (poll(&pfd, 1, 30000) != 1)
		IT_FATAL("daemon %d still running 30 s after SIG%s", (int)daemon_pid,
			 sig == SIGKILL ? "KILL" : "TERM");
	close(pidfd);
	/* The process is gone, but its listening socket may outlive it for a
	 * moment (io_uring tears down asynchronously). Wait (bounded) until
	 * the path refuses connections, so that what follows sees a daemon
	 * that is gone for good, every time. */
	if (!socket_refuses())
		IT_FATAL("%s still accepts connections 30 s after the daemon died",
			 getenv("IOASID_SOCKET") ? getenv("IOASID_SOCKET") : "(IOASID_SOCKET unset)");
	it_event_signal(&killed, 1);

	uint32_t id;
	EXPECT_ERRNO(ENOTCONN, it_ioas_alloc(fd, &id));
	EXPECT_ERRNO(ENOTCONN, it_map_fixed(fd, ioas, buf, SZ_64K, 0x200000));
	EXPECT_ERRNO(ENOTCONN, it_unmap(fd, ioas, 0, UINT64_MAX, NULL));
	EXPECT_ERRNO(ENOTCONN, it_destroy(fd_dup, ioas));
	EXPECT_ERRNO(ENOTCONN, it_ioas_alloc(fd_other, &id));
	/* Again: no hang, same answer. */
	EXPECT_ERRNO(ENOTCONN, it_ioas_alloc(fd, &id));

	int status = it_wait_child(busy, 60);
	if (status)
		IT_FAIL("busy client ended with status %d", status);
	status = it_wait_child(heir, 60);
	if (status)
		IT_FAIL("heir ended with status %d", status);

	EXPECT_OK(close(fd));
	EXPECT_OK(close(fd_dup));
	EXPECT_OK(close(fd_other));
	/* A new open with no daemon fails, without hanging. */
	int again = open(it_device(), O_RDWR);
	if (again >= 0) {
		IT_FAIL("open(%s) with the daemon dead succeeded (fd %d)", it_device(), again);
		close(again);
	} else {
		it_log("open with the daemon dead: %s", it_errname(errno));
	}
	return it_finish();
}
