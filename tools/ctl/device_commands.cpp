// The commands of the emulated hardware: topology, bind/unbind,
// attach/detach, HWPT allocation, hw-info, dirty tracking, page-table dumps
// and emulated DMA. IOMMU_* ioctls come from the kernel's ABI, IOASID_EMU_*
// from ours (uapi/ioasid/emu.h).
#include <ioasid/libioasid.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <new>

#include "format.h"
#include "hardware_view.h"
#include "session.h"

namespace ioasid::ctl {
namespace {

using Json = nlohmann::ordered_json;

std::string dev_prefix(std::uint32_t dev, std::optional<std::uint32_t> pasid)
{
    return "dev " + std::to_string(dev) + (pasid ? " pasid " + std::to_string(*pasid) : "") + ": ";
}

// A command whose answer is JSON of any length: grows the buffer until it
// fits (EMSGSIZE with the size needed, as IOASID_EMU_STATUS does).
template <typename Args>
int call_for_json(int fd, unsigned long cmd, Args args, std::string* out)
{
    std::uint32_t room = 64 * 1024;
    for (int tries = 0; tries < 8; ++tries) {
        out->assign(room, '\0');
        args.buf_len = room;
        args.buf_uptr = reinterpret_cast<std::uintptr_t>(out->data());
        int rc = ioasid_ioctl(fd, cmd, &args);
        if (rc == 0 && args.out_len <= room) {
            out->resize(args.out_len);
            return 0;
        }
        if (rc && rc != -EMSGSIZE)
            return rc;
        const std::uint64_t want = std::uint64_t{args.out_len} + args.out_len / 4 + 4096;
        room = static_cast<std::uint32_t>(std::min<std::uint64_t>(want, UINT32_MAX));
    }
    return -EMSGSIZE;
}

std::string capabilities_text(std::uint64_t caps, Json* names)
{
    std::string out;
    auto add = [&](std::uint64_t bit, const char* name) {
        if (!(caps & bit))
            return;
        names->push_back(name);
        out += (out.empty() ? "" : ", ") + std::string(name);
    };
    add(IOMMU_HW_CAP_DIRTY_TRACKING, "dirty-tracking");
    add(IOMMU_HW_CAP_PCI_PASID_EXEC, "pasid-exec");
    add(IOMMU_HW_CAP_PCI_PASID_PRIV, "pasid-priv");
    const std::uint64_t known =
        IOMMU_HW_CAP_DIRTY_TRACKING | IOMMU_HW_CAP_PCI_PASID_EXEC | IOMMU_HW_CAP_PCI_PASID_PRIV;
    if (caps & ~known) {
        names->push_back(hex(caps & ~known));
        out += (out.empty() ? "" : ", ") + hex(caps & ~known);
    }
    return out.empty() ? "none" : out;
}

std::string hw_info_type_name(std::uint32_t type)
{
    switch (type) {
    case IOMMU_HW_INFO_TYPE_NONE:
        return "none";
    case IOMMU_HW_INFO_TYPE_INTEL_VTD:
        return "intel-vtd";
    case IOMMU_HW_INFO_TYPE_ARM_SMMUV3:
        return "arm-smmuv3";
    case IOMMU_HW_INFO_TYPE_AMD:
        return "amd";
    default:
        return "type-" + std::to_string(type);
    }
}

} // namespace

Outcome Session::topology()
{
    Json view = topology_view(report(Topology{}));
    Outcome out;
    out.text = render_topology(view);
    out.fields = std::move(view);
    return out;
}

Outcome Session::bind(const Bind& c)
{
    ioasid_emu_device_bind args{};
    args.size = sizeof(args);
    std::memcpy(args.name, c.name.data(), std::min(c.name.size(), sizeof(args.name) - 1));
    if (int rc = ioasid_ioctl(fd(), IOASID_EMU_DEVICE_BIND, &args))
        fail(-rc, c);
    Outcome out;
    out.fields["name"] = c.name;
    out.fields["id"] = args.out_dev_id;
    out.text = "bound " + c.name + ": dev " + std::to_string(args.out_dev_id);
    out.value = "id";
    return out;
}

Outcome Session::unbind(const Unbind& c)
{
    ioasid_emu_device_unbind args{.size = sizeof(args), .dev_id = c.dev};
    if (int rc = ioasid_ioctl(fd(), IOASID_EMU_DEVICE_UNBIND, &args))
        fail(-rc, c);
    Outcome out;
    out.fields["dev"] = c.dev;
    out.text = "unbound dev " + std::to_string(c.dev);
    return out;
}

Outcome Session::attach(const Attach& c)
{
    ioasid_emu_device_attach args{};
    args.size = sizeof(args);
    args.flags = c.pasid ? IOASID_EMU_DEVICE_PASID : 0;
    args.dev_id = c.dev;
    args.pt_id = c.pt;
    args.pasid = c.pasid.value_or(0);
    if (int rc = ioasid_ioctl(fd(), IOASID_EMU_DEVICE_ATTACH, &args))
        fail(-rc, c);
    Outcome out;
    out.fields["dev"] = c.dev;
    if (c.pasid)
        out.fields["pasid"] = *c.pasid;
    out.fields["pt"] = c.pt;
    out.fields["hwpt"] = args.pt_id;
    out.fields["auto"] = args.pt_id != c.pt;
    out.text = dev_prefix(c.dev, c.pasid) + "attached to hwpt " + std::to_string(args.pt_id) +
               (args.pt_id != c.pt ? " (automatic, for ioas " + std::to_string(c.pt) + ")" : "");
    out.value = "hwpt";
    return out;
}

Outcome Session::detach(const Detach& c)
{
    ioasid_emu_device_detach args{};
    args.size = sizeof(args);
    args.flags = c.pasid ? IOASID_EMU_DEVICE_PASID : 0;
    args.dev_id = c.dev;
    args.pasid = c.pasid.value_or(0);
    if (int rc = ioasid_ioctl(fd(), IOASID_EMU_DEVICE_DETACH, &args))
        fail(-rc, c);
    Outcome out;
    out.fields["dev"] = c.dev;
    if (c.pasid)
        out.fields["pasid"] = *c.pasid;
    out.text = dev_prefix(c.dev, c.pasid) + "detached (DMA blocked)";
    return out;
}

Outcome Session::hwpt_alloc(const HwptAlloc& c)
{
    iommu_hwpt_alloc args{};
    args.size = sizeof(args);
    args.flags = (c.nest_parent ? IOMMU_HWPT_ALLOC_NEST_PARENT : 0) |
                 (c.dirty ? IOMMU_HWPT_ALLOC_DIRTY_TRACKING : 0) | (c.pasid ? IOMMU_HWPT_ALLOC_PASID : 0);
    args.dev_id = c.dev;
    args.pt_id = c.pt;
    if (int rc = ioasid_ioctl(fd(), IOMMU_HWPT_ALLOC, &args))
        fail(-rc, c);
    Outcome out;
    out.fields["id"] = args.out_hwpt_id;
    out.fields["dev"] = c.dev;
    out.fields["pt"] = c.pt;
    out.fields["nest_parent"] = c.nest_parent;
    out.fields["dirty_tracking"] = c.dirty;
    out.fields["pasid"] = c.pasid;
    std::string flags;
    for (auto [on, name] : {std::pair{c.nest_parent, "nest parent"}, {c.dirty, "dirty tracking"}, {c.pasid, "PASID"}})
        if (on)
            flags += (flags.empty() ? "" : ", ") + std::string(name);
    out.text = "hwpt " + std::to_string(args.out_hwpt_id) + " for dev " + std::to_string(c.dev) + " on pt " +
               std::to_string(c.pt) + (flags.empty() ? "" : " (" + flags + ")");
    out.value = "id";
    return out;
}

Outcome Session::hw_info(const HwInfo& c)
{
    std::vector<std::uint8_t> data(256);
    iommu_hw_info args{};
    args.size = sizeof(args);
    args.dev_id = c.dev;
    args.data_len = static_cast<std::uint32_t>(data.size());
    args.data_uptr = reinterpret_cast<std::uintptr_t>(data.data());
    if (int rc = ioasid_ioctl(fd(), IOMMU_GET_HW_INFO, &args))
        fail(-rc, c);
    data.resize(std::min<std::size_t>(data.size(), args.data_len));

    Outcome out;
    Json caps = Json::array();
    const std::string caps_text = capabilities_text(args.out_capabilities, &caps);
    out.fields["dev"] = c.dev;
    out.fields["type"] = args.out_data_type;
    out.fields["type_name"] = hw_info_type_name(args.out_data_type);
    out.fields["capabilities"] = args.out_capabilities;
    out.fields["capability_names"] = std::move(caps);
    out.fields["max_pasid_log2"] = args.out_max_pasid_log2;
    out.fields["data"] = hex_bytes(data);
    out.text = dev_prefix(c.dev, std::nullopt) + hw_info_type_name(args.out_data_type) + ", capabilities " +
               caps_text + ", max PASID " +
               (args.out_max_pasid_log2 ? "log2 " + std::to_string(args.out_max_pasid_log2) + " (PASIDs below " +
                                              hex(std::uint64_t{1} << args.out_max_pasid_log2) + ")"
                                        : "none");
    if (args.out_data_type == IOMMU_HW_INFO_TYPE_INTEL_VTD && data.size() >= sizeof(iommu_hw_info_vtd)) {
        iommu_hw_info_vtd vtd{};
        std::memcpy(&vtd, data.data(), sizeof(vtd));
        out.fields["vtd"] = {{"flags", vtd.flags},
                             {"cap_reg", vtd.cap_reg},
                             {"ecap_reg", vtd.ecap_reg},
                             {"decoded", decode_vtd(vtd.cap_reg, vtd.ecap_reg)}};
        out.text += "\n  flags " + hex(vtd.flags) +
                    (vtd.flags & IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 ? " (ERRATA_772415_SPR17: no read-only "
                                                                         "mappings in a nesting parent)"
                                                                       : "");
        out.text += "\n" + render_vtd(vtd.cap_reg, vtd.ecap_reg);
    } else if (args.out_data_type == IOMMU_HW_INFO_TYPE_ARM_SMMUV3 &&
               data.size() >= sizeof(iommu_hw_info_arm_smmuv3)) {
        iommu_hw_info_arm_smmuv3 smmu{};
        std::memcpy(&smmu, data.data(), sizeof(smmu));
        out.fields["smmuv3"] = {{"flags", smmu.flags},
                                {"idr", smmu.idr},
                                {"iidr", smmu.iidr},
                                {"aidr", smmu.aidr},
                                {"decoded", decode_smmuv3(smmu)}};
        out.text += "\n" + render_smmuv3(smmu);
    } else if (args.out_data_type == IOMMU_HW_INFO_TYPE_AMD && data.size() >= sizeof(iommu_hw_info_amd)) {
        iommu_hw_info_amd amd{};
        std::memcpy(&amd, data.data(), sizeof(amd));
        out.fields["amd"] = {{"efr", amd.efr}, {"efr2", amd.efr2}, {"decoded", decode_amd(amd)}};
        out.text += "\n" + render_amd(amd);
    } else if (!data.empty()) {
        out.text += "\n  data " + hex_bytes(data);
    }
    out.value = "type";
    return out;
}

Outcome Session::dirty(const Dirty& c)
{
    Outcome out;
    out.fields["hwpt"] = c.hwpt;
    if (c.op != DirtyOp::read) {
        const bool enable = c.op == DirtyOp::enable;
        iommu_hwpt_set_dirty_tracking args{};
        args.size = sizeof(args);
        args.flags = enable ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0;
        args.hwpt_id = c.hwpt;
        if (int rc = ioasid_ioctl(fd(), IOMMU_HWPT_SET_DIRTY_TRACKING, &args))
            fail(-rc, c);
        out.fields["enabled"] = enable;
        out.text = "hwpt " + std::to_string(c.hwpt) + ": dirty tracking " + (enable ? "on" : "off");
        return out;
    }

    // One bit per page; the daemon only ever sets bits, so it starts zeroed.
    const std::uint64_t nbits = c.length / c.page_size + (c.length % c.page_size ? 1 : 0);
    constexpr std::uint64_t kMaxBits = std::uint64_t{1} << 32;
    if (nbits > kMaxBits)
        throw CommandFailed(ENOMEM, "a bitmap of " + std::to_string(nbits) + " pages is more than this "
                                    "command builds (" + std::to_string(kMaxBits) + "): read a smaller range "
                                    "or use a larger --page-size");
    std::vector<std::uint64_t> bitmap;
    try {
        bitmap.assign(nbits / 64 + 1, 0);
    } catch (const std::bad_alloc&) {
        throw CommandFailed(ENOMEM, "no memory for a bitmap of " + std::to_string(nbits) + " pages");
    }
    iommu_hwpt_get_dirty_bitmap args{};
    args.size = sizeof(args);
    args.hwpt_id = c.hwpt;
    args.flags = c.clear ? 0 : IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR;
    args.iova = c.iova;
    args.length = c.length;
    args.page_size = c.page_size;
    args.data = reinterpret_cast<std::uintptr_t>(bitmap.data());
    if (int rc = ioasid_ioctl(fd(), IOMMU_HWPT_GET_DIRTY_BITMAP, &args))
        fail(-rc, c);

    const std::vector<DirtyRun> runs = dirty_runs(bitmap, nbits, c.iova, c.page_size);
    std::uint64_t pages = 0;
    Json ranges = Json::array();
    Json iovas = Json::array();
    for (const DirtyRun& run : runs) {
        pages += run.pages;
        ranges.push_back({{"start", run.iova}, {"last", run.iova + run.pages * c.page_size - 1}, {"pages", run.pages}});
        for (std::uint64_t i = 0; i < run.pages && iovas.size() < 4096; ++i)
            iovas.push_back(run.iova + i * c.page_size);
    }
    out.fields["iova"] = c.iova;
    out.fields["length"] = c.length;
    out.fields["page_size"] = c.page_size;
    out.fields["cleared"] = c.clear;
    out.fields["dirty"] = pages;
    out.fields["ranges"] = std::move(ranges);
    out.fields["pages"] = std::move(iovas); // the first 4096 dirty pages' IOVAs
    out.text = "hwpt " + std::to_string(c.hwpt) + ": " + std::to_string(pages) + " dirty " +
               (pages == 1 ? "page" : "pages") + " of " + human_size(c.page_size) + " in IOVA " +
               iova_span(c.iova, c.length) + (c.clear ? "" : " (not cleared)");
    for (const DirtyRun& run : runs) {
        out.text += "\n  " + iova_span(run.iova, run.pages * c.page_size);
        if (run.pages > 1)
            out.text += "  (" + std::to_string(run.pages) + " pages)";
    }
    out.value = "dirty";
    return out;
}

Outcome Session::pt_dump(const PtDump& c)
{
    ioasid_emu_pt_dump args{};
    args.size = sizeof(args);
    args.hwpt_id = c.hwpt;
    std::string text;
    if (int rc = call_for_json(fd(), IOASID_EMU_PT_DUMP, args, &text))
        fail(-rc, c);
    Json dump = Json::parse(text, nullptr, false);
    if (dump.is_discarded() || !dump.is_object())
        throw CommandFailed(EPROTO, "the daemon's page-table dump is not a JSON object");
    Outcome out;
    out.text = render_pt_dump(dump);
    out.fields = std::move(dump);
    out.fields["count"] = out.fields.value("entries", Json::array()).size();
    out.value = "count";
    return out;
}

Outcome Session::dma(const Dma& c)
{
    std::vector<std::uint8_t> buffer;
    try {
        if (c.op == DmaOp::write)
            buffer = c.data;
        else
            buffer.resize(c.length);
    } catch (const std::bad_alloc&) {
        throw CommandFailed(ENOMEM, "no memory for a buffer of " + human_size(c.length));
    }
    ioasid_emu_dma args{};
    args.size = sizeof(args);
    args.flags = (c.op == DmaOp::write ? IOASID_EMU_DMA_WRITE : 0) | (c.pasid ? IOASID_EMU_DMA_PASID : 0);
    args.dev_id = c.dev;
    args.pasid = c.pasid.value_or(0);
    args.iova = c.iova;
    args.length = buffer.size();
    args.buf_uptr = reinterpret_cast<std::uintptr_t>(buffer.data());
    const int rc = ioasid_ioctl(fd(), IOASID_EMU_DMA, &args);
    const bool write = c.op == DmaOp::write;
    const std::string verb = write ? "write" : "read";

    if (rc == -EIO && args.out_fault_reason != IOASID_EMU_FAULT_NONE) {
        // The IOMMU stopped the transfer: say where and why, in the unit's
        // own words too.
        std::string unit = "the unit";
        Json report = nullptr;
        try {
            report = this->report(Topology{});
        } catch (const CommandFailed&) {
            // Without the report the fault is still worth telling.
        }
        const Json view = report.is_object() ? topology_view(report) : Json::object();
        for (const Json& device : view.value("devices", Json::array()))
            if (device.value("state", "") == "bound-here" && device.value("dev", std::uint64_t{0}) == c.dev)
                unit = device.value("unit", unit);
        Json details = {{"dev", c.dev},
                        {"iova", c.iova},
                        {"length", c.length},
                        {"done", args.out_done},
                        {"fault",
                         {{"reason", fault_reason_name(args.out_fault_reason)},
                          {"reason_value", args.out_fault_reason},
                          {"code", args.out_fault_code},
                          {"unit", unit},
                          {"iova", args.out_fault_iova}}}};
        if (c.pasid)
            details["pasid"] = *c.pasid;
        throw CommandFailed(EIO,
                            "IOMMU fault on DMA " + verb + " at IOVA " + hex(args.out_fault_iova) + ": " +
                                fault_reason_text(args.out_fault_reason) + " (" + unit + " fault code " +
                                hex(args.out_fault_code) + "); " + std::to_string(args.out_done) + " of " +
                                std::to_string(c.length) + " bytes done",
                            std::move(details));
    }
    if (rc)
        fail(-rc, c);

    Outcome out;
    out.fields["dev"] = c.dev;
    if (c.pasid)
        out.fields["pasid"] = *c.pasid;
    out.fields["iova"] = c.iova;
    out.fields["length"] = c.length;
    out.fields["done"] = args.out_done;
    if (!write)
        out.fields["data"] = hex_bytes(std::span(buffer).first(std::min<std::size_t>(buffer.size(), args.out_done)));
    out.text = dev_prefix(c.dev, c.pasid) + (write ? "wrote " : "read ") + human_size(args.out_done) +
               (write ? " to" : " from") + " IOVA " + iova_span(c.iova, c.length);
    if (!write && args.out_done)
        out.text += "\n" + hexdump(c.iova, std::span(buffer).first(args.out_done));
    out.value = "done";
    return out;
}

} // namespace ioasid::ctl
