// The caller of one ioctl that arrived with its struct bytes attached (the
// socket transport): those bytes are served from the message, everything
// else from the process behind it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "caller.h"

namespace ioasid::memory {

// A transport that can give its client descriptors standing for the
// daemon's files (core::ClientFile) recognises them again here.
class FileDesk {
public:
    virtual ~FileDesk() = default;
    // The file whose client end `fd` (the daemon's duplicate of a client
    // descriptor) is, or nullptr.
    [[nodiscard]] virtual std::shared_ptr<core::ClientFile> file_of(int fd) = 0;
};

class RequestCaller final : public Caller, private CallerMemory {
public:
    // `process` may be nullptr when the daemon cannot reach the sender
    // (another pid namespace, no ptrace permission); `uid` and `tgid` come
    // from the kernel-verified credentials of the message. `inline_bytes`
    // is the client's memory at `base` as the message carried it.
    RequestCaller(std::shared_ptr<Caller> process, uid_t uid, pid_t tgid, std::uint64_t base,
                  std::span<std::byte> inline_bytes);

    CallerMemory& memory() override { return *this; }
    std::shared_ptr<Caller> lasting() override { return process_; }
    // The fd table is the process's; out of reach without it.
    [[nodiscard]] int take_fd(int fd, UniqueFd* out) override
    {
        return process_ ? process_->take_fd(fd, out) : Caller::take_fd(fd, out);
    }
    // With a desk, files can be handed over: the one this request stages
    // is the transport's to install when the ioctl succeeds.
    void set_file_desk(FileDesk* desk) { desk_ = desk; }
    [[nodiscard]] int hand_over_file(std::shared_ptr<core::ClientFile> file,
                                     std::uint64_t number_addr) override;
    [[nodiscard]] int find_file(int fd, std::shared_ptr<core::ClientFile>* file) override;
    struct StagedFile {
        std::shared_ptr<core::ClientFile> file;
        std::uint64_t number_addr = 0;
    };
    // Taking it leaves nothing staged.
    [[nodiscard]] StagedFile take_staged_file() { return std::exchange(staged_, {}); }

    [[nodiscard]] uid_t uid() const override { return uid_; }
    [[nodiscard]] pid_t tgid() const override { return tgid_; }
    [[nodiscard]] std::uint64_t process_key() const override;
    [[nodiscard]] bool capable(Capability cap) const override;
    [[nodiscard]] std::uint64_t memlock_limit() const override;

    // The inline bytes written while the process was out of reach; the
    // client copies these back itself. Empty when every write reached the
    // process directly.
    [[nodiscard]] std::uint32_t unsent_offset() const { return dirty_first_; }
    [[nodiscard]] std::span<const std::byte> unsent() const;

private:
    int read(std::uint64_t addr, std::span<std::byte> out) override;
    int write(std::uint64_t addr, std::span<const std::byte> in) override;
    int check_mapped(std::uint64_t addr, std::uint64_t length, bool for_write) override;

    std::shared_ptr<Caller> process_;
    uid_t uid_;
    pid_t tgid_;
    std::uint64_t base_;
    std::span<std::byte> inline_;
    FileDesk* desk_ = nullptr;
    StagedFile staged_;
    // What find_file() gave, kept until the request ends: the kernel's
    // fput() of a last reference defers the release to the return to user
    // space, and so must we, as a file's end takes the context's lock the
    // ioctl still holds.
    std::vector<std::shared_ptr<core::ClientFile>> found_;
    std::uint32_t dirty_first_ = 0;
    std::uint32_t dirty_end_ = 0;
};

} // namespace ioasid::memory
