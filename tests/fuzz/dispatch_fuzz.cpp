// Fuzz target for the ioctl path: each input is a program of iommufd calls
// on one context, with struct fields drawn from values near the edges the
// kernel checks. After the program the context is closed and every pinned
// page, charge and physical reservation must be gone.
#include <ioasid/iommufd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "core/access.h"
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

struct Harness {
    core::CoreServices services;
    std::shared_ptr<memory::BufferCaller> caller = std::make_shared<memory::BufferCaller>();

    Harness()
    {
        caller->add_region(kStruct, 0x1000);
        caller->add_region(kArray, 0x10000);
        caller->add_region(kUser, 0x20000);
    }
};

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
            switch (in.byte() % 11) {
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
            default: {
                iommu_vfio_ioas a{.size = sizeof(a), .ioas_id = in.id(), .op = std::uint16_t(in.byte() % 4),
                                  .__reserved = 0};
                call(ctx, *h.caller, who, IOMMU_VFIO_IOAS, a, in.size(sizeof(a)), tail);
                break;
            }
            }
        }
    }
    // Closing the context must give back everything it pinned.
    if (h.services.phys.reserved_pages() != 0 || h.services.accounting.user_pages(h.caller->uid()) != 0 ||
        h.services.accounting.process_pages(h.caller->process_key()) != 0)
        std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    Input in(data, size);
    run(in);
    return 0;
}
