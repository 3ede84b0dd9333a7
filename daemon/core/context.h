// One open file of the device: the kernel's iommufd_ctx.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>

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
};

class Context {
public:
    explicit Context(CoreServices& services, AccountMode account_mode = AccountMode::user);
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

    // IOMMU_DESTROY.
    [[nodiscard]] int destroy(std::uint32_t id);

    // IOMMU_OPTION_RLIMIT_MODE: value 0 = per user, 1 = per process.
    [[nodiscard]] int get_rlimit_mode(std::uint64_t* value) const;
    [[nodiscard]] int set_rlimit_mode(const memory::Caller& caller, std::uint64_t value);

    // IOMMU_VFIO_IOAS: the IOAS the VFIO compatibility ioctls act on.
    [[nodiscard]] int vfio_ioas_get(std::uint32_t* id) const;
    [[nodiscard]] int vfio_ioas_set(std::uint32_t id);
    void vfio_ioas_clear() { vfio_ioas_ = nullptr; }

private:
    std::mutex lock_;
    PinServices pin_services_;
    AccountMode account_mode_;
    Ioas* vfio_ioas_ = nullptr; // not a reference: DESTROY of it clears this
    ObjectTable objects_;       // last member: its objects die first
};

} // namespace ioasid::core
