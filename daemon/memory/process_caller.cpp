#include "process_caller.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <linux/capability.h>
#include <linux/memfd.h>
#include <string>
#include <string_view>

#include "mapped_file.h"

namespace ioasid::memory {
namespace {

// bookworm's glibc 2.36 declares these in <sys/pidfd.h> without C linkage,
// so C++ cannot link against them; go to the system calls directly.
int pidfd_open(pid_t pid, unsigned int flags)
{
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, flags));
}

int pidfd_send_signal(int pidfd, int sig, siginfo_t* info, unsigned int flags)
{
    return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, info, flags));
}

int pidfd_getfd(int pidfd, int targetfd, unsigned int flags)
{
    return static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, targetfd, flags));
}

// Field 22 of /proc/<pid>/stat: start time in clock ticks after boot. The
// command name (field 2) may hold spaces and parentheses, so parse after the
// last ')'.
std::uint64_t read_start_time(pid_t pid)
{
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line))
        return 0;
    auto pos = line.rfind(')');
    if (pos == std::string::npos)
        return 0;
    // After ") " comes field 3; the start time is 19 fields further.
    std::size_t field = 3;
    for (pos += 2; pos < line.size() && field < 22; ++pos)
        if (line[pos] == ' ')
            ++field;
    std::uint64_t value = 0;
    std::from_chars(line.data() + pos, line.data() + line.size(), value);
    return value;
}

struct ProcessStatus {
    std::uint64_t cap_effective = 0;
    std::array<uid_t, 4> uids{}; // real, effective, saved, filesystem
    bool has_uids = false;
};

ProcessStatus read_status(pid_t pid)
{
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    ProcessStatus out;
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("CapEff:", 0) == 0) {
            auto begin = line.find_first_not_of(" \t", 7);
            if (begin != std::string::npos)
                std::from_chars(line.data() + begin, line.data() + line.size(),
                                out.cap_effective, 16);
        } else if (line.rfind("Uid:", 0) == 0) {
            const char* p = line.data() + 4;
            const char* end = line.data() + line.size();
            std::size_t n = 0;
            for (; n < out.uids.size(); ++n) {
                while (p < end && (*p == ' ' || *p == '\t'))
                    ++p;
                auto [next, ec] = std::from_chars(p, end, out.uids[n]);
                if (ec != std::errc{})
                    break;
                p = next;
            }
            out.has_uids = n == out.uids.size();
        }
    }
    return out;
}

// One line of /proc/<pid>/maps: "lo-hi perms offset major:minor inode path".
struct Mapping {
    std::uint64_t lo = 0, hi = 0, offset = 0, inode = 0;
    unsigned major = 0, minor = 0;
    bool readable = false, writable = false, shared = false;
};

bool parse_mapping(std::string_view line, Mapping* m)
{
    const char* p = line.data();
    const char* end = p + line.size();
    auto hex = [&](auto& value, char stop) {
        auto [next, ec] = std::from_chars(p, end, value, 16);
        if (ec != std::errc{} || next == end || *next != stop)
            return false;
        p = next + 1;
        return true;
    };
    if (!hex(m->lo, '-') || !hex(m->hi, ' ') || end - p < 5)
        return false;
    m->readable = p[0] == 'r';
    m->writable = p[1] == 'w';
    m->shared = p[3] == 's';
    p += 5;
    if (!hex(m->offset, ' ') || !hex(m->major, ':') || !hex(m->minor, ' '))
        return false;
    return std::from_chars(p, end, m->inode).ec == std::errc{};
}

// The file systems whose files the daemon opens behind a client's shared
// mapping: shmem and hugetlbfs. An open runs the file system's (or a
// device's) open method, and one on a FUSE mount or a device node would run
// code the client controls; so the device in the maps line is checked
// before anything is opened. The kernel's internal shm and hugetlbfs
// mounts hold what memfd_create() and shared anonymous memory make; the
// client's mount namespace shows its tmpfs and hugetlbfs mounts.
bool pinnable_device(pid_t tgid, dev_t dev)
{
    static const std::vector<dev_t> internal = [] {
        std::vector<dev_t> devs;
        for (unsigned flags : {0u, unsigned{MFD_HUGETLB}, unsigned{MFD_HUGETLB | MFD_HUGE_2MB},
                               unsigned{MFD_HUGETLB | MFD_HUGE_1GB}}) {
            UniqueFd probe(::memfd_create("ioasid-probe", MFD_CLOEXEC | flags));
            struct stat st {};
            if (probe && ::fstat(probe.get(), &st) == 0)
                devs.push_back(st.st_dev);
        }
        return devs;
    }();
    if (std::find(internal.begin(), internal.end(), dev) != internal.end())
        return true;
    // "id parent major:minor root mountpoint options [tags] - fstype source ..."
    std::ifstream mounts("/proc/" + std::to_string(tgid) + "/mountinfo");
    std::string line;
    while (std::getline(mounts, line)) {
        const auto dash = line.find(" - ");
        if (dash == std::string::npos)
            continue;
        const std::string_view type = std::string_view(line).substr(dash + 3);
        if (!type.starts_with("tmpfs ") && !type.starts_with("hugetlbfs "))
            continue;
        unsigned major_no = 0, minor_no = 0;
        if (std::sscanf(line.c_str(), "%*u %*u %u:%u", &major_no, &minor_no) == 2 &&
            makedev(major_no, minor_no) == dev)
            return true;
    }
    return false;
}

// Calls fn(mapping) for each mapping of the process that ends above `addr`,
// in ascending order, until one starts at or above `end` or fn returns false.
template <typename Fn>
void for_each_mapping(pid_t tgid, std::uint64_t addr, std::uint64_t end, Fn fn)
{
    std::ifstream maps("/proc/" + std::to_string(tgid) + "/maps");
    std::string line;
    Mapping m;
    while (std::getline(maps, line)) {
        if (!parse_mapping(line, &m))
            return;
        if (m.hi <= addr)
            continue;
        if (m.lo >= end || !fn(m))
            return;
    }
}

} // namespace

// Capabilities count only in the daemon's own user namespace: a process
// that made itself "root" in a namespace of its own has full CapEff there,
// and the kernel's capable() would not honour it.
bool same_user_namespace(pid_t pid)
{
    struct stat theirs {}, ours {};
    if (::stat(("/proc/" + std::to_string(pid) + "/ns/user").c_str(), &theirs) != 0 ||
        ::stat("/proc/self/ns/user", &ours) != 0)
        return false;
    return theirs.st_ino == ours.st_ino && theirs.st_dev == ours.st_dev;
}

std::unique_ptr<ProcessCaller> ProcessCaller::open(pid_t tgid, uid_t uid)
{
    UniqueFd pidfd(pidfd_open(tgid, 0));
    if (!pidfd)
        return nullptr;
    const std::string proc = "/proc/" + std::to_string(tgid);
    // Writable for small device writes (device_write()); the read-only
    // open is enough for everything else.
    UniqueFd mem(::open((proc + "/mem").c_str(), O_RDWR | O_CLOEXEC));
    if (!mem)
        mem = UniqueFd(::open((proc + "/mem").c_str(), O_RDONLY | O_CLOEXEC));
    if (!mem)
        return nullptr;
    // Read identity only after the pidfd pins down which process this is,
    // then confirm that process is still the one behind the pid.
    std::uint64_t start = read_start_time(tgid);
    const ProcessStatus status = read_status(tgid);
    std::uint64_t caps = same_user_namespace(tgid) ? status.cap_effective : 0;
    if (start == 0 || pidfd_send_signal(pidfd.get(), 0, nullptr, 0) != 0)
        return nullptr;
    // The uid the kernel gave with the request must be one the process
    // holds: a pid that was recycled between the request and now names
    // someone else, whose memory the request has no claim to.
    if (!status.has_uids ||
        std::find(status.uids.begin(), status.uids.end(), uid) == status.uids.end())
        return nullptr;
    std::uint64_t key = (start << 22) ^ static_cast<std::uint64_t>(tgid);
    return std::make_unique<ProcessCaller>(Key{}, tgid, uid, std::move(pidfd), std::move(mem), key,
                                           caps);
}

ProcessCaller::ProcessCaller(Key, pid_t tgid, uid_t uid, UniqueFd pidfd, UniqueFd mem,
                             std::uint64_t key, std::uint64_t cap_effective)
    : tgid_(tgid), uid_(uid), pidfd_(std::move(pidfd)), mem_(std::move(mem)), process_key_(key),
      cap_effective_(cap_effective)
{
}

// Reading /proc/<pid>/mem gives 0 bytes once its address space is gone
// (exit, execve), and 1 byte or EIO while it lives.
bool ProcessCaller::same_address_space() const
{
    char byte;
    return ::pread(mem_.get(), &byte, 1, 0) != 0;
}

bool ProcessCaller::alive() const
{
    return pidfd_send_signal(pidfd_.get(), 0, nullptr, 0) == 0;
}

bool ProcessCaller::capable(Capability cap) const
{
    int bit = cap == Capability::ipc_lock ? CAP_IPC_LOCK : CAP_SYS_RESOURCE;
    return (cap_effective_ >> bit) & 1;
}

std::uint64_t ProcessCaller::memlock_limit() const
{
    rlimit limit{};
    if (prlimit(tgid_, RLIMIT_MEMLOCK, nullptr, &limit) != 0 || !alive())
        return 0;
    return limit.rlim_cur == RLIM_INFINITY ? UINT64_MAX : limit.rlim_cur;
}

int ProcessCaller::take_fd(int fd, UniqueFd* out)
{
    // The table read is the thread group's (the pidfd names its leader):
    // a thread that unshared its table (clone() without CLONE_FILES) has
    // descriptors this cannot see. The copy comes with O_CLOEXEC set.
    UniqueFd copy(pidfd_getfd(pidfd_.get(), fd, 0));
    if (!copy) {
        switch (errno) {
        case ESRCH:
            // The process has exited: nobody is waiting for the answer.
            return -ESRCH;
        case EPERM:
            // No ptrace rights over the caller (pidfd_getfd() asks for
            // PTRACE_MODE_ATTACH_REALCREDS, as process_vm_readv() does, so
            // its memory is out of reach too). The kernel has no such case;
            // the fd is as unreachable as a closed one. The same answer as
            // a caller with no process behind it (Caller::take_fd()).
            return -EBADF;
        case EMFILE:
        case ENFILE:
            // The daemon is out of descriptors: its resource, not the
            // caller's mistake, so the kernel's answer for exhaustion.
            return -ENOMEM;
        default:
            // EBADF: not open in the caller.
            return -errno;
        }
    }
    // pidfd_getfd() names the process, not the image: after an execve() the
    // table may have lost descriptors (O_CLOEXEC) that the request meant.
    if (!same_address_space())
        return -ESRCH;
    *out = std::move(copy);
    return 0;
}

int ProcessCaller::read_unguarded(std::uint64_t addr, std::span<std::byte> out) const
{
    if (out.empty())
        return 0;
    iovec local{out.data(), out.size()};
    iovec remote{reinterpret_cast<void*>(addr), out.size()};
    ssize_t done = process_vm_readv(tgid_, &local, 1, &remote, 1, 0);
    return done == static_cast<ssize_t>(out.size()) ? 0 : -EFAULT;
}

int ProcessCaller::write_unguarded(std::uint64_t addr, std::span<const std::byte> in) const
{
    if (in.empty())
        return 0;
    iovec local{const_cast<std::byte*>(in.data()), in.size()};
    iovec remote{reinterpret_cast<void*>(addr), in.size()};
    ssize_t done = process_vm_writev(tgid_, &local, 1, &remote, 1, 0);
    return done == static_cast<ssize_t>(in.size()) ? 0 : -EFAULT;
}

// process_vm_readv/writev name a pid, which outlives an execve() and can be
// reused after an exit. The address space the client had when it opened
// the device is checked on both sides of every copy: a read from anything
// else is discarded, and a write is not started.
int ProcessCaller::read(std::uint64_t addr, std::span<std::byte> out)
{
    if (out.empty())
        return 0;
    int rc = read_unguarded(addr, out);
    if (!same_address_space())
        return -ESRCH;
    return rc;
}

int ProcessCaller::write(std::uint64_t addr, std::span<const std::byte> in)
{
    if (in.empty())
        return 0;
    if (!same_address_space())
        return -ESRCH;
    int rc = write_unguarded(addr, in);
    if (!same_address_space())
        return -ESRCH;
    return rc;
}

// Small device copies go through /proc/<pid>/mem: one system call, bound
// to the address space opened with the caller, so no check is needed
// around it. It reaches pages whatever their current protection, as a
// device reaches pages pinned earlier. Large copies are faster with
// process_vm_readv/writev, whose extra check is then noise.
namespace {
constexpr std::size_t kSmallDeviceCopy = 16 * 1024;
} // namespace

int ProcessCaller::device_read(std::uint64_t addr, std::span<std::byte> out)
{
    if (out.size() > kSmallDeviceCopy)
        return read(addr, out);
    if (out.empty())
        return 0;
    const ssize_t done = ::pread(mem_.get(), out.data(), out.size(), static_cast<off_t>(addr));
    if (done == 0)
        return -ESRCH; // the address space is gone
    return done == static_cast<ssize_t>(out.size()) ? 0 : -EFAULT;
}

int ProcessCaller::device_write(std::uint64_t addr, std::span<const std::byte> in)
{
    if (in.size() > kSmallDeviceCopy)
        return write(addr, in);
    if (in.empty())
        return 0;
    const ssize_t done = ::pwrite(mem_.get(), in.data(), in.size(), static_cast<off_t>(addr));
    if (done < 0 && errno == EBADF)
        return write(addr, in); // opened read-only
    if (done == 0)
        return -ESRCH;
    return done == static_cast<ssize_t>(in.size()) ? 0 : -EFAULT;
}

int ProcessCaller::check_mapped(std::uint64_t addr, std::uint64_t length, bool for_write)
{
    if (length == 0)
        return 0;
    if (addr + length < addr)
        return -EFAULT;
    std::uint64_t next = addr;
    const std::uint64_t end = addr + length;
    int rc = 0;
    for_each_mapping(tgid_, addr, end, [&](const Mapping& m) {
        if (m.lo > next)
            return false;
        if (!(for_write ? m.writable : m.readable)) {
            rc = -EFAULT;
            return false;
        }
        next = m.hi;
        return next < end;
    });
    if (!same_address_space())
        return -ESRCH;
    if (rc)
        return rc;
    return next >= end ? 0 : -EFAULT;
}

int ProcessCaller::shared_files(std::uint64_t addr, std::uint64_t length,
                                std::vector<SharedFileRange>* out)
{
    out->clear();
    std::uint64_t end;
    if (length == 0 || __builtin_add_overflow(addr, length, &end))
        return 0;
    const std::string dir = "/proc/" + std::to_string(tgid_) + "/map_files/";
    for_each_mapping(tgid_, addr, end, [&](const Mapping& m) {
        if (!m.shared || m.inode == 0 || !pinnable_device(tgid_, makedev(m.major, m.minor)))
            return true;
        // map_files needs CAP_SYS_ADMIN (or CAP_CHECKPOINT_RESTORE) in the
        // initial user namespace; without it the range stays reachable
        // through the process only. stat() first: a device node on a tmpfs
        // is never opened.
        char name[40];
        std::snprintf(name, sizeof(name), "%llx-%llx", static_cast<unsigned long long>(m.lo),
                      static_cast<unsigned long long>(m.hi));
        const std::string path = dir + name;
        struct stat st {};
        auto same = [&] {
            return S_ISREG(st.st_mode) && st.st_ino == m.inode && major(st.st_dev) == m.major &&
                   minor(st.st_dev) == m.minor;
        };
        if (::stat(path.c_str(), &st) != 0 || !same())
            return true;
        UniqueFd file(::open(path.c_str(),
                             (m.writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
        // The mapping may have changed between reading maps and the open.
        FileFacts facts;
        if (!file || ::fstat(file.get(), &st) != 0 || !same() ||
            describe_file(file.get(), &facts) != 0 || !facts.memfd_like)
            return true;
        const std::uint64_t lo = std::max(addr, m.lo);
        const std::uint64_t hi = std::min(end, m.hi);
        out->push_back(SharedFileRange{.addr = lo, .length = hi - lo,
                                       .offset = m.offset + (lo - m.lo),
                                       .page_size = facts.page_size, .writable = m.writable,
                                       .file = std::move(file)});
        return true;
    });
    // A recycled pid names another process, whose files are not ours.
    if (!same_address_space())
        out->clear();
    return 0;
}

} // namespace ioasid::memory
