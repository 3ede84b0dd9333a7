// Fuzz target for the ioctl path: each input is a program of iommufd calls
// on one context, with struct fields drawn from values near the edges the
// kernel checks. After the program the context is closed and every pinned
// page, charge and physical reservation must be gone.
#include <ioasid/emu.h>
#include <ioasid/iommufd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "core/access.h"
#include "hwmodels/families.h"
#include "core/context.h"
#include "dispatch/dispatcher.h"
#include "memory/buffer_caller.h"

namespace {

using namespace ioasid;

constexpr std::uint64_t kStruct = 0x10000;
constexpr std::uint64_t kArray = 0x20000;
constexpr std::uint64_t kUser = 0x10000000;

class Input {
public:
    Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
    bool empty() const { return pos_ >= size_; }
    std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
    std::uint32_t u32()
    {
        std::uint32_t v = 0;
        for (int i = 0; i < 4; ++i)
            v = v << 8 | byte();
        return v;
    }
    std::uint64_t u64() { return std::uint64_t{u32()} << 32 | u32(); }
    std::uint32_t id() { return byte() % 8; }
    std::uint64_t iova()
    {
        static constexpr std::uint64_t kEdges[] = {0, 1, 0xfff, 0x1000, 0x1001, 0x200000,
                                                   0x1000000, 1ULL << 32, UINT64_MAX - 0xfff,
                                                   UINT64_MAX - 1, UINT64_MAX};
        std::uint8_t pick = byte();
        if (pick < 128)
            return (pick % 64) * 0x1000 + ((pick & 64) ? 0x123 : 0);
        if (pick < 200)
            return kEdges[pick % std::size(kEdges)];
        return u64();
    }
    std::uint64_t length()
    {
        static constexpr std::uint64_t kEdges[] = {0, 1, 0xfff, 0x1000, 0x2000, 0x200000,
                                                   UINT64_MAX / 2, UINT64_MAX - 0x1000,
                                                   UINT64_MAX};
        std::uint8_t pick = byte();
        if (pick < 160)
            return (1 + pick % 16) * 0x1000;
        if (pick < 220)
            return kEdges[pick % std::size(kEdges)];
        return u64();
    }
    std::uint64_t user_va()
    {
        std::uint8_t pick = byte();
        if (pick < 200)
            return kUser + (pick % 32) * 0x1000 + ((pick & 32) ? 0x10 : 0);
        return u64();
    }
    std::uint32_t flags(std::uint32_t known)
    {
        std::uint8_t pick = byte();
        return pick < 240 ? (pick & known) : u32();
    }
    std::uint32_t size(std::uint32_t real)
    {
        std::uint8_t pick = byte();
        if (pick < 220)
            return real;
        if (pick < 235)
            return real - 1 - pick % 4;
        return real + pick % 64;
    }

private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t pos_ = 0;
};

// Family keys left at their defaults.
class NoParams final : public hw::UnitParams {
public:
    std::optional<bool> boolean(std::string_view) override { return std::nullopt; }
    std::optional<std::int64_t> integer(std::string_view) override { return std::nullopt; }
    std::optional<std::string> string(std::string_view) override { return std::nullopt; }
    std::string where(std::string_view) const override { return "fuzz"; }
};

constexpr const char* kDevices[] = {"m0", "m1", "v0", "v1", "v2", "s0", "a0", "t0", "q0"};

struct Harness {
    core::CoreServices services;
    std::shared_ptr<memory::BufferCaller> caller = std::make_shared<memory::BufferCaller>();
    // What the units reserve for themselves (an SMMU's stream table).
    std::uint64_t unit_reserved_pages = 0;

    Harness()
    {
        caller->add_region(kStruct, 0x1000);
        caller->add_region(kArray, 0x10000);
        caller->add_region(kUser, 0x20000);
        // A unit of each family, named after it; v1 and v2 share an IOMMU
        // group, m1, v2, s0 and a0 take PASIDs, v2 only PASIDs.
        NoParams params;
        for (const hw::Family& family : hw::families()) {
            const std::string name(family.name);
            services.hardware.add_unit(family.create(name, params, services.phys));
        }
        services.hardware.add_device("mock", {"m0", 1, 0, true}, "m0", false, "vfio0");
        services.hardware.add_device("mock", {"m1", 2, 8, true}, "m1", false, "vfio1");
        services.hardware.add_device("vtd", {"v0", 8, 0, true}, "v0", false, "vfio2");
        services.hardware.add_device("vtd", {"v1", 16, 4, false}, "g", false, "vfio3");
        services.hardware.add_device("vtd", {"v2", 17, 4, true}, "g", true, "vfio4");
        services.hardware.add_device("smmuv3", {"s0", 3, 8, true}, "s0", false, "vfio5");
        services.hardware.add_device("amd", {"a0", 4, 8, true}, "a0", false, "vfio6");
        services.hardware.add_device("ppc_tce", {"t0", 5, 0, true}, "t0", false, "vfio7");
        services.hardware.add_device("virtio", {"q0", 6, 0, true}, "q0", false, "vfio8");
        unit_reserved_pages = services.phys.reserved_pages();
    }
};

[[noreturn]] void die_leaking(const char* what, std::uint64_t count)
{
    std::fprintf(stderr, "dispatch-fuzz: after closing the context: %s (%llu)\n", what,
                 static_cast<unsigned long long>(count));
    std::abort();
}

void leak(const char* what, std::uint64_t count)
{
    if (count)
        die_leaking(what, count);
}

template <typename T>
void call(core::Context& ctx, memory::BufferCaller& caller, const std::shared_ptr<memory::Caller>& who,
          unsigned cmd, T& arg, std::uint32_t size, std::uint8_t tail)
{
    std::vector<std::byte> bytes(std::max<std::size_t>(size, sizeof(T)) + 64);
    std::memcpy(bytes.data(), &arg, sizeof(T));
    if (size > sizeof(T))
        bytes[size - 1] = std::byte{tail};
    (void)caller.memory().write(kStruct, bytes);
    (void)dispatch::ioctl(ctx, cmd, who, kStruct);
}

void run(Input& in)
{
    static Harness* harness = new Harness; // one per process; checked after each input
    Harness& h = *harness;
    {
        core::Context ctx(h.services);
        std::shared_ptr<memory::Caller> who = h.caller;
        for (int steps = 0; !in.empty() && steps < 64; ++steps) {
            std::uint8_t tail = in.byte() & 1;
            switch (in.byte() % 20) {
            case 0: {
                iommu_ioas_alloc a{.size = sizeof(a), .flags = in.flags(0), .out_ioas_id = 0};
                call(ctx, *h.caller, who, IOMMU_IOAS_ALLOC, a, in.size(sizeof(a)), tail);
                break;
            }
            case 1: {
                iommu_destroy a{.size = sizeof(a), .id = in.id()};
                call(ctx, *h.caller, who, IOMMU_DESTROY, a, in.size(sizeof(a)), tail);
                break;
            }
            case 2:
            case 3: {
                iommu_ioas_map a{.size = sizeof(a), .flags = in.flags(7), .ioas_id = in.id(),
                                 .__reserved = in.byte() < 250 ? 0u : 1u, .user_va = in.user_va(),
                                 .length = in.length(), .iova = in.iova()};
                call(ctx, *h.caller, who, IOMMU_IOAS_MAP, a, in.size(sizeof(a)), tail);
                break;
            }
            case 4: {
                iommu_ioas_unmap a{.size = sizeof(a), .ioas_id = in.id(), .iova = in.iova(),
                                   .length = in.byte() < 40 ? UINT64_MAX : in.length()};
                call(ctx, *h.caller, who, IOMMU_IOAS_UNMAP, a, in.size(sizeof(a)), tail);
                break;
            }
            case 5: {
                iommu_ioas_copy a{.size = sizeof(a), .flags = in.flags(7), .dst_ioas_id = in.id(),
                                  .src_ioas_id = in.id(), .length = in.length(),
                                  .dst_iova = in.iova(), .src_iova = in.iova()};
                call(ctx, *h.caller, who, IOMMU_IOAS_COPY, a, in.size(sizeof(a)), tail);
                break;
            }
            case 6: {
                iommu_ioas_iova_ranges a{.size = sizeof(a), .ioas_id = in.id(), .num_iovas = in.byte() % 4u,
                                         .__reserved = 0, .allowed_iovas = in.byte() < 240 ? kArray : in.u64(),
                                         .out_iova_alignment = 0};
                call(ctx, *h.caller, who, IOMMU_IOAS_IOVA_RANGES, a, in.size(sizeof(a)), tail);
                break;
            }
            case 7: {
                std::uint32_t n = in.byte() % 4;
                for (std::uint32_t i = 0; i < n; ++i) {
                    iommu_iova_range r{.start = in.iova(), .last = in.iova()};
                    (void)h.caller->memory().write(kArray + i * sizeof(r), std::as_bytes(std::span(&r, 1)));
                }
                iommu_ioas_allow_iovas a{.size = sizeof(a), .ioas_id = in.id(), .num_iovas = n,
                                         .__reserved = 0, .allowed_iovas = kArray};
                call(ctx, *h.caller, who, IOMMU_IOAS_ALLOW_IOVAS, a, in.size(sizeof(a)), tail);
                break;
            }
            case 8: {
                iommu_option a{.size = sizeof(a), .option_id = in.byte() % 3u, .op = std::uint16_t(in.byte() % 3),
                               .__reserved = 0, .object_id = in.id(), .val64 = in.byte() % 3u};
                call(ctx, *h.caller, who, IOMMU_OPTION, a, in.size(sizeof(a)), tail);
                break;
            }
            case 9: {
                // An in-daemon user pins and copies through the IOAS.
                std::uint32_t ioas = in.id();
                std::uint32_t access_id;
                if (core::access_create(ctx, ioas, 1, nullptr, &access_id) == 0) {
                    auto* access = ctx.objects().find_as<core::Access>(access_id);
                    std::vector<std::uint64_t> phys;
                    (void)access->pin_pages(in.iova(), in.length() % 0x10000, in.byte() & 1, &phys);
                    std::byte buf[64];
                    (void)access->rw(in.iova(), buf, in.byte() & 1);
                }
                break;
            }
            case 11: {
                ioasid_emu_device_bind a{.size = sizeof(a), .flags = in.flags(0), .name = {},
                                         .out_dev_id = 0, .__reserved = 0};
                std::strcpy(a.name, kDevices[in.byte() % std::size(kDevices)]);
                call(ctx, *h.caller, who, IOASID_EMU_DEVICE_BIND, a, in.size(sizeof(a)), tail);
                break;
            }
            case 12: {
                ioasid_emu_device_unbind a{.size = sizeof(a), .dev_id = in.id()};
                call(ctx, *h.caller, who, IOASID_EMU_DEVICE_UNBIND, a, in.size(sizeof(a)), tail);
                break;
            }
            case 13:
            case 14: {
                ioasid_emu_device_attach a{.size = sizeof(a), .flags = in.flags(IOASID_EMU_DEVICE_PASID),
                                           .dev_id = in.id(), .pt_id = in.id(), .pasid = in.byte() % 20u,
                                           .__reserved = 0};
                call(ctx, *h.caller, who, IOASID_EMU_DEVICE_ATTACH, a, in.size(sizeof(a)), tail);
                break;
            }
            case 15: {
                ioasid_emu_device_detach a{.size = sizeof(a), .flags = in.flags(IOASID_EMU_DEVICE_PASID),
                                           .dev_id = in.id(), .pasid = in.byte() % 20u};
                call(ctx, *h.caller, who, IOASID_EMU_DEVICE_DETACH, a, in.size(sizeof(a)), tail);
                break;
            }
            case 16: {
                iommu_hwpt_alloc a{.size = sizeof(a), .flags = in.flags(0xf), .dev_id = in.id(),
                                   .pt_id = in.id(), .out_hwpt_id = 0, .__reserved = 0,
                                   .data_type = in.byte() < 240 ? 0u : in.u32(), .data_len = in.byte() % 2 * 8u,
                                   .data_uptr = kArray, .fault_id = 0, .__reserved2 = 0};
                call(ctx, *h.caller, who, IOMMU_HWPT_ALLOC, a, in.size(sizeof(a)), tail);
                break;
            }
            case 17: {
                ioasid_emu_dma a{.size = sizeof(a), .flags = in.flags(3), .dev_id = in.id(),
                                 .pasid = in.byte() % 20u, .iova = in.iova(), .length = in.length() % 0x11000,
                                 .buf_uptr = kArray, .out_done = 0, .out_fault_reason = 0,
                                 .out_fault_code = 0, .out_fault_iova = 0};
                call(ctx, *h.caller, who, IOASID_EMU_DMA, a, in.size(sizeof(a)), tail);
                break;
            }
            case 18: {
                iommu_hwpt_set_dirty_tracking a{.size = sizeof(a), .flags = in.flags(1), .hwpt_id = in.id(),
                                                .__reserved = 0};
                call(ctx, *h.caller, who, IOMMU_HWPT_SET_DIRTY_TRACKING, a, in.size(sizeof(a)), tail);
                break;
            }
            case 19: {
                iommu_hwpt_get_dirty_bitmap a{.size = sizeof(a), .hwpt_id = in.id(), .flags = in.flags(1),
                                              .__reserved = 0, .iova = in.iova(), .length = in.length(),
                                              .page_size = in.byte() < 200 ? 0x1000u : in.u64(),
                                              .data = kArray};
                call(ctx, *h.caller, who, IOMMU_HWPT_GET_DIRTY_BITMAP, a, in.size(sizeof(a)), tail);
                break;
            }
            default: {
                iommu_vfio_ioas a{.size = sizeof(a), .ioas_id = in.id(), .op = std::uint16_t(in.byte() % 4),
                                  .__reserved = 0};
                call(ctx, *h.caller, who, IOMMU_VFIO_IOAS, a, in.size(sizeof(a)), tail);
                break;
            }
            }
        }
    }
    // Closing the context must give back everything it pinned, every
    // page-table page and every device. The units' own structures stay
    // (the SMMU's CD tables live as long as the device, as in the
    // kernel), in blocks apart from the page tables'.
    for (const auto& device : h.services.hardware.devices())
        if (h.services.hardware.owner_of(*device) != nullptr)
            leak("device still bound", 1);
    for (const auto& unit : h.services.hardware.units())
        leak("page-table pages still held by a unit", unit->page_table_pages());
    leak("physical pages still reserved", h.services.phys.reserved_pages() - h.unit_reserved_pages);
    leak("pages still charged to the user", h.services.accounting.user_pages(h.caller->uid()));
    leak("pages still charged to the process", h.services.accounting.process_pages(h.caller->process_key()));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    Input in(data, size);
    run(in);
    return 0;
}
