// Decoding of ioctl structs for the daemon's --trace output.
#include <ioasid/emu.h>
#include <ioasid/iommufd.h>
#include <linux/ioctl.h>

#include <algorithm>
#include <cstdio>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "dispatcher.h"

namespace ioasid::dispatch {
namespace {

// How a field is printed. Signed fields (a descriptor) are read through the
// same 64-bit getter, sign-extended, and printed as signed.
enum class Radix { dec, hex, signed_dec };

// One field of a struct: its name and how to print it.
template <typename S>
struct Field {
    std::string_view name;
    std::uint64_t (*get)(const S&);
    Radix radix;
};

#define FIELD(S, f, hex) Field<S>{#f, [](const S& s) -> std::uint64_t { return s.f; }, hex}

template <typename S>
std::string format(std::string_view name, memory::CallerMemory& mem, std::uint64_t arg,
                   std::initializer_list<Field<S>> fields)
{
    std::string out(name);
    std::uint32_t size = 0;
    if (mem.read(arg, std::as_writable_bytes(std::span(&size, 1)))) {
        out += "{unreadable}";
        return out;
    }
    S value{};
    const std::size_t n = std::min<std::size_t>(size, sizeof(S));
    if (mem.read(arg, std::as_writable_bytes(std::span(&value, 1)).first(n))) {
        out += "{size=" + std::to_string(size) + ", rest unreadable}";
        return out;
    }
    out += "{size=" + std::to_string(size);
    for (const Field<S>& field : fields) {
        char buf[32];
        const std::uint64_t v = field.get(value);
        if (field.radix == Radix::signed_dec)
            std::snprintf(buf, sizeof(buf), "%lld", static_cast<long long>(v));
        else
            std::snprintf(buf, sizeof(buf), field.radix == Radix::hex ? "%#llx" : "%llu",
                          static_cast<unsigned long long>(v));
        out += ' ';
        out += field.name;
        out += '=';
        out += buf;
    }
    out += '}';
    return out;
}

constexpr Radix hex = Radix::hex;
constexpr Radix dec = Radix::dec;
constexpr Radix sdec = Radix::signed_dec;

} // namespace

std::string describe(unsigned int cmd, memory::CallerMemory& mem, std::uint64_t arg)
{
    switch (cmd) {
    case IOMMU_DESTROY:
        return format<iommu_destroy>("IOMMU_DESTROY", mem, arg, {FIELD(iommu_destroy, id, dec)});
    case IOMMU_IOAS_ALLOC:
        return format<iommu_ioas_alloc>("IOMMU_IOAS_ALLOC", mem, arg,
                                        {FIELD(iommu_ioas_alloc, flags, hex),
                                         FIELD(iommu_ioas_alloc, out_ioas_id, dec)});
    case IOMMU_IOAS_ALLOW_IOVAS:
        return format<iommu_ioas_allow_iovas>(
            "IOMMU_IOAS_ALLOW_IOVAS", mem, arg,
            {FIELD(iommu_ioas_allow_iovas, ioas_id, dec),
             FIELD(iommu_ioas_allow_iovas, num_iovas, dec),
             FIELD(iommu_ioas_allow_iovas, allowed_iovas, hex)});
    case IOMMU_IOAS_COPY:
        return format<iommu_ioas_copy>("IOMMU_IOAS_COPY", mem, arg,
                                       {FIELD(iommu_ioas_copy, flags, hex),
                                        FIELD(iommu_ioas_copy, dst_ioas_id, dec),
                                        FIELD(iommu_ioas_copy, src_ioas_id, dec),
                                        FIELD(iommu_ioas_copy, length, hex),
                                        FIELD(iommu_ioas_copy, dst_iova, hex),
                                        FIELD(iommu_ioas_copy, src_iova, hex)});
    case IOMMU_IOAS_IOVA_RANGES:
        return format<iommu_ioas_iova_ranges>(
            "IOMMU_IOAS_IOVA_RANGES", mem, arg,
            {FIELD(iommu_ioas_iova_ranges, ioas_id, dec),
             FIELD(iommu_ioas_iova_ranges, num_iovas, dec),
             FIELD(iommu_ioas_iova_ranges, allowed_iovas, hex),
             FIELD(iommu_ioas_iova_ranges, out_iova_alignment, hex)});
    case IOMMU_IOAS_MAP:
        return format<iommu_ioas_map>("IOMMU_IOAS_MAP", mem, arg,
                                      {FIELD(iommu_ioas_map, flags, hex),
                                       FIELD(iommu_ioas_map, ioas_id, dec),
                                       FIELD(iommu_ioas_map, user_va, hex),
                                       FIELD(iommu_ioas_map, length, hex),
                                       FIELD(iommu_ioas_map, iova, hex)});
    case IOMMU_IOAS_MAP_FILE:
        return format<iommu_ioas_map_file>("IOMMU_IOAS_MAP_FILE", mem, arg,
                                           {FIELD(iommu_ioas_map_file, flags, hex),
                                            FIELD(iommu_ioas_map_file, ioas_id, dec),
                                            FIELD(iommu_ioas_map_file, fd, sdec),
                                            FIELD(iommu_ioas_map_file, start, hex),
                                            FIELD(iommu_ioas_map_file, length, hex),
                                            FIELD(iommu_ioas_map_file, iova, hex)});
    case IOMMU_IOAS_UNMAP:
        return format<iommu_ioas_unmap>("IOMMU_IOAS_UNMAP", mem, arg,
                                        {FIELD(iommu_ioas_unmap, ioas_id, dec),
                                         FIELD(iommu_ioas_unmap, iova, hex),
                                         FIELD(iommu_ioas_unmap, length, hex)});
    case IOMMU_OPTION:
        return format<iommu_option>("IOMMU_OPTION", mem, arg,
                                    {FIELD(iommu_option, option_id, dec),
                                     FIELD(iommu_option, op, dec),
                                     FIELD(iommu_option, object_id, dec),
                                     FIELD(iommu_option, val64, hex)});
    case IOMMU_VFIO_IOAS:
        return format<iommu_vfio_ioas>("IOMMU_VFIO_IOAS", mem, arg,
                                       {FIELD(iommu_vfio_ioas, ioas_id, dec),
                                        FIELD(iommu_vfio_ioas, op, dec)});
    case IOASID_EMU_STATUS:
        return format<ioasid_emu_status>("IOASID_EMU_STATUS", mem, arg,
                                         {FIELD(ioasid_emu_status, flags, hex),
                                          FIELD(ioasid_emu_status, buf_len, dec),
                                          FIELD(ioasid_emu_status, out_len, dec)});
    default: {
        char buf[64];
        std::snprintf(buf, sizeof(buf), "ioctl(type=%#x nr=%#x size=%u dir=%u)", _IOC_TYPE(cmd),
                      _IOC_NR(cmd), _IOC_SIZE(cmd), _IOC_DIR(cmd));
        return buf;
    }
    }
}

} // namespace ioasid::dispatch

#undef FIELD
