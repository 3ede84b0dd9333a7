// The caller of a CUSE ioctl, for the length of that ioctl.
//
// Once the daemon has read a CUSE request, the calling thread waits for the
// answer uninterruptibly (fuse's request_wait_answer): it cannot be killed,
// and neither exit nor an execve() in another thread can complete while it
// waits (de_thread() waits for it). The process's address space is
// therefore fixed for the whole request, so the copies skip the checks
// ProcessCaller makes around each one; what outlives the request (pages)
// gets the checked ProcessCaller through lasting().
#pragma once

#include <memory>

#include "process_caller.h"

namespace ioasid::memory {

class WaitingCaller final : public Caller, private CallerMemory {
public:
    // `process` was checked to still have its address space when the
    // request arrived (CallerCache::get does).
    explicit WaitingCaller(std::shared_ptr<ProcessCaller> process) : process_(std::move(process)) {}

    CallerMemory& memory() override { return *this; }
    std::shared_ptr<Caller> lasting() override { return process_; }
    [[nodiscard]] int take_fd(int fd, UniqueFd* out) override { return process_->take_fd(fd, out); }
    [[nodiscard]] uid_t uid() const override { return process_->uid(); }
    [[nodiscard]] pid_t tgid() const override { return process_->tgid(); }
    [[nodiscard]] std::uint64_t process_key() const override { return process_->process_key(); }
    [[nodiscard]] bool capable(Capability cap) const override { return process_->capable(cap); }
    [[nodiscard]] std::uint64_t memlock_limit() const override { return process_->memlock_limit(); }

private:
    int read(std::uint64_t addr, std::span<std::byte> out) override
    {
        return process_->read_unguarded(addr, out);
    }
    int write(std::uint64_t addr, std::span<const std::byte> in) override
    {
        return process_->write_unguarded(addr, in);
    }
    int check_mapped(std::uint64_t addr, std::uint64_t length, bool for_write) override
    {
        return process_->memory().check_mapped(addr, length, for_write);
    }

    std::shared_ptr<ProcessCaller> process_;
};

} // namespace ioasid::memory
