#include "socket_server.h"

#include <ioasid/socket.h>
#include <liburing.h>
#include <spdlog/spdlog.h>
#include <linux/sockios.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>

#include "core/client_file.h"
#include "dispatch/vfio_device.h"
#include "frontends/session.h"
#include "frontends/worker_pool.h"
#include "memory/process_caller.h"
#include "memory/request_caller.h"
#include "memory/unique_fd.h"

namespace ioasid::frontends {
namespace {

using Token = std::array<std::uint8_t, IOASID_SOCKET_TOKEN_LEN>;

// The same on both ends (one machine, one ABI), without padding surprises.
static_assert(sizeof(ioasid_socket_ioctl) == 32 && sizeof(ioasid_socket_ioctl_fd) == 56 &&
              sizeof(ioasid_socket_open_device) == 16 + IOASID_SOCKET_DEVICE_NAME_LEN &&
              sizeof(ioasid_socket_file_reply) == 48 && sizeof(ioasid_socket_read) == 24);

constexpr std::size_t kMaxMessage = sizeof(ioasid_socket_ioctl_fd) + IOASID_SOCKET_MAX_INLINE;
// Requests one connection may have waiting; forked processes sharing a
// connection before they rejoin are the only way past one.
constexpr std::size_t kMaxQueued = 64;

[[noreturn]] void fail(const std::string& what)
{
    throw std::system_error(errno, std::generic_category(), what);
}

struct Credentials {
    pid_t pid = 0; // 0: the sender is not visible in our pid namespace
    uid_t uid = static_cast<uid_t>(-1);
};

// One received message, copied out of the connection's receive buffer so
// the next receive can start while it is served.
struct Message {
    std::array<std::byte, kMaxMessage> bytes;
    std::size_t length = 0;
    Credentials creds;
    // Opened when the message arrived, so that the pid cannot have been
    // recycled by the time a worker serves it.
    std::shared_ptr<memory::ProcessCaller> process;
};

void fill_hdr(ioasid_socket_hdr& hdr, ioasid_socket_msg type, std::uint32_t seq,
              std::uint32_t length, std::uint16_t version = IOASID_SOCKET_VERSION)
{
    hdr.magic = IOASID_SOCKET_MAGIC;
    hdr.version = version;
    hdr.type = static_cast<std::uint16_t>(type);
    hdr.seq = seq;
    hdr.length = length;
}

// An open file of a VFIO device node, shared by the connections that
// joined it.
struct DeviceFile {
    explicit DeviceFile(core::EmulatedDevice& emulated) : device(emulated) {}
    dispatch::VfioDevice device;
    memory::CallerCache callers;
};

// A file handed to the client (core::ClientFile). Like the kernel's file
// it holds a reference on the context it came from, so the context outlives
// the iommufd's last close while the client holds the file. That reference
// lives in the same pointer as the file (see hand_over()): whoever still
// holds the file (a request that found it, a read in progress) holds its
// context too, and the context goes only after the file. The first
// RELEASE, or the last connection's end, drops the connections' share.
struct HandedFile {
    std::mutex lock;
    std::shared_ptr<core::ClientFile> file;

    [[nodiscard]] std::shared_ptr<core::ClientFile> get()
    {
        std::lock_guard guard(lock);
        return file;
    }
    // Takes the context's lock through the file's end: never on the loop.
    void release()
    {
        std::shared_ptr<core::ClientFile> dropped;
        {
            std::lock_guard guard(lock);
            dropped = std::move(file);
        }
    }
};

// What a token lets a connection join: a context, a device file, or a file.
struct Joinable {
    std::weak_ptr<Session> session;
    std::weak_ptr<DeviceFile> device;
    std::weak_ptr<HandedFile> file;
    [[nodiscard]] bool expired() const
    {
        return session.expired() && device.expired() && file.expired();
    }
};

// A file's client end, as fstat() tells one socket from another.
using FileKey = std::pair<dev_t, ino_t>;

// FILE_READY on a file's socket: unasked, so it never blocks nor closes the
// connection. With `bounded`, not when the client has left a backlog unread
// (SIOCOUTQ of a Unix socket counts, in buffer bytes, what its peer has not
// read): that is signals nobody reads (a forked child polls a descriptor of
// its own), which must not pile up until a reply no longer fits; and any
// unread message already makes poll() see POLLIN. A client that reads its
// replies never comes near the bound.
void send_readable(int fd, std::uint16_t version, bool bounded)
{
    constexpr int kBacklog = 64 * 1024;
    int unread = 0;
    if (bounded && (::ioctl(fd, SIOCOUTQ, &unread) != 0 || unread > kBacklog))
        return;
    ioasid_socket_hdr hdr{};
    fill_hdr(hdr, IOASID_SOCKET_FILE_READY, 0, 0, version);
    [[maybe_unused]] ssize_t n = ::send(fd, &hdr, sizeof(hdr), MSG_DONTWAIT | MSG_NOSIGNAL);
}

} // namespace

// A client's connection. The loop owns it while a receive is pending; a
// queued or running ioctl keeps it alive past its removal from the loop.
struct Connection {
    std::uint64_t id;
    memory::UniqueFd fd;
    std::uint16_t version = 0;        // of the first message
    std::shared_ptr<Session> session; // set by OPEN or JOIN
    std::shared_ptr<DeviceFile> device; // or this, by OPEN_DEVICE or JOIN
    std::shared_ptr<HandedFile> file;   // or this, from birth or by JOIN
    // A descriptor of `fd` for the file's readable signal (hand_over()).
    std::shared_ptr<const memory::UniqueFd> ready;
    // A RELEASE was accepted: the client is closing the connection, and a
    // worker may be dropping `session`, which the loop must no longer read.
    // Used only by the loop thread.
    bool released = false;
    [[nodiscard]] bool open() const { return session || device || file; }
    [[nodiscard]] memory::CallerCache& callers() const
    {
        return session ? session->callers() : device->callers;
    }

    // Receive state, used only by the loop thread.
    std::array<std::byte, kMaxMessage + 1> buffer; // +1 reveals an oversized message
    alignas(cmsghdr) std::array<std::byte, CMSG_SPACE(sizeof(ucred))> control;
    iovec iov{};
    msghdr msg{};

    // The connection's ioctls run one at a time, in the order they came.
    std::mutex queue_lock;
    std::deque<std::unique_ptr<Message>> queue;
    bool running = false;
};

class SocketServer::Impl final : public memory::FileDesk {
public:
    Impl(core::CoreServices& services, SocketOptions options);
    ~Impl();

    void run();
    void stop();

private:
    enum class Event : std::uint64_t { accept = 0, receive = 1, stop = 2, accept_retry = 3, adopt = 4 };
    static constexpr unsigned kEventBits = 3;
    static std::uint64_t tag(Event event, std::uint64_t id)
    {
        return id << kEventBits | static_cast<std::uint64_t>(event);
    }

    io_uring_sqe* next_sqe();
    void arm_accept();
    void arm_accept_retry();
    void arm_receive(Connection& conn);
    void arm_stop();
    void arm_adopt();
    void on_adopt();
    void on_accept(int res);
    void on_receive(std::uint64_t id, int res);
    void handle(std::shared_ptr<Connection> conn, std::unique_ptr<Message> message);
    void open_session(Connection& conn, const Message& message, const ioasid_socket_hdr& hdr);
    void join_session(Connection& conn, const Message& message, const ioasid_socket_hdr& hdr);
    void open_device(Connection& conn, const Message& message, const ioasid_socket_hdr& hdr);
    [[nodiscard]] bool new_token(Token* token, const Joinable& target);
    void reply_opened(Connection& conn, std::uint32_t seq, int result, const Token* token);
    void drain(const std::shared_ptr<Connection>& conn);
    void close_connection(std::uint64_t id);
    void serve_ioctl(Connection& conn, Message& message);
    void serve_release(Connection& conn, const ioasid_socket_hdr& hdr);
    void serve_file_io(Connection& conn, const Message& message);
    void send_reply(Connection& conn, const void* reply, std::size_t length, int fd = -1);
    [[nodiscard]] int hand_over(Connection& conn, memory::RequestCaller::StagedFile staged,
                                memory::UniqueFd* client_end, Token* token);
    std::shared_ptr<core::ClientFile> file_of(int fd) override;
    [[nodiscard]] int resolve_iommufd(const ioasid_socket_ioctl_fd* fd_info, std::int32_t fd,
                                      std::shared_ptr<core::Context>* ctx);

    core::CoreServices& services_;
    SocketOptions options_;
    memory::UniqueFd listener_;
    memory::UniqueFd stop_fd_;
    std::uint64_t stop_value_ = 0;
    io_uring ring_{};
    bool stopping_ = false;
    bool accept_failing_ = false; // logged once per run of failures

    std::atomic<std::uint64_t> next_id_{1};
    std::map<std::uint64_t, std::shared_ptr<Connection>> connections_; // loop thread only

    // Connections made on a worker (a file's), for the loop to take in.
    memory::UniqueFd adopt_fd_;
    std::uint64_t adopt_value_ = 0;
    std::mutex adopt_lock_;
    std::vector<std::shared_ptr<Connection>> adopted_;

    std::mutex files_lock_;
    std::map<FileKey, std::weak_ptr<HandedFile>> files_; // by client end

    std::mutex tokens_lock_;
    std::map<Token, Joinable> tokens_;

    WorkerPool workers_; // last: joined first, while everything it uses lives
};

SocketServer::Impl::Impl(core::CoreServices& services, SocketOptions options)
    : services_(services), options_(std::move(options)),
      workers_(2, 64)
{
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (options_.path.size() >= sizeof(addr.sun_path)) {
        errno = ENAMETOOLONG;
        fail("socket path " + options_.path);
    }
    std::memcpy(addr.sun_path, options_.path.c_str(), options_.path.size() + 1);

    listener_ = memory::UniqueFd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!listener_)
        fail("socket");
    // A socket file nobody answers on is left over from a daemon that died;
    // one that answers belongs to a daemon still running.
    if (::connect(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
        errno = EADDRINUSE;
        fail("another daemon serves " + options_.path);
    }
    listener_ = memory::UniqueFd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    struct stat existing {};
    if (::lstat(options_.path.c_str(), &existing) == 0) {
        if (!S_ISSOCK(existing.st_mode)) {
            errno = EEXIST;
            fail(options_.path + " exists and is not a socket");
        }
        ::unlink(options_.path.c_str());
    }
    if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
        fail("bind " + options_.path);
    if (::chmod(options_.path.c_str(), options_.mode) != 0 ||
        ((options_.owner != static_cast<uid_t>(-1) || options_.group != static_cast<gid_t>(-1)) &&
         ::chown(options_.path.c_str(), options_.owner, options_.group) != 0))
        fail("permissions of " + options_.path);
    // Accepted sockets inherit SO_PASSCRED: every message then carries the
    // sender's pid and uid as the kernel knows them.
    int on = 1;
    if (::setsockopt(listener_.get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) != 0 ||
        ::listen(listener_.get(), SOMAXCONN) != 0)
        fail("listen " + options_.path);

    stop_fd_ = memory::UniqueFd(::eventfd(0, EFD_CLOEXEC));
    adopt_fd_ = memory::UniqueFd(::eventfd(0, EFD_CLOEXEC));
    if (!stop_fd_ || !adopt_fd_)
        fail("eventfd");
    if (int rc = io_uring_queue_init(256, &ring_, 0); rc < 0) {
        errno = -rc;
        fail("io_uring_queue_init");
    }
}

SocketServer::Impl::~Impl()
{
    ::unlink(options_.path.c_str());
    io_uring_queue_exit(&ring_);
}

void SocketServer::Impl::stop()
{
    std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(stop_fd_.get(), &one, sizeof(one));
}

// The submission ring is smaller than the number of completions one wait
// can bring, each of which re-arms something: when it is full, hand what it
// holds to the kernel and take the freed slot.
io_uring_sqe* SocketServer::Impl::next_sqe()
{
    for (;;) {
        if (io_uring_sqe* sqe = io_uring_get_sqe(&ring_))
            return sqe;
        if (int rc = io_uring_submit(&ring_); rc < 0 && rc != -EINTR && rc != -EBUSY)
            throw std::system_error(-rc, std::generic_category(), "io_uring_submit");
    }
}

void SocketServer::Impl::arm_accept()
{
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_accept(sqe, listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, tag(Event::accept, 0));
}

// Out of fds (or memory) the listener stays readable: retrying at once
// would spin. Try again a little later.
void SocketServer::Impl::arm_accept_retry()
{
    static __kernel_timespec delay{0, 100'000'000};
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_timeout(sqe, &delay, 0, 0);
    io_uring_sqe_set_data64(sqe, tag(Event::accept_retry, 0));
}

void SocketServer::Impl::arm_stop()
{
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_read(sqe, stop_fd_.get(), &stop_value_, sizeof(stop_value_), 0);
    io_uring_sqe_set_data64(sqe, tag(Event::stop, 0));
}

void SocketServer::Impl::arm_adopt()
{
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_read(sqe, adopt_fd_.get(), &adopt_value_, sizeof(adopt_value_), 0);
    io_uring_sqe_set_data64(sqe, tag(Event::adopt, 0));
}

void SocketServer::Impl::on_adopt()
{
    std::vector<std::shared_ptr<Connection>> adopted;
    {
        std::lock_guard guard(adopt_lock_);
        adopted.swap(adopted_);
    }
    arm_adopt();
    for (auto& conn : adopted) {
        arm_receive(*conn);
        connections_.emplace(conn->id, std::move(conn));
    }
}

void SocketServer::Impl::arm_receive(Connection& conn)
{
    conn.iov = {conn.buffer.data(), conn.buffer.size()};
    conn.msg = {};
    conn.msg.msg_iov = &conn.iov;
    conn.msg.msg_iovlen = 1;
    conn.msg.msg_control = conn.control.data();
    conn.msg.msg_controllen = conn.control.size();
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_recvmsg(sqe, conn.fd.get(), &conn.msg, 0);
    io_uring_sqe_set_data64(sqe, tag(Event::receive, conn.id));
}

void SocketServer::Impl::run()
{
    arm_accept();
    arm_stop();
    arm_adopt();
    while (!stopping_) {
        int rc = io_uring_submit_and_wait(&ring_, 1);
        if (rc < 0 && rc != -EINTR) {
            spdlog::error("socket loop: io_uring_submit_and_wait: {}", std::strerror(-rc));
            break;
        }
        io_uring_cqe* cqe;
        unsigned head;
        unsigned seen = 0;
        io_uring_for_each_cqe(&ring_, head, cqe)
        {
            ++seen;
            const std::uint64_t data = io_uring_cqe_get_data64(cqe);
            switch (static_cast<Event>(data & ((1u << kEventBits) - 1))) {
            case Event::accept:
                on_accept(cqe->res);
                break;
            case Event::receive:
                on_receive(data >> kEventBits, cqe->res);
                break;
            case Event::adopt:
                on_adopt();
                break;
            case Event::stop:
                stopping_ = true;
                break;
            case Event::accept_retry:
                arm_accept();
                break;
            }
        }
        io_uring_cq_advance(&ring_, seen);
    }
    // A pending receive holds its own reference to the socket until the
    // ring is torn down, so closing the fd alone would leave clients able
    // to send into a dead daemon for a moment: shut every connection down
    // first. The sessions end once their running ioctls finish; the
    // workers are joined when the server goes away.
    for (auto& [id, conn] : connections_)
        ::shutdown(conn->fd.get(), SHUT_RDWR);
    ::shutdown(listener_.get(), SHUT_RDWR);
    connections_.clear();
    std::lock_guard guard(adopt_lock_);
    adopted_.clear();
}

void SocketServer::Impl::on_accept(int res)
{
    if (res < 0) {
        // The client waiting in the backlog is taken on the next try.
        if (!accept_failing_)
            spdlog::warn("socket: accept: {}; retrying every 100 ms", std::strerror(-res));
        accept_failing_ = true;
        arm_accept_retry();
        return;
    }
    accept_failing_ = false;
    arm_accept();
    auto conn = std::make_shared<Connection>();
    conn->id = next_id_++;
    conn->fd = memory::UniqueFd(res);
    arm_receive(*conn);
    connections_.emplace(conn->id, std::move(conn));
}

void SocketServer::Impl::on_receive(std::uint64_t id, int res)
{
    auto it = connections_.find(id);
    if (it == connections_.end())
        return;
    std::shared_ptr<Connection> conn = it->second;
    // EOF: the client closed its last copy of the fd (or died); the
    // session goes when no other connection or running ioctl holds it.
    if (res <= 0 || (conn->msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
        if (res > 0)
            spdlog::warn("socket: connection {}: oversized message, closing it", id);
        conn.reset();
        close_connection(id);
        return;
    }
    auto message = std::make_unique<Message>();
    message->length = static_cast<std::size_t>(res);
    std::memcpy(message->bytes.data(), conn->buffer.data(), message->length);
    for (cmsghdr* c = CMSG_FIRSTHDR(&conn->msg); c; c = CMSG_NXTHDR(&conn->msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
            ucred cred;
            std::memcpy(&cred, CMSG_DATA(c), sizeof(cred));
            message->creds = {cred.pid, cred.uid};
        }
    }
    handle(std::move(conn), std::move(message));
}

// The loop's reference to a connection goes. A device file's last
// reference unbinds the device, which waits for its context's lock, held
// for as long as an ioctl of that context runs: a worker drops that one,
// never the loop.
void SocketServer::Impl::close_connection(std::uint64_t id)
{
    auto it = connections_.find(id);
    if (it == connections_.end())
        return;
    std::shared_ptr<Connection> conn = std::move(it->second);
    connections_.erase(it);
    if (conn->device || conn->file)
        workers_.submit([conn = std::move(conn)]() mutable { conn.reset(); });
}

// Protocol errors end the connection: a client that breaks the protocol is
// not a client we can answer meaningfully.
void SocketServer::Impl::handle(std::shared_ptr<Connection> conn,
                                std::unique_ptr<Message> message)
{
    ioasid_socket_hdr hdr;
    bool valid = message->length >= sizeof(hdr);
    if (valid) {
        std::memcpy(&hdr, message->bytes.data(), sizeof(hdr));
        valid = hdr.magic == IOASID_SOCKET_MAGIC &&
                (conn->version ? hdr.version == conn->version
                               : hdr.version >= IOASID_SOCKET_VERSION_MIN &&
                                     hdr.version <= IOASID_SOCKET_VERSION) &&
                message->creds.uid != static_cast<uid_t>(-1);
        if (valid && !conn->version)
            conn->version = hdr.version;
    }
    // Nothing may follow a RELEASE: a worker may be dropping conn->session,
    // which the loop then must not read or write.
    if (valid && conn->released)
        valid = false;
    if (valid) {
        switch (hdr.type) {
        case IOASID_SOCKET_OPEN:
            valid = !conn->open() && message->length == sizeof(hdr) && hdr.length == 0;
            if (valid)
                open_session(*conn, *message, hdr);
            break;
        case IOASID_SOCKET_JOIN:
            valid = !conn->open() && message->length == sizeof(ioasid_socket_join) &&
                    hdr.length == 0;
            if (valid)
                join_session(*conn, *message, hdr);
            break;
        case IOASID_SOCKET_OPEN_DEVICE:
            valid = !conn->open() && message->length == sizeof(ioasid_socket_open_device) &&
                    hdr.length == 0;
            if (valid)
                open_device(*conn, *message, hdr);
            break;
        case IOASID_SOCKET_IOCTL:
        case IOASID_SOCKET_IOCTL_FD:
        case IOASID_SOCKET_RELEASE:
        case IOASID_SOCKET_READ:
        case IOASID_SOCKET_WRITE: {
            // The fixed part of each. IOCTL on a context or a device,
            // IOCTL_FD on a device, RELEASE on a device, or (version 2) a
            // file or a context, READ and WRITE (version 2) on a file.
            const bool on_file = conn->version >= 2 && conn->file;
            std::size_t fixed = sizeof(ioasid_socket_hdr);
            switch (hdr.type) {
            case IOASID_SOCKET_IOCTL:
                fixed = sizeof(ioasid_socket_ioctl);
                valid = conn->session || conn->device;
                break;
            case IOASID_SOCKET_IOCTL_FD:
                fixed = sizeof(ioasid_socket_ioctl_fd);
                valid = bool(conn->device);
                break;
            case IOASID_SOCKET_RELEASE:
                valid = (conn->device || on_file || (conn->version >= 2 && conn->session)) &&
                        hdr.length == 0;
                conn->released = valid;
                break;
            case IOASID_SOCKET_READ:
                fixed = sizeof(ioasid_socket_read);
                valid = on_file && hdr.length == 0;
                break;
            default: // WRITE
                valid = on_file && hdr.length <= IOASID_SOCKET_MAX_INLINE;
                break;
            }
            valid = valid && message->length >= fixed && message->length - fixed == hdr.length;
            if (valid) {
                if (!conn->file)
                    message->process = conn->callers().get(message->creds.pid, message->creds.uid);
                std::lock_guard guard(conn->queue_lock);
                // A client waits for each answer (the transport never has
                // more than one call in flight per process); one that
                // piles up requests without reading is not a client.
                valid = conn->queue.size() < kMaxQueued;
                if (!valid)
                    break;
                conn->queue.push_back(std::move(message));
                if (!conn->running) {
                    conn->running = true;
                    workers_.submit([this, conn] { drain(conn); });
                }
            }
            break;
        }
        default:
            valid = false;
        }
    }
    if (!valid) {
        spdlog::warn("socket: connection {}: protocol error, closing it", conn->id);
        const std::uint64_t id = conn->id;
        conn.reset();
        close_connection(id);
        return;
    }
    arm_receive(*conn);
}

void SocketServer::Impl::reply_opened(Connection& conn, std::uint32_t seq, int result,
                                      const Token* token)
{
    ioasid_socket_opened reply{};
    fill_hdr(reply.hdr, IOASID_SOCKET_OPEN, seq, 0, conn.version);
    reply.result = result;
    if (conn.session)
        reply.context_id = conn.session->context().serial();
    if (token)
        std::memcpy(reply.token, token->data(), token->size());
    // The client waits for exactly this answer, so the socket has room.
    [[maybe_unused]] ssize_t n = ::send(conn.fd.get(), &reply, sizeof(reply),
                                        MSG_DONTWAIT | MSG_NOSIGNAL);
}

void SocketServer::Impl::open_session(Connection& conn, const Message& message,
                                      const ioasid_socket_hdr& hdr)
{
    auto session = std::make_shared<Session>(
        services_, core::ContextOrigin{"socket", message.creds.uid, message.creds.pid});
    Token token;
    if (!new_token(&token, Joinable{session, {}})) {
        reply_opened(conn, hdr.seq, -errno, nullptr);
        return;
    }
    conn.session = std::move(session);
    reply_opened(conn, hdr.seq, 0, &token);
}

// A random token for `target`, registered; false with errno set when the
// kernel gives no randomness.
bool SocketServer::Impl::new_token(Token* token, const Joinable& target)
{
    if (::getrandom(token->data(), token->size(), 0) != static_cast<ssize_t>(token->size()))
        return false;
    std::lock_guard guard(tokens_lock_);
    std::erase_if(tokens_, [](const auto& entry) { return entry.second.expired(); });
    tokens_.emplace(*token, target);
    return true;
}

// The VFIO cdev of a device, by its node's name. Any client of the socket
// may open any device (a device reaches only the memory of whoever binds
// it); binding gives it to one context at a time.
void SocketServer::Impl::open_device(Connection& conn, const Message& message,
                                     const ioasid_socket_hdr& hdr)
{
    ioasid_socket_open_device request;
    std::memcpy(&request, message.bytes.data(), sizeof(request));
    const std::size_t len = strnlen(request.name, sizeof(request.name));
    core::EmulatedDevice* device =
        len < sizeof(request.name) ? services_.hardware.find_vfio(std::string_view(request.name, len))
                                   : nullptr;
    if (!device) {
        reply_opened(conn, hdr.seq, -ENOENT, nullptr);
        return;
    }
    auto file = std::make_shared<DeviceFile>(*device);
    Token token;
    if (!new_token(&token, Joinable{{}, file})) {
        reply_opened(conn, hdr.seq, -errno, nullptr);
        return;
    }
    spdlog::debug("device {} ({}) opened by pid {} uid {} over socket", device->name,
                  device->vfio_name, message.creds.pid, message.creds.uid);
    conn.device = std::move(file);
    reply_opened(conn, hdr.seq, 0, &token);
}

// The token stands for the open file: whoever holds it (a forked child, a
// program exec'ed with the fd) shares the context, as the kernel's file
// is shared.
void SocketServer::Impl::join_session(Connection& conn, const Message& message,
                                      const ioasid_socket_hdr& hdr)
{
    ioasid_socket_join join;
    std::memcpy(&join, message.bytes.data(), sizeof(join));
    Token token;
    std::memcpy(token.data(), join.token, token.size());
    {
        std::lock_guard guard(tokens_lock_);
        auto it = tokens_.find(token);
        if (it != tokens_.end()) {
            conn.session = it->second.session.lock();
            conn.device = it->second.device.lock();
            // A file joins only on a connection that speaks of files.
            if (conn.version >= 2)
                conn.file = it->second.file.lock();
        }
    }
    reply_opened(conn, hdr.seq, conn.open() ? 0 : -ENOENT, conn.open() ? &token : nullptr);
}

// Runs on a worker: the connection's queued ioctls, one after another.
void SocketServer::Impl::drain(const std::shared_ptr<Connection>& conn)
{
    for (;;) {
        std::unique_ptr<Message> message;
        {
            std::lock_guard guard(conn->queue_lock);
            if (conn->queue.empty()) {
                conn->running = false;
                return;
            }
            message = std::move(conn->queue.front());
            conn->queue.pop_front();
        }
        serve_ioctl(*conn, *message);
    }
}

void SocketServer::Impl::serve_ioctl(Connection& conn, Message& message)
{
    ioasid_socket_ioctl request;
    std::memcpy(&request, message.bytes.data(), sizeof(request));
    if (request.hdr.type == IOASID_SOCKET_RELEASE) {
        serve_release(conn, request.hdr);
        return;
    }
    if (request.hdr.type == IOASID_SOCKET_READ || request.hdr.type == IOASID_SOCKET_WRITE) {
        serve_file_io(conn, message);
        return;
    }
    ioasid_socket_ioctl_fd fd_info;
    std::size_t fixed = sizeof(request);
    if (request.hdr.type == IOASID_SOCKET_IOCTL_FD) {
        std::memcpy(&fd_info, message.bytes.data(), sizeof(fd_info));
        fixed = sizeof(fd_info);
    }
    std::span<std::byte> inline_bytes =
        std::span(message.bytes).subspan(fixed, request.hdr.length);

    const Credentials& creds = message.creds;
    auto caller = std::make_shared<memory::RequestCaller>(std::move(message.process), creds.uid,
                                                          creds.pid, request.arg, inline_bytes);
    int rc;
    if (conn.session) {
        if (conn.version >= 2)
            caller->set_file_desk(this);
        rc = conn.session->ioctl(request.cmd, caller, request.arg, creds.pid);
    } else {
        const ioasid_socket_ioctl_fd* info =
            request.hdr.type == IOASID_SOCKET_IOCTL_FD ? &fd_info : nullptr;
        auto resolve = [&](std::int32_t fd, std::shared_ptr<core::Context>* ctx) {
            return resolve_iommufd(info, fd, ctx);
        };
        rc = vfio_ioctl(conn.device->device, request.cmd, caller, request.arg, creds.pid, resolve);
    }

    // A file staged by a failed ioctl is dropped here, outside the
    // context's lock its end may take.
    memory::RequestCaller::StagedFile staged = caller->take_staged_file();
    const std::uint64_t number_offset = staged.number_addr - request.arg;
    memory::UniqueFd client_end;
    Token token{};
    if (rc == 0 && staged.file)
        rc = hand_over(conn, std::move(staged), &client_end, &token);
    staged = {};

    struct {
        ioasid_socket_file_reply reply;
        std::array<std::byte, IOASID_SOCKET_MAX_INLINE> bytes;
    } out{};
    const std::span<const std::byte> unsent = caller->unsent();
    fill_hdr(out.reply.reply.hdr, client_end ? IOASID_SOCKET_IOCTL_FILE : IOASID_SOCKET_IOCTL,
             request.hdr.seq, static_cast<std::uint32_t>(unsent.size()), conn.version);
    out.reply.reply.result = rc;
    out.reply.reply.out_offset = caller->unsent_offset();
    std::size_t reply_fixed = sizeof(out.reply.reply);
    if (client_end) {
        reply_fixed = sizeof(out.reply);
        out.reply.number_offset = static_cast<std::uint32_t>(number_offset);
        std::memcpy(out.reply.token, token.data(), token.size());
    }
    // The bytes follow the fixed part, whichever it is.
    std::memcpy(reinterpret_cast<std::byte*>(&out) + reply_fixed, unsent.data(), unsent.size());
    send_reply(conn, &out, reply_fixed + unsent.size(), client_end.get());
}

// The client is waiting for the answer, so its socket has room; one that
// does not read it must not hold this worker, and one that went away must
// not take the daemon with it (MSG_NOSIGNAL). `fd`, if any, travels with it.
void SocketServer::Impl::send_reply(Connection& conn, const void* reply, std::size_t length, int fd)
{
    iovec iov{const_cast<void*>(reply), length};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) std::array<std::byte, CMSG_SPACE(sizeof(int))> control{};
    if (fd >= 0) {
        msg.msg_control = control.data();
        msg.msg_controllen = control.size();
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    if (::sendmsg(conn.fd.get(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno == EAGAIN) {
        if (conn.session)
            spdlog::warn("socket: a client of context {} does not read its answers; closing it",
                         conn.session->context().serial());
        else if (conn.device)
            spdlog::warn("socket: a client of device {} does not read its answers; closing it",
                         conn.device->device.device().vfio_name);
        else
            spdlog::warn("socket: a client of a file does not read its answers; closing it");
        ::shutdown(conn.fd.get(), SHUT_RDWR);
    }
}

// VFIO_DEVICE_BIND_IOMMUFD's fd number, as the client described it: only
// a token of one of this server's contexts names a context (see
// uapi/ioasid/socket.h for why that is safe). A bind that came without a
// description, or whose struct names another number than the one
// described, names no open fd.
int SocketServer::Impl::resolve_iommufd(const ioasid_socket_ioctl_fd* fd_info, std::int32_t fd,
                                        std::shared_ptr<core::Context>* ctx)
{
    if (!fd_info || fd_info->fd != fd)
        return -EBADF;
    switch (fd_info->fd_kind) {
    case IOASID_SOCKET_FD_CONTEXT: {
        Token token;
        std::memcpy(token.data(), fd_info->token, token.size());
        std::shared_ptr<Session> session;
        {
            std::lock_guard guard(tokens_lock_);
            auto it = tokens_.find(token);
            if (it != tokens_.end())
                session = it->second.session.lock();
        }
        if (!session)
            return -EBADFD; // a device file's token, or none of ours
        *ctx = context_of(session);
        return 0;
    }
    case IOASID_SOCKET_FD_OTHER:
        return -EBADFD;
    default:
        return -EBADF;
    }
}

// The client's last close of a device file, a file or a context that it
// alone holds: unbind, drop the file, or let go of the context now (tearing
// it down if this was its last holder), so that its close() is complete
// when it returns, then say so.
void SocketServer::Impl::serve_release(Connection& conn, const ioasid_socket_hdr& hdr)
{
    if (conn.device) {
        conn.device->device.unbind();
    } else if (conn.file) {
        conn.file->release();
    } else {
        // The loop reads conn.session no more once it accepted the RELEASE.
        std::shared_ptr<Session> dropped = std::move(conn.session);
        dropped.reset();
    }
    ioasid_socket_ioctl_reply reply{};
    fill_hdr(reply.hdr, IOASID_SOCKET_RELEASE, hdr.seq, 0, conn.version);
    reply.result = 0;
    [[maybe_unused]] ssize_t n = ::send(conn.fd.get(), &reply, sizeof(reply), MSG_DONTWAIT | MSG_NOSIGNAL);
}

// read(2) and write(2) on a file, with no lock held (the file takes its
// context's lock itself). A released file reads as a closed descriptor.
void SocketServer::Impl::serve_file_io(Connection& conn, const Message& message)
{
    ioasid_socket_hdr hdr;
    std::memcpy(&hdr, message.bytes.data(), sizeof(hdr));
    struct {
        ioasid_socket_ioctl_reply reply;
        std::array<std::byte, IOASID_SOCKET_MAX_INLINE> bytes;
    } out{};
    std::shared_ptr<core::ClientFile> file = conn.file->get();
    ssize_t rc = -EBADF;
    std::size_t returned = 0;
    if (hdr.type == IOASID_SOCKET_READ) {
        ioasid_socket_read request;
        std::memcpy(&request, message.bytes.data(), sizeof(request));
        const std::size_t count = std::min<std::size_t>(request.count, out.bytes.size());
        if (file)
            rc = file->read(std::span(out.bytes).first(count), request.count);
        // A file that claims more than it was given is not believed.
        if (rc > static_cast<ssize_t>(count))
            rc = -EIO;
        returned = rc > 0 ? static_cast<std::size_t>(rc) : 0;
    } else if (file) {
        rc = file->write(std::span(message.bytes).subspan(sizeof(hdr), hdr.length));
    }
    fill_hdr(out.reply.hdr, static_cast<ioasid_socket_msg>(hdr.type), hdr.seq,
             static_cast<std::uint32_t>(returned), conn.version);
    out.reply.result = static_cast<std::int32_t>(rc);
    send_reply(conn, &out, sizeof(out.reply) + returned);
    // The client drops any FILE_READY it finds while it waits for a reply,
    // so what is still readable is said again after each: poll() must not
    // miss what a read() would find. (This connection's RELEASE waits for
    // this to return: holding the file so long does not delay a last close.)
    if (file && file->readable())
        send_readable(conn.fd.get(), conn.version, /*bounded=*/false);
}

// The kernel's fd_install() for a file an ioctl made: a new connection
// stands for it, whose client end goes to the client with the reply. The
// file is known by that end from now on, so the client may name it in its
// next ioctl; the loop starts serving it when it takes the connection in.
int SocketServer::Impl::hand_over(Connection& conn, memory::RequestCaller::StagedFile staged,
                                  memory::UniqueFd* client_end, Token* token)
{
    int ends[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends) != 0)
        return -errno;
    memory::UniqueFd ours(ends[0]);
    memory::UniqueFd theirs(ends[1]);
    int on = 1;
    struct stat st {};
    if (::setsockopt(ours.get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) != 0 ||
        ::fstat(theirs.get(), &st) != 0)
        return -errno;

    // Members go in reverse order: the file before its session.
    struct FileWithSession {
        std::shared_ptr<Session> session;
        std::shared_ptr<core::ClientFile> file;
    };
    auto owned = std::make_shared<FileWithSession>(FileWithSession{conn.session, std::move(staged.file)});
    auto handed = std::make_shared<HandedFile>();
    handed->file = std::shared_ptr<core::ClientFile>(owned, owned->file.get());
    if (!new_token(token, Joinable{{}, {}, handed}))
        return -errno;
    {
        std::lock_guard guard(files_lock_);
        std::erase_if(files_, [](const auto& entry) { return entry.second.expired(); });
        files_[FileKey{st.st_dev, st.st_ino}] = handed;
    }
    auto file_conn = std::make_shared<Connection>();
    file_conn->id = next_id_++;
    file_conn->fd = std::move(ours);
    file_conn->version = conn.version;
    // The signal holds a descriptor of its own, never the connection: it
    // may run under the context's lock, which the connection's end takes.
    file_conn->ready = std::make_shared<memory::UniqueFd>(::fcntl(file_conn->fd.get(), F_DUPFD_CLOEXEC, 0));
    if (auto file = handed->get(); file && *file_conn->ready)
        file->set_readable_signal([weak = std::weak_ptr<const memory::UniqueFd>(file_conn->ready),
                                   version = file_conn->version] {
            if (auto fd = weak.lock())
                send_readable(fd->get(), version, /*bounded=*/true);
        });
    file_conn->file = std::move(handed);
    {
        std::lock_guard guard(adopt_lock_);
        adopted_.push_back(std::move(file_conn));
    }
    std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(adopt_fd_.get(), &one, sizeof(one));
    *client_end = std::move(theirs);
    return 0;
}

std::shared_ptr<core::ClientFile> SocketServer::Impl::file_of(int fd)
{
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
        return nullptr;
    std::shared_ptr<HandedFile> handed;
    {
        std::lock_guard guard(files_lock_);
        auto it = files_.find(FileKey{st.st_dev, st.st_ino});
        if (it != files_.end())
            handed = it->second.lock();
    }
    return handed ? handed->get() : nullptr;
}

SocketServer::SocketServer(core::CoreServices& services, SocketOptions options)
    : impl_(std::make_unique<Impl>(services, std::move(options)))
{
}

SocketServer::~SocketServer() = default;

void SocketServer::run()
{
    impl_->run();
}

void SocketServer::stop()
{
    impl_->stop();
}

} // namespace ioasid::frontends
