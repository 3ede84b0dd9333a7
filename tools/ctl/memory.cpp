#include "memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "format.h"

namespace ioasid::ctl {
namespace {

// A failed system call: what was being done, and the errno's text.
[[noreturn]] void sys_error(int err, const std::string& what)
{
    throw MemoryError{err, what + ": " + std::strerror(err)};
}

std::uint64_t page_size()
{
    static const std::uint64_t size = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
    return size;
}

// Checks [offset, offset+length) against a source of `size` bytes and
// returns the length, filled in when it was not given.
std::uint64_t checked_length(std::uint64_t size, std::uint64_t offset,
                             std::optional<std::uint64_t> length, const std::string& name)
{
    if (offset > size)
        throw MemoryError{EINVAL, "--offset " + hex(offset) + " is past the end of " + name + " (" +
                                      hex(size) + " bytes)"};
    std::uint64_t len = length.value_or(size - offset);
    if (!length && len == 0)
        throw MemoryError{EINVAL, "nothing to map: " + name + " is empty from --offset on"};
    if (len > size - offset)
        throw MemoryError{EINVAL, "--offset " + hex(offset) + " + --length " + hex(len) +
                                      " runs past the end of " + name + " (" + hex(size) + " bytes)"};
    return len;
}

MappedSource map_fd(int fd, std::uint64_t offset, std::uint64_t length, int prot,
                    const std::string& name)
{
    // mmap wants a page-aligned file offset; the rest is added to the
    // address, so unaligned offsets still work.
    const std::uint64_t map_offset = offset & ~(page_size() - 1);
    const std::uint64_t delta = offset - map_offset;
    // A zero length is still mapped (one page), to let the daemon judge it.
    const std::uint64_t map_length = std::max<std::uint64_t>(delta + length, 1);
    if (map_length > std::numeric_limits<std::size_t>::max())
        sys_error(ENOMEM, "mmap " + name);
    void* base = mmap(nullptr, map_length, prot, MAP_SHARED, fd, static_cast<off_t>(map_offset));
    if (base == MAP_FAILED)
        sys_error(errno, "mmap " + name);
    MappedSource source;
    source.mapping = Mapping(base, map_length);
    source.address = source.mapping.data() + delta;
    source.length = length;
    return source;
}

} // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept
{
    if (this != &other) {
        if (fd_ >= 0)
            ::close(fd_);
        fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
}

UniqueFd::~UniqueFd()
{
    if (fd_ >= 0)
        ::close(fd_);
}

Mapping& Mapping::operator=(Mapping&& other) noexcept
{
    if (this != &other) {
        if (base_)
            munmap(base_, size_);
        base_ = std::exchange(other.base_, nullptr);
        size_ = std::exchange(other.size_, 0);
    }
    return *this;
}

Mapping::~Mapping()
{
    if (base_)
        munmap(base_, size_);
}

MappedSource map_file(const std::string& path, std::uint64_t offset,
                      std::optional<std::uint64_t> length, bool writeable)
{
    UniqueFd fd(::open(path.c_str(), (writeable ? O_RDWR : O_RDONLY) | O_CLOEXEC));
    if (!fd)
        sys_error(errno, "open " + path + (writeable && (errno == EACCES || errno == EROFS)
                                               ? " for writing (map it --readable only?)"
                                               : ""));
    struct stat st {};
    if (fstat(fd.get(), &st))
        sys_error(errno, "stat " + path);
    std::uint64_t len;
    if (S_ISREG(st.st_mode)) {
        len = checked_length(static_cast<std::uint64_t>(st.st_size), offset, length, path);
    } else if (length) {
        // A device has no size to check against; trust the caller.
        len = *length;
    } else {
        throw MemoryError{EINVAL, path + " is not a regular file: give --length"};
    }
    int prot = PROT_READ | (writeable ? PROT_WRITE : 0);
    return map_fd(fd.get(), offset, len, prot, path);
}

MappedSource map_memfd(std::uint64_t size, std::uint64_t offset, std::optional<std::uint64_t> length)
{
    std::uint64_t len = checked_length(size, offset, length, "the memfd");
    UniqueFd fd(memfd_create("ioasidctl-map", MFD_CLOEXEC));
    if (!fd)
        sys_error(errno, "memfd_create");
    if (size > static_cast<std::uint64_t>(std::numeric_limits<off_t>::max()))
        sys_error(EFBIG, "memfd of " + hex(size) + " bytes");
    if (ftruncate(fd.get(), static_cast<off_t>(size)))
        sys_error(errno, "memfd of " + hex(size) + " bytes");
    return map_fd(fd.get(), offset, len, PROT_READ | PROT_WRITE, "the memfd");
}

} // namespace ioasid::ctl
