// A file the daemon maps into its own address space, as IOMMU_IOAS_MAP_FILE
// needs: the kernel pins the file's pages, the daemon keeps a shared mapping
// of them, so an emulated DMA is a copy and stays valid whatever the client
// does with its descriptor or its own mapping of the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace ioasid::memory {

// What the kernel looks at when it takes a file for MAP_FILE, read once.
struct FileFacts {
    // O_PATH: not a file to the kernel's fget().
    bool path_only = false;
    // A regular file of shmem (memfd, tmpfs) or hugetlbfs: the only files
    // memfd_pin_folios() pins.
    bool memfd_like = false;
    // The unit the file is mapped in: the huge page size on hugetlbfs.
    std::uint64_t page_size = 4096;
    bool readable = false; // opened O_RDONLY or O_RDWR
    bool writable = false; // opened O_WRONLY or O_RDWR
    // F_SEAL_WRITE or F_SEAL_FUTURE_WRITE: no shared writable mapping.
    bool write_sealed = false;
};

// 0 or -errno from fstat()/fcntl()/fstatfs().
[[nodiscard]] int describe_file(int fd, FileFacts* out);
// The file's size now; the client may change it at any time.
[[nodiscard]] int file_size(int fd, std::uint64_t* size);

// A MAP_SHARED mapping of part of a file, unmapped on destruction.
class MappedFile {
public:
    MappedFile() = default;
    // Maps [offset, offset + length) of `fd`, writable when `writable`.
    // Both must be multiples of the file's page size. 0 or -errno (mmap()).
    [[nodiscard]] static int map(int fd, std::uint64_t offset, std::uint64_t length, bool writable,
                                 MappedFile* out);

    MappedFile(MappedFile&& other) noexcept;
    MappedFile& operator=(MappedFile&& other) noexcept;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;
    ~MappedFile();

    [[nodiscard]] explicit operator bool() const { return !bytes_.empty(); }
    // Touching these directly is only safe while the file cannot shrink
    // below them; read() and write() are safe always.
    [[nodiscard]] std::span<std::byte> bytes() const { return bytes_; }

    // Copies out of and into the mapping. The client can shrink the file
    // under it at any time, and a page past the end of a file is a SIGBUS:
    // these catch that and answer -EFAULT, so a client cannot crash the
    // daemon that way; a write into a mapping made read-only gives -EFAULT
    // too. Otherwise a memcpy.
    [[nodiscard]] int read(std::uint64_t offset, std::span<std::byte> out) const;
    [[nodiscard]] int write(std::uint64_t offset, std::span<const std::byte> in) const;

private:
    void reset();

    std::span<std::byte> bytes_;
    bool writable_ = false;
};

} // namespace ioasid::memory
