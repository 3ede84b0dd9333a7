#define FUSE_USE_VERSION 312
#include "cuse_server.h"

#include <cuse_lowlevel.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <ioasid/socket.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <deque>
#include <map>
#include <set>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "dispatch/dispatcher.h"
#include "frontends/session.h"
#include "memory/request_caller.h"
#include "memory/waiting_caller.h"

namespace ioasid::frontends {
namespace {

// Wakes loop threads out of read(/dev/cuse) at shutdown; installed without
// SA_RESTART so the read returns EINTR.
constexpr int kWakeSignal = SIGUSR1;
void ignore_signal(int) {}

constexpr std::size_t kMaxThreads = 64;

} // namespace

class CuseServer::Impl {
public:
    Impl(core::CoreServices& services, CuseOptions options);
    ~Impl();
    void run();
    void stop();
    bool wait_until_serving(std::chrono::milliseconds timeout);

private:
    static Impl& self(fuse_req_t req) { return *static_cast<Impl*>(fuse_req_userdata(req)); }
    static void on_init_done(void* userdata);
    static void on_open(fuse_req_t req, fuse_file_info* fi);
    static void on_release(fuse_req_t req, fuse_file_info* fi);
    static void on_read(fuse_req_t req, size_t, off_t, fuse_file_info*);
    static void on_write(fuse_req_t req, const char*, size_t, off_t, fuse_file_info*);
    static void on_ioctl(fuse_req_t req, int cmd, void* arg, fuse_file_info* fi, unsigned flags,
                         const void* in_buf, size_t in_bufsz, size_t out_bufsz);
    void ioctl_by_retry(fuse_req_t req, Session& session, unsigned cmd, std::uint64_t arg,
                        const fuse_ctx& who, const void* in_buf, size_t in_bufsz,
                        size_t out_bufsz);

    void loop_thread();

    core::CoreServices& services_;
    CuseOptions options_;
    fuse_session* session_ = nullptr;
    int cuse_fd_ = -1;

    std::mutex sessions_lock_;
    std::map<Session*, std::unique_ptr<Session>> sessions_; // open files

    std::mutex threads_lock_;
    std::deque<std::thread> threads_; // deque: joining one while others start
    std::set<pthread_t> running_;     // those still in loop_thread()
    std::size_t idle_ = 0;
    std::atomic<bool> stopping_{false};

    std::mutex serving_lock_;
    std::condition_variable serving_changed_;
    bool serving_ = false; // the kernel made the node
};

CuseServer::Impl::Impl(core::CoreServices& services, CuseOptions options)
    : services_(services), options_(std::move(options))
{
    static const cuse_lowlevel_ops ops = [] {
        cuse_lowlevel_ops o{};
        o.init_done = on_init_done;
        o.open = on_open;
        o.release = on_release;
        o.read = on_read;
        o.write = on_write;
        o.ioctl = on_ioctl;
        // No poll: the kernel then gives the default mask, as it does for
        // the iommufd file, which has no poll either.
        return o;
    }();
    const std::string devinfo = "DEVNAME=" + options_.devname;
    const char* dev_info_argv[] = {devinfo.c_str()};
    cuse_info ci{};
    ci.dev_info_argc = 1;
    ci.dev_info_argv = dev_info_argv;
    // iommufd commands are _IO() numbers that carry no size; only an
    // unrestricted CUSE ioctl lets the daemon reach the struct.
    ci.flags = CUSE_UNRESTRICTED_IOCTL;

    const char* argv[] = {"ioasidd", nullptr};
    fuse_args args = FUSE_ARGS_INIT(1, const_cast<char**>(argv));
    session_ = cuse_lowlevel_new(&args, &ci, &ops, this);
    // Parsing may have copied the arguments into memory of its own.
    fuse_opt_free_args(&args);
    if (!session_) {
        errno = ENOMEM;
        throw std::system_error(errno, std::generic_category(), "cuse_lowlevel_new");
    }
    cuse_fd_ = ::open("/dev/cuse", O_RDWR | O_CLOEXEC);
    if (cuse_fd_ < 0) {
        int err = errno;
        fuse_session_destroy(session_);
        throw std::system_error(err, std::generic_category(), "open /dev/cuse");
    }
    const std::string fd_path = "/dev/fd/" + std::to_string(cuse_fd_);
    if (fuse_session_mount(session_, fd_path.c_str()) != 0) {
        ::close(cuse_fd_);
        fuse_session_destroy(session_);
        throw std::system_error(EIO, std::generic_category(), "fuse_session_mount /dev/cuse");
    }

    struct sigaction sa{};
    sa.sa_handler = ignore_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(kWakeSignal, &sa, nullptr);
}

CuseServer::Impl::~Impl()
{
    // The kernel sends no RELEASE once the channel closes: every file still
    // open is released here, before the node goes.
    {
        std::lock_guard guard(sessions_lock_);
        sessions_.clear();
    }
    fuse_session_unmount(session_); // closes /dev/cuse: the node disappears
    fuse_session_destroy(session_);
}

void CuseServer::Impl::on_init_done(void* userdata)
{
    auto& self = *static_cast<Impl*>(userdata);
    // The kernel creates the node root-owned 0600; set what was asked.
    const std::string node = "/dev/" + self.options_.devname;
    if (::chmod(node.c_str(), self.options_.mode) != 0 ||
        ((self.options_.owner != static_cast<uid_t>(-1) ||
          self.options_.group != static_cast<gid_t>(-1)) &&
         ::chown(node.c_str(), self.options_.owner, self.options_.group) != 0))
        spdlog::warn("cuse: cannot set owner/mode of {}: {}", node, std::strerror(errno));
    {
        std::lock_guard guard(self.serving_lock_);
        self.serving_ = true;
    }
    self.serving_changed_.notify_all();
}

bool CuseServer::Impl::wait_until_serving(std::chrono::milliseconds timeout)
{
    std::unique_lock guard(serving_lock_);
    return serving_changed_.wait_for(guard, timeout, [this] { return serving_; });
}

void CuseServer::Impl::on_open(fuse_req_t req, fuse_file_info* fi)
{
    Impl& self = Impl::self(req);
    const fuse_ctx* who = fuse_req_ctx(req);
    auto session = std::make_unique<Session>(
        self.services_, core::ContextOrigin{"cuse", who->uid, who->pid});
    fi->fh = reinterpret_cast<std::uint64_t>(session.get());
    fi->nonseekable = 1;
    {
        std::lock_guard guard(self.sessions_lock_);
        Session* key = session.get();
        self.sessions_.emplace(key, std::move(session));
    }
    fuse_reply_open(req, fi);
}

// The last close of the file, also when its process was killed.
void CuseServer::Impl::on_release(fuse_req_t req, fuse_file_info* fi)
{
    Impl& self = Impl::self(req);
    std::unique_ptr<Session> session;
    {
        std::lock_guard guard(self.sessions_lock_);
        auto it = self.sessions_.find(reinterpret_cast<Session*>(fi->fh));
        if (it != self.sessions_.end()) {
            session = std::move(it->second);
            self.sessions_.erase(it);
        }
    }
    session.reset(); // outside the lock: tearing down a context takes time
    fuse_reply_err(req, 0);
}

// The kernel's iommufd file has neither read nor write: EINVAL.
void CuseServer::Impl::on_read(fuse_req_t req, size_t, off_t, fuse_file_info*)
{
    fuse_reply_err(req, EINVAL);
}

void CuseServer::Impl::on_write(fuse_req_t req, const char*, size_t, off_t, fuse_file_info*)
{
    fuse_reply_err(req, EINVAL);
}

void CuseServer::Impl::on_ioctl(fuse_req_t req, int cmd, void* arg, fuse_file_info* fi,
                                unsigned, const void* in_buf, size_t in_bufsz, size_t out_bufsz)
{
    Impl& self = Impl::self(req);
    auto& session = *reinterpret_cast<Session*>(fi->fh);
    const fuse_ctx who = *fuse_req_ctx(req);
    const auto ucmd = static_cast<unsigned>(cmd);
    const auto uarg = reinterpret_cast<std::uint64_t>(arg);

    // Nothing to decode: answer at once, as the kernel does for a number
    // outside its table, without looking for the caller.
    if (!dispatch::known(ucmd)) {
        fuse_reply_err(req, ENOTTY);
        return;
    }
    // One round trip: reach the caller's memory directly, through the
    // thread the kernel names (its pid is 0 when it lives in a pid
    // namespace we cannot see).
    if (in_bufsz == 0 && out_bufsz == 0) {
        if (std::shared_ptr<memory::ProcessCaller> process =
                session.callers().get(who.pid, who.uid)) {
            auto caller = std::make_shared<memory::WaitingCaller>(std::move(process));
            const int rc = session.ioctl(ucmd, caller, uarg, who.pid);
            if (rc < 0)
                fuse_reply_err(req, -rc);
            else
                fuse_reply_ioctl(req, rc, nullptr, 0);
            return;
        }
    }
    self.ioctl_by_retry(req, session, ucmd, uarg, who, in_buf, in_bufsz, out_bufsz);
}

// The fallback, FUSE_IOCTL_RETRY: the kernel copies the struct in and out
// for us, in three round trips. Nothing is kept between them; each step is
// told apart by the sizes the kernel hands over. Only the struct itself is
// reachable this way, so commands that point at more client memory (maps,
// range arrays) fail with EFAULT, as they must without access to it.
void CuseServer::Impl::ioctl_by_retry(fuse_req_t req, Session& session, unsigned cmd,
                                      std::uint64_t arg, const fuse_ctx& who, const void* in_buf,
                                      size_t in_bufsz, size_t out_bufsz)
{
    void* user = reinterpret_cast<void*>(arg);
    if (in_bufsz == 0) {
        iovec size_iov{user, sizeof(std::uint32_t)};
        fuse_reply_ioctl_retry(req, &size_iov, 1, nullptr, 0);
        return;
    }
    if (in_bufsz == sizeof(std::uint32_t) && out_bufsz == 0) {
        std::uint32_t size;
        std::memcpy(&size, in_buf, sizeof(size));
        const size_t len = std::clamp<size_t>(size, sizeof(size), IOASID_SOCKET_MAX_INLINE);
        iovec iov{user, len};
        fuse_reply_ioctl_retry(req, &iov, 1, &iov, 1);
        return;
    }
    std::vector<std::byte> bytes(in_bufsz);
    std::memcpy(bytes.data(), in_buf, in_bufsz);
    auto caller =
        std::make_shared<memory::RequestCaller>(nullptr, who.uid, who.pid, arg, std::span(bytes));
    const int rc = session.ioctl(cmd, caller, arg, who.pid);
    // The kernel copies the reply from the start of the struct: send up to
    // the last byte written (unwritten bytes go back unchanged).
    const std::span<const std::byte> unsent = caller->unsent();
    const size_t out = unsent.empty() ? 0 : std::min(out_bufsz, caller->unsent_offset() + unsent.size());
    if (rc < 0 && out == 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_ioctl(req, rc, bytes.data(), out);
}

// As libfuse's own multi-threaded loop: when the last idle thread takes a
// request, another one starts, so a slow request never holds up the others.
void CuseServer::Impl::loop_thread()
{
    {
        std::lock_guard guard(threads_lock_);
        running_.insert(::pthread_self());
    }
    fuse_buf buf{};
    while (!stopping_ && !fuse_session_exited(session_)) {
        {
            std::lock_guard guard(threads_lock_);
            ++idle_;
        }
        const int res = fuse_session_receive_buf(session_, &buf);
        {
            std::lock_guard guard(threads_lock_);
            --idle_;
            if (res > 0 && idle_ == 0 && threads_.size() < kMaxThreads && !stopping_)
                threads_.emplace_back([this] { loop_thread(); });
        }
        if (res == -EINTR || res == -EAGAIN)
            continue;
        if (res <= 0) {
            // 0 or ENODEV: the kernel ended the channel (aborted via sysfs).
            if (res < 0 && res != -ENODEV)
                spdlog::error("cuse: receiving a request: {}", std::strerror(-res));
            fuse_session_exit(session_);
            break;
        }
        fuse_session_process_buf(session_, &buf);
    }
    std::free(buf.mem);
    std::lock_guard guard(threads_lock_);
    running_.erase(::pthread_self());
}

void CuseServer::Impl::run()
{
    {
        std::lock_guard guard(threads_lock_);
        threads_.emplace_back([this] { loop_thread(); });
    }
    // Threads start more threads; wait until they have all stopped.
    for (std::size_t joined = 0;; ++joined) {
        std::thread* thread;
        {
            std::lock_guard guard(threads_lock_);
            if (joined == threads_.size())
                break;
            thread = &threads_[joined];
        }
        thread->join();
    }
}

// A thread may be between its check of `stopping_` and its read() when the
// signal comes, and would then sleep through it: signal until all are out.
void CuseServer::Impl::stop()
{
    stopping_ = true;
    fuse_session_exit(session_);
    for (int attempt = 0; attempt < 500; ++attempt) {
        {
            std::lock_guard guard(threads_lock_);
            if (running_.empty())
                return;
            for (pthread_t thread : running_)
                ::pthread_kill(thread, kWakeSignal);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    spdlog::warn("cuse: loop threads did not stop");
}

CuseServer::CuseServer(core::CoreServices& services, CuseOptions options)
    : impl_(std::make_unique<Impl>(services, std::move(options)))
{
}

CuseServer::~CuseServer() = default;

void CuseServer::run()
{
    impl_->run();
}

void CuseServer::stop()
{
    impl_->stop();
}

bool CuseServer::wait_until_serving(std::chrono::milliseconds timeout)
{
    return impl_->wait_until_serving(timeout);
}

} // namespace ioasid::frontends
