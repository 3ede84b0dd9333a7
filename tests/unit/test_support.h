// A context driven the way a client drives the kernel's iommufd: structs
// placed in the client's memory and passed by address to the dispatcher.
#pragma once

#include <ioasid/iommufd.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <stdexcept>
#include <vector>

#include "core/access.h"
#include "core/context.h"
#include "core/ioas.h"
#include "dispatch/dispatcher.h"
#include "memory/buffer_caller.h"

namespace ioasid::test {

// Where the fixture keeps the ioctl struct, and a scratch area for arrays,
// in the fake client's address space.
inline constexpr std::uint64_t kStructAddr = 0x10000;
inline constexpr std::uint64_t kStructRegion = 0x10000;
inline constexpr std::uint64_t kArrayAddr = 0x40000;
inline constexpr std::uint64_t kArrayRegion = 0x100000;
// Client memory that tests map: 64 MiB, page aligned, writable.
inline constexpr std::uint64_t kBufferAddr = 0x10000000;
inline constexpr std::uint64_t kBufferSize = 64ULL << 20;

class Client {
public:
    explicit Client(core::CoreServices& services,
                    std::shared_ptr<memory::BufferCaller> caller = nullptr)
        : caller_(caller ? std::move(caller) : make_caller()), ctx_(services)
    {
    }

    // A client with the struct and array scratch areas and `buffer_size`
    // bytes of mappable memory at kBufferAddr.
    static std::shared_ptr<memory::BufferCaller> make_caller(std::uint64_t buffer_size = kBufferSize)
    {
        auto caller = std::make_shared<memory::BufferCaller>();
        caller->add_region(kStructAddr, kStructRegion);
        caller->add_region(kArrayAddr, kArrayRegion);
        caller->add_region(kBufferAddr, buffer_size);
        return caller;
    }

    // Runs `cmd` on a copy of `arg` in client memory, then copies what the
    // "kernel" left there back into `arg`. Returns 0 or -errno.
    template <typename T>
    int ioctl(unsigned int cmd, T& arg)
    {
        return ioctl_bytes(cmd, std::as_writable_bytes(std::span(&arg, 1)));
    }

    // The same with raw bytes, for sizes other than the struct's.
    int ioctl_bytes(unsigned int cmd, std::span<std::byte> bytes)
    {
        write(kStructAddr, bytes);
        int rc = dispatch::ioctl(ctx_, cmd, caller(), kStructAddr);
        read(kStructAddr, bytes);
        return rc;
    }

    int ioctl_at(unsigned int cmd, std::uint64_t addr)
    {
        return dispatch::ioctl(ctx_, cmd, caller(), addr);
    }

    void write(std::uint64_t addr, std::span<const std::byte> bytes)
    {
        if (caller_->memory().write(addr, bytes))
            throw std::runtime_error("test client write outside its memory");
    }
    void read(std::uint64_t addr, std::span<std::byte> bytes)
    {
        if (caller_->memory().read(addr, bytes))
            throw std::runtime_error("test client read outside its memory");
    }

    // Convenience wrappers that return -errno.
    int ioas_alloc(std::uint32_t* id)
    {
        iommu_ioas_alloc cmd{.size = sizeof(cmd), .flags = 0, .out_ioas_id = 0};
        int rc = ioctl(IOMMU_IOAS_ALLOC, cmd);
        *id = cmd.out_ioas_id;
        return rc;
    }
    int map(std::uint32_t ioas, std::uint64_t user_va, std::uint64_t length, std::uint64_t* iova,
            std::uint32_t flags = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)
    {
        iommu_ioas_map cmd{.size = sizeof(cmd), .flags = flags, .ioas_id = ioas, .__reserved = 0,
                           .user_va = user_va, .length = length, .iova = *iova};
        int rc = ioctl(IOMMU_IOAS_MAP, cmd);
        *iova = cmd.iova;
        return rc;
    }
    int map_fixed(std::uint32_t ioas, std::uint64_t user_va, std::uint64_t length, std::uint64_t iova)
    {
        return map(ioas, user_va, length, &iova,
                   IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE);
    }
    int unmap(std::uint32_t ioas, std::uint64_t iova, std::uint64_t length,
              std::uint64_t* unmapped = nullptr)
    {
        iommu_ioas_unmap cmd{.size = sizeof(cmd), .ioas_id = ioas, .iova = iova, .length = length};
        int rc = ioctl(IOMMU_IOAS_UNMAP, cmd);
        if (unmapped)
            *unmapped = cmd.length;
        return rc;
    }
    int destroy(std::uint32_t id)
    {
        iommu_destroy cmd{.size = sizeof(cmd), .id = id};
        return ioctl(IOMMU_DESTROY, cmd);
    }

    [[nodiscard]] core::Context& ctx() { return ctx_; }
    [[nodiscard]] memory::BufferCaller& buffer() { return *caller_; }
    [[nodiscard]] std::shared_ptr<memory::Caller> caller() const { return caller_; }

private:
    std::shared_ptr<memory::BufferCaller> caller_;
    core::Context ctx_;
};

// IOMMU_IOAS_ALLOC that must succeed.
inline std::uint32_t alloc_ok(Client& c)
{
    std::uint32_t id = 0;
    if (c.ioas_alloc(&id) != 0)
        throw std::runtime_error("IOAS_ALLOC failed");
    return id;
}

// IOMMU_VFIO_IOAS: *id goes in and comes back.
inline int vfio_ioas(Client& c, std::uint16_t op, std::uint32_t* id)
{
    iommu_vfio_ioas cmd{.size = sizeof(cmd), .ioas_id = *id, .op = op, .__reserved = 0};
    int rc = c.ioctl(IOMMU_VFIO_IOAS, cmd);
    *id = cmd.ioas_id;
    return rc;
}

// An access on `ioas`, created and destroyed the way in-daemon users do.
inline std::uint32_t make_access(Client& c, std::uint32_t ioas, std::uint64_t iova_alignment = 1)
{
    std::uint32_t id = 0;
    std::lock_guard guard(c.ctx().lock());
    if (core::access_create(c.ctx(), ioas, iova_alignment, nullptr, &id) != 0)
        throw std::runtime_error("access_create failed");
    return id;
}

inline int destroy_access(Client& c, std::uint32_t id)
{
    std::lock_guard guard(c.ctx().lock());
    return core::access_destroy(c.ctx(), id);
}

// One client with one IOAS, for tests that work on a single IOAS.
struct IoasFixture {
    core::CoreServices services;
    Client client{services};
    std::uint32_t ioas = 0;

    IoasFixture()
    {
        if (client.ioas_alloc(&ioas) != 0)
            throw std::runtime_error("IOAS_ALLOC failed");
    }

    std::uint32_t new_ioas()
    {
        std::uint32_t id = 0;
        if (client.ioas_alloc(&id) != 0)
            throw std::runtime_error("IOAS_ALLOC failed");
        return id;
    }

    core::Ioas& obj(std::uint32_t id)
    {
        core::Ioas* p = client.ctx().objects().find_as<core::Ioas>(id);
        if (!p)
            throw std::runtime_error("no such IOAS");
        return *p;
    }
};

} // namespace ioasid::test
