// One open file of the device: the kernel's iommufd_ctx.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "context_registry.h"
#include "hardware.h"
#include "memory/caller.h"
#include "memory/phys_space.h"
#include "object_table.h"
#include "pages.h"
#include "pin_accounting.h"

namespace ioasid::core {

class Ioas;

// State shared by every context of one daemon.
struct CoreServices {
    PinAccounting accounting;
    memory::PhysSpace phys;
    ContextRegistry registry;
    Hardware hardware;
};

// Who opened a context and how, as the status report shows it.
struct ContextOrigin {
    std::string transport = "internal";
    uid_t uid = 0;
    pid_t pid = 0;
};

class Context {
public:
    explicit Context(CoreServices& services, AccountMode account_mode = AccountMode::user,
                     ContextOrigin origin = {});
    ~Context();
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    // Lock order, stated once: a context's lock is taken first and held for
    // a whole ioctl; PinAccounting and PhysSpace locks nest inside it and
    // never take another lock. Objects are only touched under this lock.
    [[nodiscard]] std::mutex& lock() { return lock_; }

    [[nodiscard]] ObjectTable& objects() { return objects_; }
    [[nodiscard]] const ObjectTable& objects() const { return objects_; }
    [[nodiscard]] PinServices& pin_services() { return pin_services_; }

    [[nodiscard]] AccountMode account_mode() const { return account_mode_; }

    [[nodiscard]] CoreServices& services() { return services_; }
    // The id the status report gives this context (unique in the daemon).
    [[nodiscard]] std::uint32_t serial() const { return serial_; }
    [[nodiscard]] const ContextOrigin& origin() const { return origin_; }
    [[nodiscard]] std::chrono::system_clock::time_point opened() const { return opened_; }
    // The processes that issued ioctls here, most recent last (a few).
    // Under the context's lock.
    void note_caller(pid_t tgid);
    [[nodiscard]] const std::vector<pid_t>& callers() const { return callers_; }

    // IOMMU_DESTROY.
    [[nodiscard]] int destroy(std::uint32_t id);

    // IOMMU_OPTION_RLIMIT_MODE: value 0 = per user, 1 = per process.
    [[nodiscard]] int get_rlimit_mode(std::uint64_t* value) const;
    [[nodiscard]] int set_rlimit_mode(const memory::Caller& caller, std::uint64_t value);

    // IOMMU_VFIO_IOAS: the IOAS the VFIO compatibility ioctls act on.
    [[nodiscard]] int vfio_ioas_get(std::uint32_t* id) const;
    [[nodiscard]] int vfio_ioas_set(std::uint32_t id);
    void vfio_ioas_clear() { vfio_ioas_ = nullptr; }
    // The compat IOAS itself, or nullptr (the kernel's get_compat_ioas()).
    [[nodiscard]] Ioas* vfio_ioas() const { return vfio_ioas_; }

private:
    std::mutex lock_;
    CoreServices& services_;
    ContextOrigin origin_;
    std::chrono::system_clock::time_point opened_;
    std::vector<pid_t> callers_;
    std::uint32_t serial_ = 0;
    PinServices pin_services_;
    AccountMode account_mode_;
    Ioas* vfio_ioas_ = nullptr; // not a reference: DESTROY of it clears this
    ObjectTable objects_;       // last member: its objects die first
};

} // namespace ioasid::core
