// The memory `map` hands to the daemon: a file or a memfd, mapped into
// ioasidctl's own address space for as long as the session lasts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace ioasid::ctl {

// An fd that closes itself.
class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : fd_(fd) {}
    UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept;
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd();

    [[nodiscard]] int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }

private:
    int fd_ = -1;
};

// An mmap()ed region, unmapped on destruction.
class Mapping {
public:
    Mapping() = default;
    Mapping(void* base, std::size_t size) : base_(base), size_(size) {}
    Mapping(Mapping&& other) noexcept
        : base_(std::exchange(other.base_, nullptr)), size_(std::exchange(other.size_, 0))
    {
    }
    Mapping& operator=(Mapping&& other) noexcept;
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    ~Mapping();

    [[nodiscard]] std::byte* data() const { return static_cast<std::byte*>(base_); }
    [[nodiscard]] std::size_t size() const { return size_; }

private:
    void* base_ = nullptr;
    std::size_t size_ = 0;
};

// Failure to set up memory: the errno and a message saying what failed.
struct MemoryError {
    int err;
    std::string message;
};

// Memory ready to be mapped into an IOAS: `length` bytes at `address`,
// valid while `mapping` lives.
struct MappedSource {
    Mapping mapping;
    const std::byte* address = nullptr;
    std::uint64_t length = 0;
};

// Maps [offset, offset+length) of the file at `path` (no length: to its
// end), shared, writeable only if asked. Throws MemoryError.
[[nodiscard]] MappedSource map_file(const std::string& path, std::uint64_t offset,
                                    std::optional<std::uint64_t> length, bool writeable);

// A new zeroed memfd of `size` bytes, mapped shared and writeable; the part
// [offset, offset+length) is the source (no length: to its end). Throws
// MemoryError.
[[nodiscard]] MappedSource map_memfd(std::uint64_t size, std::uint64_t offset,
                                     std::optional<std::uint64_t> length);

} // namespace ioasid::ctl
