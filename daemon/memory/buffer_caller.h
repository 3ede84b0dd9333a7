// An in-process stand-in for a client: its "address space" is a set of
// buffers placed at addresses the test chooses. Used by unit tests and the
// benchmark, where no second process exists.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "caller.h"

namespace ioasid::memory {

class BufferCaller final : public Caller, private CallerMemory {
public:
    BufferCaller();

    // Makes [addr, addr + length) readable (and writable when asked), zero filled.
    void add_region(std::uint64_t addr, std::uint64_t length, bool writable = true);

    // The client's descriptor table: `number` names `file` until removed.
    // take_fd() hands out duplicates, as pidfd_getfd() does.
    void add_fd(int number, UniqueFd file);
    void remove_fd(int number);

    // Files the daemon handed over (hand_over_file) get the lowest number
    // free in the table; the test reaches them by number and closes them
    // with close_file(), which drops the file as a client's last close does
    // (the file may take its context's lock: not to be called under it).
    [[nodiscard]] std::shared_ptr<core::ClientFile> file(int number);
    void close_file(int number);
    [[nodiscard]] std::size_t file_count();

    void set_capable(Capability cap, bool on);
    // The process exits: its memory answers -ESRCH from now on, as a
    // ProcessCaller's does once its process is gone.
    void exit() { std::lock_guard guard(lock_); exited_ = true; }
    void set_memlock_limit(std::uint64_t bytes) { memlock_limit_ = bytes; }

    CallerMemory& memory() override { return *this; }
    [[nodiscard]] int take_fd(int fd, UniqueFd* out) override;
    [[nodiscard]] int hand_over_file(std::shared_ptr<core::ClientFile> file,
                                     std::uint64_t number_addr) override;
    [[nodiscard]] int find_file(int fd, std::shared_ptr<core::ClientFile>* file) override;
    [[nodiscard]] uid_t uid() const override { return uid_; }
    [[nodiscard]] pid_t tgid() const override { return 0; }
    [[nodiscard]] std::uint64_t process_key() const override { return key_; }
    [[nodiscard]] bool capable(Capability cap) const override;
    [[nodiscard]] std::uint64_t memlock_limit() const override { return memlock_limit_; }

private:
    struct Region {
        std::vector<std::byte> bytes;
        bool writable;
    };
    template <typename Fn>
    int for_each_piece(std::uint64_t addr, std::uint64_t length, bool for_write, Fn&& fn);

    int read(std::uint64_t addr, std::span<std::byte> out) override;
    int write(std::uint64_t addr, std::span<const std::byte> in) override;
    int check_mapped(std::uint64_t addr, std::uint64_t length, bool for_write) override;

    std::mutex lock_;
    std::map<std::uint64_t, Region> regions_;
    std::map<int, UniqueFd> fds_;
    std::map<int, std::shared_ptr<core::ClientFile>> files_;
    const uid_t uid_ = 1000;
    std::uint64_t key_;
    bool exited_ = false;
    bool cap_ipc_lock_ = false;
    bool cap_sys_resource_ = true;
    std::uint64_t memlock_limit_ = UINT64_MAX;
};

} // namespace ioasid::memory
