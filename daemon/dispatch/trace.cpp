// Decoding of ioctl structs for the daemon's --trace output.
#include <ioasid/emu.h>
#include <ioasid/iommufd.h>
#include <ioasid/vfio.h>
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
                   std::initializer_list<Field<S>> fields, std::string_view size_name = "size")
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
        out += "{" + std::string(size_name) + "=" + std::to_string(size) + ", rest unreadable}";
        return out;
    }
    out += "{" + std::string(size_name) + "=" + std::to_string(size);
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
    case IOMMU_HWPT_ALLOC:
        return format<iommu_hwpt_alloc>("IOMMU_HWPT_ALLOC", mem, arg,
                                        {FIELD(iommu_hwpt_alloc, flags, hex),
                                         FIELD(iommu_hwpt_alloc, dev_id, dec),
                                         FIELD(iommu_hwpt_alloc, pt_id, dec),
                                         FIELD(iommu_hwpt_alloc, out_hwpt_id, dec),
                                         FIELD(iommu_hwpt_alloc, data_type, hex),
                                         FIELD(iommu_hwpt_alloc, data_len, dec)});
    case IOMMU_GET_HW_INFO:
        return format<iommu_hw_info>("IOMMU_GET_HW_INFO", mem, arg,
                                     {FIELD(iommu_hw_info, flags, hex),
                                      FIELD(iommu_hw_info, dev_id, dec),
                                      FIELD(iommu_hw_info, data_len, dec),
                                      FIELD(iommu_hw_info, out_data_type, hex),
                                      FIELD(iommu_hw_info, out_max_pasid_log2, dec),
                                      FIELD(iommu_hw_info, out_capabilities, hex)});
    case IOMMU_HWPT_SET_DIRTY_TRACKING:
        return format<iommu_hwpt_set_dirty_tracking>(
            "IOMMU_HWPT_SET_DIRTY_TRACKING", mem, arg,
            {FIELD(iommu_hwpt_set_dirty_tracking, flags, hex),
             FIELD(iommu_hwpt_set_dirty_tracking, hwpt_id, dec)});
    case IOMMU_HWPT_GET_DIRTY_BITMAP:
        return format<iommu_hwpt_get_dirty_bitmap>(
            "IOMMU_HWPT_GET_DIRTY_BITMAP", mem, arg,
            {FIELD(iommu_hwpt_get_dirty_bitmap, hwpt_id, dec),
             FIELD(iommu_hwpt_get_dirty_bitmap, flags, hex),
             FIELD(iommu_hwpt_get_dirty_bitmap, iova, hex),
             FIELD(iommu_hwpt_get_dirty_bitmap, length, hex),
             FIELD(iommu_hwpt_get_dirty_bitmap, page_size, hex)});
    case IOMMU_HWPT_INVALIDATE:
        return format<iommu_hwpt_invalidate>("IOMMU_HWPT_INVALIDATE", mem, arg,
                                             {FIELD(iommu_hwpt_invalidate, hwpt_id, dec),
                                              FIELD(iommu_hwpt_invalidate, data_type, hex),
                                              FIELD(iommu_hwpt_invalidate, entry_len, dec),
                                              FIELD(iommu_hwpt_invalidate, entry_num, dec)});
    case IOMMU_FAULT_QUEUE_ALLOC:
        return format<iommu_fault_alloc>("IOMMU_FAULT_QUEUE_ALLOC", mem, arg,
                                         {FIELD(iommu_fault_alloc, flags, hex),
                                          FIELD(iommu_fault_alloc, out_fault_id, dec),
                                          FIELD(iommu_fault_alloc, out_fault_fd, dec)});
    // The VFIO container ioctls: three take an integer, the rest argsz.
    case VFIO_GET_API_VERSION:
        return "VFIO_GET_API_VERSION";
    case VFIO_CHECK_EXTENSION:
        return "VFIO_CHECK_EXTENSION(" + std::to_string(arg) + ")";
    case VFIO_SET_IOMMU:
        return "VFIO_SET_IOMMU(" + std::to_string(arg) + ")";
    case VFIO_IOMMU_GET_INFO:
        return format<vfio_iommu_type1_info>("VFIO_IOMMU_GET_INFO", mem, arg,
                                             {FIELD(vfio_iommu_type1_info, flags, hex),
                                              FIELD(vfio_iommu_type1_info, iova_pgsizes, hex),
                                              FIELD(vfio_iommu_type1_info, cap_offset, dec)},
                                             "argsz");
    case VFIO_IOMMU_MAP_DMA:
        return format<vfio_iommu_type1_dma_map>("VFIO_IOMMU_MAP_DMA", mem, arg,
                                                {FIELD(vfio_iommu_type1_dma_map, flags, hex),
                                                 FIELD(vfio_iommu_type1_dma_map, vaddr, hex),
                                                 FIELD(vfio_iommu_type1_dma_map, iova, hex),
                                                 FIELD(vfio_iommu_type1_dma_map, size, hex)},
                                                "argsz");
    case VFIO_IOMMU_UNMAP_DMA:
        return format<vfio_iommu_type1_dma_unmap>("VFIO_IOMMU_UNMAP_DMA", mem, arg,
                                                  {FIELD(vfio_iommu_type1_dma_unmap, flags, hex),
                                                   FIELD(vfio_iommu_type1_dma_unmap, iova, hex),
                                                   FIELD(vfio_iommu_type1_dma_unmap, size, hex)},
                                                  "argsz");
    case IOASID_EMU_DEVICE_BIND:
        return format<ioasid_emu_device_bind>("IOASID_EMU_DEVICE_BIND", mem, arg,
                                              {FIELD(ioasid_emu_device_bind, flags, hex),
                                               FIELD(ioasid_emu_device_bind, out_dev_id, dec)});
    case IOASID_EMU_DEVICE_UNBIND:
        return format<ioasid_emu_device_unbind>("IOASID_EMU_DEVICE_UNBIND", mem, arg,
                                                {FIELD(ioasid_emu_device_unbind, dev_id, dec)});
    case IOASID_EMU_DEVICE_ATTACH:
        return format<ioasid_emu_device_attach>("IOASID_EMU_DEVICE_ATTACH", mem, arg,
                                                {FIELD(ioasid_emu_device_attach, flags, hex),
                                                 FIELD(ioasid_emu_device_attach, dev_id, dec),
                                                 FIELD(ioasid_emu_device_attach, pt_id, dec),
                                                 FIELD(ioasid_emu_device_attach, pasid, dec)});
    case IOASID_EMU_DEVICE_DETACH:
        return format<ioasid_emu_device_detach>("IOASID_EMU_DEVICE_DETACH", mem, arg,
                                                {FIELD(ioasid_emu_device_detach, flags, hex),
                                                 FIELD(ioasid_emu_device_detach, dev_id, dec),
                                                 FIELD(ioasid_emu_device_detach, pasid, dec)});
    case IOASID_EMU_DMA:
        return format<ioasid_emu_dma>("IOASID_EMU_DMA", mem, arg,
                                      {FIELD(ioasid_emu_dma, flags, hex),
                                       FIELD(ioasid_emu_dma, dev_id, dec),
                                       FIELD(ioasid_emu_dma, pasid, dec),
                                       FIELD(ioasid_emu_dma, iova, hex),
                                       FIELD(ioasid_emu_dma, length, hex),
                                       FIELD(ioasid_emu_dma, out_done, hex),
                                       FIELD(ioasid_emu_dma, out_fault_reason, dec),
                                       FIELD(ioasid_emu_dma, out_fault_iova, hex)});
    case IOASID_EMU_PT_DUMP:
        return format<ioasid_emu_pt_dump>("IOASID_EMU_PT_DUMP", mem, arg,
                                          {FIELD(ioasid_emu_pt_dump, hwpt_id, dec),
                                           FIELD(ioasid_emu_pt_dump, buf_len, dec),
                                           FIELD(ioasid_emu_pt_dump, out_len, dec)});
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
