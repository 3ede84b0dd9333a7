// A client process reached through process_vm_readv/writev.
#pragma once

#include <sys/types.h>

#include <memory>

#include "caller.h"
#include "unique_fd.h"

namespace ioasid::memory {

class ProcessCaller final : public Caller, private CallerMemory {
public:
    // `tgid` and `uid` must come from the kernel (SO_PEERCRED, CUSE request
    // header), never from the client's own words. Returns nullptr when the
    // process is already gone.
    static std::unique_ptr<ProcessCaller> open(pid_t tgid, uid_t uid);

    CallerMemory& memory() override { return *this; }
    // pidfd_getfd(): the caller's descriptor, duplicated into the daemon.
    [[nodiscard]] int take_fd(int fd, UniqueFd* out) override;
    [[nodiscard]] uid_t uid() const override { return uid_; }
    [[nodiscard]] pid_t tgid() const override { return tgid_; }
    [[nodiscard]] std::uint64_t process_key() const override { return process_key_; }
    [[nodiscard]] bool capable(Capability cap) const override;
    [[nodiscard]] std::uint64_t memlock_limit() const override;

    // True while the process opened at construction is still the one
    // behind `tgid`; false once it exited, so a recycled pid is never used.
    [[nodiscard]] bool alive() const;
    // True while that process still has the address space it had when
    // opened: false after it exits or calls execve(), as the kernel stops
    // using pages->source_mm once that mm is gone.
    [[nodiscard]] bool same_address_space() const;

    // One copy without the address-space checks around it: only for a
    // caller that cannot exec or exit during the copy (see WaitingCaller).
    [[nodiscard]] int read_unguarded(std::uint64_t addr, std::span<std::byte> out) const;
    [[nodiscard]] int write_unguarded(std::uint64_t addr, std::span<const std::byte> in) const;

private:
    struct Key {};

public:
    ProcessCaller(Key, pid_t tgid, uid_t uid, UniqueFd pidfd, UniqueFd mem, std::uint64_t key,
                  std::uint64_t cap_effective);

private:

    int read(std::uint64_t addr, std::span<std::byte> out) override;
    int write(std::uint64_t addr, std::span<const std::byte> in) override;
    int check_mapped(std::uint64_t addr, std::uint64_t length, bool for_write) override;
    int device_read(std::uint64_t addr, std::span<std::byte> out) override;
    int device_write(std::uint64_t addr, std::span<const std::byte> in) override;
    int shared_files(std::uint64_t addr, std::uint64_t length,
                     std::vector<SharedFileRange>* out) override;

    pid_t tgid_;
    uid_t uid_;
    UniqueFd pidfd_;
    UniqueFd mem_; // /proc/<pid>/mem: bound to the address space, not the pid
    std::uint64_t process_key_;
    std::uint64_t cap_effective_;
};

} // namespace ioasid::memory
