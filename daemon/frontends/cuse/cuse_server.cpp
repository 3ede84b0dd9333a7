#define FUSE_USE_VERSION 312
#include "cuse_server.h"

#include <cuse_lowlevel.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <ioasid/emu.h>
#include <ioasid/socket.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <system_error>
#include <thread>
#include <vector>

#include "dispatch/dispatcher.h"
#include "dispatch/vfio_device.h"
#include "frontends/session.h"
#include "memory/request_caller.h"
#include "memory/waiting_caller.h"

namespace ioasid::frontends {
namespace {

// Wakes loop threads out of read(/dev/cuse) at shutdown; installed without
// SA_RESTART so the read returns EINTR.
constexpr int kWakeSignal = SIGUSR1;
void ignore_signal(int) {}

constexpr std::size_t kMaxThreads = 64; // per node

// What the daemon asks its own iommufd node, on its duplicate of a client's
// descriptor, to learn which open file that descriptor is (see
// resolve_iommufd()). A number of our own type that names no command; from
// anyone but the daemon thread waiting for the answer it is ENOTTY, as any
// unknown number.
constexpr unsigned kWhoAmI = _IO(IOASID_EMU_TYPE, 0xff);

// The device number the kernel gave the CUSE device `devname`, as sysfs
// shows it (the kernel stores a '/' of the name as '!'); 0 when unknown.
dev_t sysfs_devt(std::string devname)
{
    std::replace(devname.begin(), devname.end(), '/', '!');
    std::ifstream in("/sys/class/cuse/" + devname + "/dev");
    unsigned major = 0, minor = 0;
    char colon = 0;
    if (!(in >> major >> colon >> minor) || colon != ':')
        return 0;
    return makedev(major, minor);
}

} // namespace

class CuseServer::Impl {
public:
    Impl(core::CoreServices& services, CuseOptions options);
    ~Impl();
    void run();
    void stop();
    bool wait_until_serving(std::chrono::milliseconds timeout);

private:
    // One CUSE device: its own channel (an open of /dev/cuse) and loop
    // threads. The first is the iommufd node; then one VFIO cdev per
    // emulated device.
    struct Node {
        Impl* server = nullptr;
        std::string devname; // the node is /dev/<devname>
        core::EmulatedDevice* device = nullptr; // nullptr: the iommufd node
        fuse_session* session = nullptr;

        std::mutex threads_lock;
        std::deque<std::thread> threads; // deque: joining one while others start
        std::set<pthread_t> running;     // those still in loop_thread()
        std::size_t idle = 0;
        std::atomic<bool> stopping{false};

        // Under the server's serving_lock_.
        bool serving = false; // the kernel made the node
        bool ended = false;   // the channel ended (before serving: refused)
        std::atomic<dev_t> devt{0};
    };

    // An open file of a VFIO node.
    struct VfioFile {
        explicit VfioFile(core::EmulatedDevice& emulated) : device(emulated) {}
        dispatch::VfioDevice device;
        memory::CallerCache callers;
    };

    using Serve = std::function<int(const std::shared_ptr<memory::Caller>&)>;

    static Node& node_of(fuse_req_t req) { return *static_cast<Node*>(fuse_req_userdata(req)); }
    void open_node(Node& node, const cuse_lowlevel_ops& ops);
    void close_node(Node& node);
    static void on_init_done(void* userdata);

    // The iommufd node.
    static void on_open(fuse_req_t req, fuse_file_info* fi);
    static void on_release(fuse_req_t req, fuse_file_info* fi);
    static void on_read(fuse_req_t req, size_t, off_t, fuse_file_info*);
    static void on_write(fuse_req_t req, const char*, size_t, off_t, fuse_file_info*);
    static void on_ioctl(fuse_req_t req, int cmd, void* arg, fuse_file_info* fi, unsigned flags,
                         const void* in_buf, size_t in_bufsz, size_t out_bufsz);
    void answer_whoami(fuse_req_t req, fuse_file_info* fi);

    // The VFIO nodes.
    static void on_vfio_open(fuse_req_t req, fuse_file_info* fi);
    static void on_vfio_release(fuse_req_t req, fuse_file_info* fi);
    static void on_vfio_read(fuse_req_t req, size_t, off_t, fuse_file_info*);
    static void on_vfio_write(fuse_req_t req, const char*, size_t, off_t, fuse_file_info*);
    static void on_vfio_ioctl(fuse_req_t req, int cmd, void* arg, fuse_file_info* fi,
                              unsigned flags, const void* in_buf, size_t in_bufsz,
                              size_t out_bufsz);
    [[nodiscard]] int resolve_iommufd(memory::Caller& caller, std::int32_t fd,
                                      std::shared_ptr<core::Context>* ctx);

    // Runs one ioctl whose struct `serve` reads through the caller it gets.
    void serve_ioctl(fuse_req_t req, memory::CallerCache& callers, std::uint64_t arg,
                     const void* in_buf, size_t in_bufsz, size_t out_bufsz, const Serve& serve);
    void serve_by_retry(fuse_req_t req, std::uint64_t arg, const fuse_ctx& who,
                        const void* in_buf, size_t in_bufsz, size_t out_bufsz,
                        const Serve& serve);

    void loop_thread(Node& node);
    void start_node(Node& node);
    void join_node(Node& node);
    void stop_node(Node& node);

    core::CoreServices& services_;
    CuseOptions options_;
    std::vector<std::unique_ptr<Node>> nodes_; // [0]: the iommufd node

    std::mutex sessions_lock_;
    // Open files of the iommufd node. A VFIO file bound to one holds a
    // reference too, so a context outlives its last close while a device
    // is bound to it, as the kernel's file does.
    std::map<Session*, std::shared_ptr<Session>> sessions_;

    std::mutex vfio_files_lock_;
    std::map<VfioFile*, std::unique_ptr<VfioFile>> vfio_files_;

    // Daemon threads waiting for their kWhoAmI answer, by thread id, and
    // the session it named. Taken before sessions_lock_.
    std::mutex whoami_lock_;
    std::map<pid_t, std::shared_ptr<Session>> whoami_;

    std::mutex serving_lock_;
    std::condition_variable serving_changed_;
};

CuseServer::Impl::Impl(core::CoreServices& services, CuseOptions options)
    : services_(services), options_(std::move(options))
{
    static const cuse_lowlevel_ops iommufd_ops = [] {
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
    static const cuse_lowlevel_ops vfio_ops = [] {
        cuse_lowlevel_ops o{};
        o.init_done = on_init_done;
        o.open = on_vfio_open;
        o.release = on_vfio_release;
        o.read = on_vfio_read;
        o.write = on_vfio_write;
        o.ioctl = on_vfio_ioctl;
        return o;
    }();

    struct sigaction sa{};
    sa.sa_handler = ignore_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(kWakeSignal, &sa, nullptr);

    auto iommufd = std::make_unique<Node>();
    iommufd->server = this;
    iommufd->devname = options_.devname;
    open_node(*iommufd, iommufd_ops); // throws: no CUSE at all
    nodes_.push_back(std::move(iommufd));

    // Each emulated device's VFIO cdev. One that cannot be made leaves the
    // device reachable through the socket and IOASID_EMU_DEVICE_BIND.
    for (const auto& device : services_.hardware.devices()) {
        auto node = std::make_unique<Node>();
        node->server = this;
        node->devname = "vfio/devices/" + device->vfio_name;
        node->device = device.get();
        try {
            open_node(*node, vfio_ops);
            nodes_.push_back(std::move(node));
        } catch (const std::system_error& e) {
            spdlog::warn("cuse: no node /dev/{} for device {}: {}", node->devname, device->name,
                         e.what());
        }
    }
}

void CuseServer::Impl::open_node(Node& node, const cuse_lowlevel_ops& ops)
{
    const std::string devinfo = "DEVNAME=" + node.devname;
    const char* dev_info_argv[] = {devinfo.c_str()};
    cuse_info ci{};
    ci.dev_info_argc = 1;
    ci.dev_info_argv = dev_info_argv;
    // iommufd and VFIO commands are _IO() numbers that carry no size; only
    // an unrestricted CUSE ioctl lets the daemon reach the struct.
    ci.flags = CUSE_UNRESTRICTED_IOCTL;

    const char* argv[] = {"ioasidd", nullptr};
    fuse_args args = FUSE_ARGS_INIT(1, const_cast<char**>(argv));
    node.session = cuse_lowlevel_new(&args, &ci, &ops, &node);
    // Parsing may have copied the arguments into memory of its own.
    fuse_opt_free_args(&args);
    if (!node.session)
        throw std::system_error(ENOMEM, std::generic_category(), "cuse_lowlevel_new");
    const int cuse_fd = ::open("/dev/cuse", O_RDWR | O_CLOEXEC);
    if (cuse_fd < 0) {
        int err = errno;
        fuse_session_destroy(node.session);
        node.session = nullptr;
        throw std::system_error(err, std::generic_category(), "open /dev/cuse");
    }
    const std::string fd_path = "/dev/fd/" + std::to_string(cuse_fd);
    if (fuse_session_mount(node.session, fd_path.c_str()) != 0) {
        ::close(cuse_fd);
        fuse_session_destroy(node.session);
        node.session = nullptr;
        throw std::system_error(EIO, std::generic_category(), "fuse_session_mount /dev/cuse");
    }
}

void CuseServer::Impl::close_node(Node& node)
{
    if (!node.session)
        return;
    fuse_session_unmount(node.session); // closes /dev/cuse: the node disappears
    fuse_session_destroy(node.session);
    node.session = nullptr;
}

CuseServer::Impl::~Impl()
{
    // The kernel sends no RELEASE once a channel closes: every file still
    // open is released here, before the nodes go; device files first, as
    // they hold references on contexts.
    std::map<VfioFile*, std::unique_ptr<VfioFile>> files;
    {
        std::lock_guard guard(vfio_files_lock_);
        files.swap(vfio_files_);
    }
    files.clear();
    {
        std::lock_guard guard(sessions_lock_);
        sessions_.clear();
    }
    for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it)
        close_node(**it);
}

void CuseServer::Impl::on_init_done(void* userdata)
{
    auto& node = *static_cast<Node*>(userdata);
    Impl& self = *node.server;
    const std::string path = "/dev/" + node.devname;
    dev_t devt = sysfs_devt(node.devname);
    struct stat st{};
    const bool present = ::stat(path.c_str(), &st) == 0 && S_ISCHR(st.st_mode);
    if (!devt && present)
        devt = st.st_rdev;
    node.devt = devt;
    // A name already taken (a real VFIO device of that name, say) keeps
    // its node: devtmpfs does not replace it. Leave that one alone.
    const bool ours = present && st.st_rdev == devt;
    if (!ours) {
        spdlog::warn("cuse: {} is not the node of our device{}", path,
                     node.device ? " (a VFIO device of that name exists? give the emulated "
                                   "device another \"vfio\" name in the topology)"
                                 : "");
    } else if (::chmod(path.c_str(), self.options_.mode) != 0 ||
               ((self.options_.owner != static_cast<uid_t>(-1) ||
                 self.options_.group != static_cast<gid_t>(-1)) &&
                ::chown(path.c_str(), self.options_.owner, self.options_.group) != 0)) {
        // The kernel creates the node root-owned 0600; set what was asked.
        spdlog::warn("cuse: cannot set owner/mode of {}: {}", path, std::strerror(errno));
    }
    {
        std::lock_guard guard(self.serving_lock_);
        node.serving = true;
    }
    self.serving_changed_.notify_all();
}

bool CuseServer::Impl::wait_until_serving(std::chrono::milliseconds timeout)
{
    std::unique_lock guard(serving_lock_);
    serving_changed_.wait_for(guard, timeout, [this] {
        return std::all_of(nodes_.begin(), nodes_.end(),
                           [](const auto& node) { return node->serving || node->ended; });
    });
    for (const auto& node : nodes_)
        if (node->device && !node->serving)
            spdlog::warn("cuse: /dev/{} is not served", node->devname);
    return nodes_.front()->serving;
}

// --- the iommufd node --------------------------------------------------------

void CuseServer::Impl::on_open(fuse_req_t req, fuse_file_info* fi)
{
    Impl& self = *node_of(req).server;
    const fuse_ctx* who = fuse_req_ctx(req);
    auto session = std::make_shared<Session>(self.services_,
                                             core::ContextOrigin{"cuse", who->uid, who->pid});
    fi->fh = reinterpret_cast<std::uint64_t>(session.get());
    fi->nonseekable = 1;
    {
        std::lock_guard guard(self.sessions_lock_);
        Session* key = session.get();
        self.sessions_.emplace(key, std::move(session));
    }
    fuse_reply_open(req, fi);
}

// The last close of the file, also when its process was killed. The
// context goes with it unless a bound VFIO file still holds it.
void CuseServer::Impl::on_release(fuse_req_t req, fuse_file_info* fi)
{
    Impl& self = *node_of(req).server;
    std::shared_ptr<Session> session;
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
    Impl& self = *node_of(req).server;
    auto& session = *reinterpret_cast<Session*>(fi->fh);
    const auto ucmd = static_cast<unsigned>(cmd);
    const auto uarg = reinterpret_cast<std::uint64_t>(arg);

    if (ucmd == kWhoAmI) {
        self.answer_whoami(req, fi);
        return;
    }
    // Nothing to decode: answer at once, as the kernel does for a number
    // outside its table, without looking for the caller.
    if (!dispatch::known(ucmd)) {
        fuse_reply_err(req, ENOTTY);
        return;
    }
    const pid_t tid = fuse_req_ctx(req)->pid;
    self.serve_ioctl(req, session.callers(), uarg, in_buf, in_bufsz, out_bufsz,
                     [&](const std::shared_ptr<memory::Caller>& caller) {
                         return session.ioctl(ucmd, caller, uarg, tid);
                     });
}

// Which open file this is, for a daemon thread that asked on its
// duplicate of a client's descriptor. Only a thread registered in whoami_
// gets an answer, and the answer never leaves the daemon: a client can
// neither ask nor learn anything, and a file that is not ours (whatever
// its fstat() says) cannot fill the entry in.
void CuseServer::Impl::answer_whoami(fuse_req_t req, fuse_file_info* fi)
{
    const pid_t tid = fuse_req_ctx(req)->pid;
    bool asked = false;
    if (tid > 0) {
        std::lock_guard guard(whoami_lock_);
        auto it = whoami_.find(tid);
        if (it != whoami_.end()) {
            asked = true;
            std::lock_guard sessions_guard(sessions_lock_);
            auto session = sessions_.find(reinterpret_cast<Session*>(fi->fh));
            if (session != sessions_.end())
                it->second = session->second;
        }
    }
    if (asked)
        fuse_reply_ioctl(req, 0, nullptr, 0);
    else
        fuse_reply_err(req, ENOTTY);
}

// --- the VFIO nodes ------------------------------------------------------------

void CuseServer::Impl::on_vfio_open(fuse_req_t req, fuse_file_info* fi)
{
    Node& node = node_of(req);
    Impl& self = *node.server;
    auto file = std::make_unique<VfioFile>(*node.device);
    fi->fh = reinterpret_cast<std::uint64_t>(file.get());
    {
        std::lock_guard guard(self.vfio_files_lock_);
        VfioFile* key = file.get();
        self.vfio_files_.emplace(key, std::move(file));
    }
    fuse_reply_open(req, fi);
}

// Closing the device file unbinds it (and may end the context it held).
void CuseServer::Impl::on_vfio_release(fuse_req_t req, fuse_file_info* fi)
{
    Impl& self = *node_of(req).server;
    std::unique_ptr<VfioFile> file;
    {
        std::lock_guard guard(self.vfio_files_lock_);
        auto it = self.vfio_files_.find(reinterpret_cast<VfioFile*>(fi->fh));
        if (it != self.vfio_files_.end()) {
            file = std::move(it->second);
            self.vfio_files_.erase(it);
        }
    }
    file.reset();
    fuse_reply_err(req, 0);
}

// Before the bind the kernel refuses; after it, the driver has no region
// an offset could name.
void CuseServer::Impl::on_vfio_read(fuse_req_t req, size_t, off_t, fuse_file_info*)
{
    fuse_reply_err(req, -dispatch::VfioDevice::read_write_errno());
}

void CuseServer::Impl::on_vfio_write(fuse_req_t req, const char*, size_t, off_t, fuse_file_info*)
{
    fuse_reply_err(req, -dispatch::VfioDevice::read_write_errno());
}

void CuseServer::Impl::on_vfio_ioctl(fuse_req_t req, int cmd, void* arg, fuse_file_info* fi,
                                     unsigned, const void* in_buf, size_t in_bufsz,
                                     size_t out_bufsz)
{
    Impl& self = *node_of(req).server;
    auto& file = *reinterpret_cast<VfioFile*>(fi->fh);
    const auto ucmd = static_cast<unsigned>(cmd);
    const auto uarg = reinterpret_cast<std::uint64_t>(arg);

    if (int rc = file.device.answer_without_struct(ucmd)) {
        fuse_reply_err(req, -rc);
        return;
    }
    const pid_t tid = fuse_req_ctx(req)->pid;
    self.serve_ioctl(req, file.callers, uarg, in_buf, in_bufsz, out_bufsz,
                     [&](const std::shared_ptr<memory::Caller>& caller) {
                         auto resolve = [&](std::int32_t fd, std::shared_ptr<core::Context>* ctx) {
                             return self.resolve_iommufd(*caller, fd, ctx);
                         };
                         return vfio_ioctl(file.device, ucmd, caller, uarg, tid, resolve);
                     });
}

// VFIO_DEVICE_BIND_IOMMUFD's fd number, as iommufd_ctx_from_fd() reads it.
// 1. The caller's descriptor, duplicated into the daemon (pidfd_getfd(),
//    the kernel's fget()): EBADF when it has none by that number.
// 2. statx() (from what the kernel has cached: never a question to a
//    filesystem the client may serve): a character device with our
//    iommufd node's device number, else EBADFD. A character device inode
//    opens through its device number (chrdev_open()), so a descriptor of
//    that number is an open of our CUSE device, whatever path it was
//    opened by: the ioctl below goes to our own loop and to nothing a
//    client serves.
// 3. Every open of the node looks the same from outside, so ask the node
//    itself: kWhoAmI on the duplicate arrives at on_ioctl() with that
//    open's file handle, and answer_whoami() hands its session to this
//    thread, found by thread id. The answer travels inside the daemon
//    only: no secret exists that a client could learn or guess.
// No deadlock: this runs on a VFIO node's loop thread and is answered by a
// loop thread of the iommufd node (its own channel and threads, started on
// demand), which takes no lock held here; at shutdown the VFIO nodes stop
// first. Closing the duplicate may be the last close of that file (the
// client closed its descriptor meanwhile): the iommufd node's release runs
// then, and the session lives on in the reference taken here, as the
// kernel's bind keeps its file reference.
int CuseServer::Impl::resolve_iommufd(memory::Caller& caller, std::int32_t fd,
                                      std::shared_ptr<core::Context>* ctx)
{
    memory::UniqueFd copy;
    if (int rc = caller.take_fd(fd, &copy))
        return rc;
    // Without AT_STATX_DONT_SYNC a file of a FUSE filesystem the client
    // serves would have us wait for its getattr answer, maybe forever.
    struct statx stx{};
    const dev_t ours = nodes_.front()->devt.load();
    if (::statx(copy.get(), "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE, &stx) != 0 ||
        !S_ISCHR(stx.stx_mode) || ours == 0 ||
        makedev(stx.stx_rdev_major, stx.stx_rdev_minor) != ours)
        return -EBADFD;
    const pid_t self = ::gettid();
    {
        std::lock_guard guard(whoami_lock_);
        whoami_[self] = nullptr;
    }
    const int rc = ::ioctl(copy.get(), kWhoAmI, nullptr);
    std::shared_ptr<Session> session;
    {
        std::lock_guard guard(whoami_lock_);
        auto it = whoami_.find(self);
        session = std::move(it->second);
        whoami_.erase(it);
    }
    copy.reset();
    if (rc != 0 || !session)
        return -EBADFD;
    *ctx = context_of(session);
    return 0;
}

// --- ioctls: reaching the caller -------------------------------------------------

// One round trip: reach the caller's memory directly, through the thread
// the kernel names (its pid is 0 when it lives in a pid namespace we
// cannot see). Otherwise the FUSE_IOCTL_RETRY fallback.
void CuseServer::Impl::serve_ioctl(fuse_req_t req, memory::CallerCache& callers, std::uint64_t arg,
                                   const void* in_buf, size_t in_bufsz, size_t out_bufsz,
                                   const Serve& serve)
{
    const fuse_ctx who = *fuse_req_ctx(req);
    if (in_bufsz == 0 && out_bufsz == 0) {
        if (std::shared_ptr<memory::ProcessCaller> process = callers.get(who.pid, who.uid)) {
            auto caller = std::make_shared<memory::WaitingCaller>(std::move(process));
            const int rc = serve(caller);
            if (rc < 0)
                fuse_reply_err(req, -rc);
            else
                fuse_reply_ioctl(req, rc, nullptr, 0);
            return;
        }
    }
    serve_by_retry(req, arg, who, in_buf, in_bufsz, out_bufsz, serve);
}

// The fallback, FUSE_IOCTL_RETRY: the kernel copies the struct in and out
// for us, in three round trips. Nothing is kept between them; each step is
// told apart by the sizes the kernel hands over. Only the struct itself is
// reachable this way, so commands that point at more client memory (maps,
// range arrays) fail with EFAULT, as they must without access to it, and
// so does a VFIO bind (the caller's descriptors are out of reach: EBADF).
void CuseServer::Impl::serve_by_retry(fuse_req_t req, std::uint64_t arg, const fuse_ctx& who,
                                      const void* in_buf, size_t in_bufsz, size_t out_bufsz,
                                      const Serve& serve)
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
    const int rc = serve(caller);
    // The kernel copies the reply from the start of the struct: send up to
    // the last byte written (unwritten bytes go back unchanged).
    const std::span<const std::byte> unsent = caller->unsent();
    const size_t out = unsent.empty() ? 0 : std::min(out_bufsz, caller->unsent_offset() + unsent.size());
    if (rc < 0 && out == 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_ioctl(req, rc, bytes.data(), out);
}

// --- loops -------------------------------------------------------------------------

// As libfuse's own multi-threaded loop: when the last idle thread takes a
// request, another one starts, so a slow request never holds up the others.
void CuseServer::Impl::loop_thread(Node& node)
{
    {
        std::lock_guard guard(node.threads_lock);
        node.running.insert(::pthread_self());
    }
    fuse_buf buf{};
    while (!node.stopping && !fuse_session_exited(node.session)) {
        {
            std::lock_guard guard(node.threads_lock);
            ++node.idle;
        }
        const int res = fuse_session_receive_buf(node.session, &buf);
        {
            std::lock_guard guard(node.threads_lock);
            --node.idle;
            if (res > 0 && node.idle == 0 && node.threads.size() < kMaxThreads && !node.stopping)
                node.threads.emplace_back([this, &node] { loop_thread(node); });
        }
        if (res == -EINTR || res == -EAGAIN)
            continue;
        if (res <= 0) {
            // 0 or ENODEV: the kernel ended the channel (aborted via sysfs,
            // or it refused the device, e.g. a name already in use).
            if (res < 0 && res != -ENODEV)
                spdlog::error("cuse: /dev/{}: receiving a request: {}", node.devname,
                              std::strerror(-res));
            fuse_session_exit(node.session);
            {
                std::lock_guard guard(serving_lock_);
                node.ended = true;
            }
            serving_changed_.notify_all();
            break;
        }
        fuse_session_process_buf(node.session, &buf);
    }
    std::free(buf.mem);
    std::lock_guard guard(node.threads_lock);
    node.running.erase(::pthread_self());
}

void CuseServer::Impl::start_node(Node& node)
{
    std::lock_guard guard(node.threads_lock);
    node.threads.emplace_back([this, &node] { loop_thread(node); });
}

// Threads start more threads; waits until they have all stopped.
void CuseServer::Impl::join_node(Node& node)
{
    for (std::size_t joined = 0;; ++joined) {
        std::thread* thread;
        {
            std::lock_guard guard(node.threads_lock);
            if (joined == node.threads.size())
                break;
            thread = &node.threads[joined];
        }
        if (thread->joinable())
            thread->join();
    }
}

// The daemon ends with the iommufd node (stop(), or the kernel ended its
// channel); the device nodes go with it. A device node whose channel ends
// alone (the kernel refused its name) only loses that node.
void CuseServer::Impl::run()
{
    for (const auto& node : nodes_)
        start_node(*node);
    join_node(*nodes_.front());
    for (std::size_t i = 1; i < nodes_.size(); ++i)
        stop_node(*nodes_[i]);
    for (std::size_t i = 1; i < nodes_.size(); ++i)
        join_node(*nodes_[i]);
}

// A thread may be between its check of `stopping` and its read() when the
// signal comes, and would then sleep through it: signal until all are out.
void CuseServer::Impl::stop_node(Node& node)
{
    node.stopping = true;
    fuse_session_exit(node.session);
    for (int attempt = 0; attempt < 500; ++attempt) {
        {
            std::lock_guard guard(node.threads_lock);
            if (node.running.empty())
                return;
            for (pthread_t thread : node.running)
                ::pthread_kill(thread, kWakeSignal);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    spdlog::warn("cuse: /dev/{}: loop threads did not stop", node.devname);
}

// Device nodes first: a bind in progress there may be waiting for the
// iommufd node's answer (resolve_iommufd()).
void CuseServer::Impl::stop()
{
    for (std::size_t i = 1; i < nodes_.size(); ++i)
        stop_node(*nodes_[i]);
    stop_node(*nodes_.front());
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
