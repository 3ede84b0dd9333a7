#include "mapped_file.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <atomic>
#include <cerrno>
#include <csetjmp>
#include <csignal>
#include <cstring>
#include <mutex>
#include <utility>

namespace ioasid::memory {
namespace {

// --- SIGBUS during a copy --------------------------------------------------
//
// A thread copying to or from a mapping sets these for the length of the
// copy; the handler jumps back through `t_recover` when the fault lies in
// that mapping. Plain pointers and integers: thread-local storage a signal
// handler may read.
thread_local sigjmp_buf* t_recover = nullptr;
thread_local std::uintptr_t t_first = 0;
thread_local std::uintptr_t t_end = 0;

struct sigaction g_previous;

void on_sigbus(int sig, siginfo_t* info, void* context)
{
    const auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
    if (t_recover && addr >= t_first && addr < t_end)
        siglongjmp(*t_recover, 1);
    // Not one of our copies: what was there before decides.
    if (g_previous.sa_flags & SA_SIGINFO) {
        g_previous.sa_sigaction(sig, info, context);
        return;
    }
    if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
        g_previous.sa_handler(sig);
        return;
    }
    // The default action: the faulting access runs again and ends the
    // process as it would have without us (a fault cannot be ignored).
    ::signal(SIGBUS, SIG_DFL);
}

void install_sigbus_handler()
{
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction action {};
        action.sa_sigaction = on_sigbus;
        // SA_NODEFER: SIGBUS stays unblocked after the jump, so the copies
        // can use sigsetjmp(, 0), which costs no system call.
        action.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
        sigemptyset(&action.sa_mask);
        ::sigaction(SIGBUS, &action, &g_previous);
    });
}

int guarded_copy(void* to, const void* from, std::size_t n, std::span<std::byte> mapping)
{
    sigjmp_buf recover;
    if (sigsetjmp(recover, 0) != 0) {
        t_recover = nullptr;
        return -EFAULT;
    }
    t_first = reinterpret_cast<std::uintptr_t>(mapping.data());
    t_end = t_first + mapping.size();
    t_recover = &recover;
    // Keeps the compiler from moving the copy out of the guarded stretch.
    std::atomic_signal_fence(std::memory_order_seq_cst);
    std::memcpy(to, from, n);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    t_recover = nullptr;
    return 0;
}

} // namespace

int describe_file(int fd, FileFacts* out)
{
    *out = FileFacts{};
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0)
        return -errno;
    out->path_only = (flags & O_PATH) != 0;
    if (out->path_only)
        return 0;
    out->readable = (flags & O_ACCMODE) != O_WRONLY;
    out->writable = (flags & O_ACCMODE) != O_RDONLY;

    struct stat st {};
    struct statfs fs {};
    if (::fstat(fd, &st) != 0 || ::fstatfs(fd, &fs) != 0)
        return -errno;
    // shmem_file() || is_file_hugepages() in the kernel: the file
    // operations of shmem and hugetlbfs, which only their regular files have.
    const bool hugetlb = fs.f_type == static_cast<decltype(fs.f_type)>(HUGETLBFS_MAGIC);
    const bool shmem = fs.f_type == static_cast<decltype(fs.f_type)>(TMPFS_MAGIC);
    out->memfd_like = S_ISREG(st.st_mode) && (shmem || hugetlb);
    if (hugetlb && fs.f_bsize > 0)
        out->page_size = static_cast<std::uint64_t>(fs.f_bsize);
    // Files that cannot be sealed answer EINVAL: nothing sealed.
    const int seals = ::fcntl(fd, F_GET_SEALS);
    out->write_sealed = seals > 0 && (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) != 0;
    return 0;
}

int file_size(int fd, std::uint64_t* size)
{
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        return -errno;
    *size = static_cast<std::uint64_t>(st.st_size);
    return 0;
}

int MappedFile::map(int fd, std::uint64_t offset, std::uint64_t length, bool writable,
                    MappedFile* out)
{
    if (length == 0 || length > SIZE_MAX || offset > static_cast<std::uint64_t>(INT64_MAX))
        return -EINVAL;
    install_sigbus_handler();
    const int prot = PROT_READ | (writable ? PROT_WRITE : 0);
    // MAP_NORESERVE: the pages belong to the file; nothing to reserve.
    void* addr = ::mmap(nullptr, length, prot, MAP_SHARED | MAP_NORESERVE, fd,
                        static_cast<off_t>(offset));
    if (addr == MAP_FAILED)
        return -errno;
    out->reset();
    out->bytes_ = std::span(static_cast<std::byte*>(addr), length);
    out->writable_ = writable;
    return 0;
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : bytes_(std::exchange(other.bytes_, {})), writable_(std::exchange(other.writable_, false))
{
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept
{
    if (this != &other) {
        reset();
        bytes_ = std::exchange(other.bytes_, {});
        writable_ = std::exchange(other.writable_, false);
    }
    return *this;
}

MappedFile::~MappedFile()
{
    reset();
}

void MappedFile::reset()
{
    if (!bytes_.empty())
        ::munmap(bytes_.data(), bytes_.size());
    bytes_ = {};
}

int MappedFile::read(std::uint64_t offset, std::span<std::byte> out) const
{
    if (offset > bytes_.size() || out.size() > bytes_.size() - offset)
        return -EFAULT;
    if (out.empty())
        return 0;
    return guarded_copy(out.data(), bytes_.data() + offset, out.size(), bytes_);
}

int MappedFile::write(std::uint64_t offset, std::span<const std::byte> in) const
{
    // A read-only mapping faults with SIGSEGV, which nothing here catches.
    if (!writable_ || offset > bytes_.size() || in.size() > bytes_.size() - offset)
        return -EFAULT;
    if (in.empty())
        return 0;
    return guarded_copy(bytes_.data() + offset, in.data(), in.size(), bytes_);
}

} // namespace ioasid::memory
