#include "hardware_view.h"

#include <array>
#include <cstdio>
#include <map>

#include "format.h"

namespace ioasid::ctl {
namespace {

using Json = nlohmann::ordered_json;

std::uint64_t u64(const Json& object, std::string_view key, std::uint64_t fallback = 0)
{
    auto it = object.find(key);
    if (it == object.end() || !it->is_number_integer())
        return fallback;
    return it->get<std::uint64_t>();
}

std::string str(const Json& object, std::string_view key, std::string fallback = "-")
{
    auto it = object.find(key);
    if (it == object.end() || !it->is_string())
        return fallback;
    return it->get<std::string>();
}

// A field of a register: `width` bits from bit `lo`.
constexpr std::uint64_t field(std::uint64_t reg, unsigned lo, unsigned width)
{
    return (reg >> lo) & ((std::uint64_t{1} << width) - 1);
}

std::string page_sizes_text(std::uint64_t bitmap)
{
    std::string out;
    for (unsigned bit = 0; bit < 64; ++bit)
        if (bitmap >> bit & 1)
            out += (out.empty() ? "" : " ") + human_size(std::uint64_t{1} << bit);
    return out.empty() ? "-" : out;
}

} // namespace

std::string rid_text(std::uint32_t rid)
{
    std::array<char, 16> buf{};
    std::snprintf(buf.data(), buf.size(), "%02x:%02x.%x", (rid >> 8) & 0xff, (rid >> 3) & 0x1f, rid & 7);
    return buf.data();
}

Json topology_view(const Json& report)
{
    Json view = {{"units", Json::array()}, {"devices", Json::array()}};
    auto hardware = report.find("hardware");
    if (hardware == report.end() || !hardware->is_object())
        return view;

    // The context the report was asked for, and the devices bound there.
    std::optional<std::uint64_t> own;
    std::map<std::string, std::uint64_t> own_devices;
    if (auto contexts = report.find("contexts"); contexts != report.end() && contexts->is_array())
        for (const Json& ctx : *contexts) {
            if (!ctx.value("own", false))
                continue;
            own = u64(ctx, "id");
            if (auto objects = ctx.find("objects"); objects != ctx.end() && objects->is_array())
                for (const Json& object : *objects)
                    if (str(object, "type") == "device")
                        own_devices[str(object, "name")] = u64(object, "id");
        }

    if (auto units = hardware->find("units"); units != hardware->end() && units->is_array())
        view["units"] = *units;
    if (auto devices = hardware->find("devices"); devices != hardware->end() && devices->is_array())
        for (const Json& device : *devices) {
            Json entry = device;
            if (device.contains("rid"))
                entry["bdf"] = rid_text(static_cast<std::uint32_t>(u64(device, "rid")));
            if (device.contains("vfio"))
                entry["node"] = "/dev/vfio/devices/" + str(device, "vfio");
            auto owner = device.find("context");
            if (owner == device.end() || !owner->is_number_integer()) {
                entry["state"] = "free";
            } else if (own && owner->get<std::uint64_t>() == *own) {
                entry["state"] = "bound-here";
                if (auto dev = own_devices.find(str(device, "name")); dev != own_devices.end())
                    entry["dev"] = dev->second;
            } else {
                entry["state"] = "bound";
            }
            view["devices"].push_back(std::move(entry));
        }
    return view;
}

std::string render_topology(const Json& view)
{
    std::string out;
    Table units;
    units.row({"UNIT", "FAMILY", "IOTLB HITS", "MISSES", "INVALIDATIONS", "EVICTIONS", "ENTRIES"});
    for (const Json& unit : view.value("units", Json::array())) {
        const Json iotlb = unit.value("iotlb", Json::object());
        units.row({str(unit, "name"), str(unit, "family"), std::to_string(u64(iotlb, "hits")),
                   std::to_string(u64(iotlb, "misses")), std::to_string(u64(iotlb, "invalidations")),
                   std::to_string(u64(iotlb, "evictions")), std::to_string(u64(iotlb, "entries"))});
    }
    units.render(out);
    out += "\n";

    Table devices;
    devices.row({"DEVICE", "UNIT", "RID", "GROUP", "PASID", "VFIO", "STATE"});
    for (const Json& device : view.value("devices", Json::array())) {
        const std::uint64_t bits = u64(device, "pasid_bits");
        std::string pasid = bits ? std::to_string(bits) + " bits" : "-";
        if (device.value("pasid_only", false))
            pasid += ", only";
        std::string state = str(device, "state");
        if (state == "bound-here")
            state = device.contains("dev") ? "bound here (dev " + std::to_string(u64(device, "dev")) + ")"
                                           : "bound here";
        else if (state == "bound")
            state = "bound to context " + std::to_string(u64(device, "context"));
        devices.row({str(device, "name"), str(device, "unit"), str(device, "bdf"), str(device, "group"), pasid,
                     str(device, "node"), state});
    }
    devices.render(out);
    if (!out.empty() && out.back() == '\n')
        out.pop_back();
    return out;
}

std::string render_units(const Json& report)
{
    auto hardware = report.find("hardware");
    if (hardware == report.end() || !hardware->is_object())
        return {};
    auto units = hardware->find("units");
    if (units == hardware->end() || !units->is_array())
        return {};
    std::string out;
    for (const Json& unit : *units) {
        out += "unit " + str(unit, "name") + "  family " + str(unit, "family");
        if (auto iotlb = unit.find("iotlb"); iotlb != unit.end() && iotlb->is_object()) {
            out += "  iotlb";
            const char* sep = " ";
            for (std::string_view key : {"hits", "misses", "invalidations", "evictions", "entries"}) {
                if (!iotlb->contains(key))
                    continue;
                out += sep + std::string(key) + " " + std::to_string(u64(*iotlb, key));
                sep = "  ";
            }
        }
        out += "\n";
    }
    return out;
}

std::string render_pt_dump(const Json& dump)
{
    const std::uint64_t levels = u64(dump, "levels");
    const Json entries = dump.value("entries", Json::array());
    std::string out = "hwpt " + std::to_string(u64(dump, "hwpt")) + ": " + str(dump, "format") + " on " +
                      str(dump, "unit") + ", " + std::to_string(levels) + " levels, root " +
                      hex(u64(dump, "root"));
    if (auto aperture = dump.find("aperture"); aperture != dump.end() && aperture->is_array() &&
                                               aperture->size() == 2)
        out += ", aperture " + hex_range((*aperture)[0].get<std::uint64_t>(), (*aperture)[1].get<std::uint64_t>());
    if (dump.contains("pgsize_bitmap"))
        out += ", pages " + page_sizes_text(u64(dump, "pgsize_bitmap"));
    out += "\n";
    if (entries.empty()) {
        out += "  (no valid entries: nothing is mapped)";
        return out;
    }
    Table table;
    for (const Json& entry : entries) {
        const std::uint64_t level = u64(entry, "level");
        const std::uint64_t depth = levels > level ? levels - 1 - level : 0;
        std::string where = std::string(2 * depth, ' ') + "L" + std::to_string(level) + "[" +
                            std::to_string(u64(entry, "index")) + "]";
        table.row({where, iova_span(u64(entry, "iova"), u64(entry, "size")), hex16(u64(entry, "raw")),
                   entry.value("leaf", false) ? "leaf" : "table", str(entry, "fields", "")});
    }
    table.render(out);
    out.pop_back();
    return out;
}

std::string hex_bytes(std::span<const std::uint8_t> bytes)
{
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (std::uint8_t b : bytes) {
        out += kDigits[b >> 4];
        out += kDigits[b & 15];
    }
    return out;
}

std::string hexdump(std::uint64_t base, std::span<const std::uint8_t> bytes)
{
    constexpr std::size_t kLine = 16;
    const std::size_t addr_width = bytes.empty() ? 0 : hex(base + (bytes.size() - 1)).size();
    std::string out;
    bool starred = false;
    for (std::size_t at = 0; at < bytes.size(); at += kLine) {
        auto line = bytes.subspan(at, std::min(kLine, bytes.size() - at));
        // As hexdump -C: a full line equal to the one before is left out.
        if (at >= kLine && line.size() == kLine && at + kLine < bytes.size() &&
            std::equal(line.begin(), line.end(), bytes.begin() + static_cast<std::ptrdiff_t>(at - kLine))) {
            if (!starred)
                out += "*\n";
            starred = true;
            continue;
        }
        starred = false;
        std::string addr = hex(base + at);
        addr.resize(std::max(addr.size(), addr_width), ' ');
        std::string hexpart;
        std::string text;
        for (std::size_t i = 0; i < kLine; ++i) {
            if (i == 8)
                hexpart += ' ';
            if (i < line.size()) {
                std::array<char, 4> b{};
                std::snprintf(b.data(), b.size(), "%02x ", line[i]);
                hexpart += b.data();
                text += (line[i] >= 0x20 && line[i] < 0x7f) ? static_cast<char>(line[i]) : '.';
            } else {
                hexpart += "   ";
            }
        }
        out += addr + "  " + hexpart + " |" + text + "|\n";
    }
    if (!out.empty())
        out.pop_back();
    return out;
}

std::string fault_reason_name(std::uint32_t reason)
{
    // enum ioasid_emu_fault_reason
    static constexpr std::array<std::string_view, 6> kNames{
        "none", "blocked", "pasid-range", "address-size", "not-present", "permission"};
    return reason < kNames.size() ? std::string(kNames[reason]) : "reason-" + std::to_string(reason);
}

std::string fault_reason_text(std::uint32_t reason)
{
    switch (reason) {
    case 1:
        return "blocked: nothing is attached to the device (or this PASID)";
    case 2:
        return "PASID out of range for the device";
    case 3:
        return "address size: the IOVA is beyond the domain's input width";
    case 4:
        return "not present: no translation for the IOVA";
    case 5:
        return "permission: the translation forbids this access";
    default:
        return fault_reason_name(reason);
    }
}

// The registers a hw_info answer carries, each with the fields worth a
// glance, at the positions its specification gives them.
struct RegisterField {
    std::string_view name;
    unsigned lo;
    unsigned width;
};
struct Register {
    std::string_view name;
    std::uint64_t value;
    std::span<const RegisterField> fields;
};

Json decode_registers(std::span<const Register> registers)
{
    Json out = Json::object();
    for (const Register& reg : registers) {
        Json fields = Json::object();
        for (const RegisterField& f : reg.fields)
            fields[std::string(f.name)] = field(reg.value, f.lo, f.width);
        out[std::string(reg.name)] = std::move(fields);
    }
    return out;
}

// One line per register: its value, then NAME=value for each field.
std::string render_registers(std::span<const Register> registers, bool wide)
{
    std::string out;
    for (const Register& reg : registers) {
        std::string name(reg.name);
        name.resize(std::max<std::size_t>(name.size(), 4), ' ');
        out += (out.empty() ? "  " : "\n  ") + name + " " +
               (wide ? hex16(reg.value) : hex8(static_cast<std::uint32_t>(reg.value)));
        for (const RegisterField& f : reg.fields)
            out += "  " + std::string(f.name) + "=" + std::to_string(field(reg.value, f.lo, f.width));
    }
    return out;
}

// VT-d specification 11.4.2 / 11.4.3; the positions are those of
// hwmodels/vtd/vtd_registers.h.
constexpr RegisterField kVtdCap[] = {{"SAGAW", 8, 5}, {"MGAW", 16, 6}, {"SLLPS", 34, 4}};
constexpr RegisterField kVtdEcap[] = {{"PASID", 40, 1}, {"PSS", 35, 5}, {"SLADS", 45, 1}, {"NEST", 26, 1},
                                      {"FLTS", 47, 1}};

// SMMUv3 specification 6.3.1-6.3.6, as arm-smmu-v3.h names them.
constexpr RegisterField kSmmuIdr0[] = {{"S2P", 0, 1},     {"S1P", 1, 1},       {"TTF", 2, 2},
                                       {"COHACC", 4, 1},  {"HTTU", 6, 2},      {"ATS", 10, 1},
                                       {"ASID16", 12, 1}, {"PRI", 16, 1},      {"VMID16", 18, 1},
                                       {"CD2L", 19, 1},   {"TTENDIAN", 21, 2}, {"STALL_MODEL", 24, 2},
                                       {"ST_LEVEL", 27, 2}};
constexpr RegisterField kSmmuIdr1[] = {{"SIDSIZE", 0, 6}, {"SSIDSIZE", 6, 5}};
constexpr RegisterField kSmmuIdr3[] = {{"HAD", 2, 1}, {"RIL", 10, 1}, {"BBML", 11, 2}};
constexpr RegisterField kSmmuIdr5[] = {{"OAS", 0, 3}, {"GRAN4K", 4, 1}, {"GRAN16K", 5, 1}, {"GRAN64K", 6, 1},
                                       {"VAX", 10, 2}};

// AMD IOMMU specification, MMIO 0x30 (EFR), as amd_iommu_types.h names them.
constexpr RegisterField kAmdEfr[] = {{"PPRSup", 1, 1},  {"NXSup", 3, 1},    {"GTSup", 4, 1},
                                     {"GLXSup", 14, 2}, {"PASmax", 32, 5},  {"GIoSup", 48, 1},
                                     {"HASup", 49, 1},  {"HDSup", 52, 1},   {"SNPSup", 63, 1}};

std::array<Register, 2> vtd_registers(std::uint64_t cap, std::uint64_t ecap)
{
    return {Register{"cap", cap, kVtdCap}, Register{"ecap", ecap, kVtdEcap}};
}

std::array<Register, 8> smmuv3_registers(const iommu_hw_info_arm_smmuv3& info)
{
    return {Register{"IDR0", info.idr[0], kSmmuIdr0}, Register{"IDR1", info.idr[1], kSmmuIdr1},
            Register{"IDR2", info.idr[2], {}},        Register{"IDR3", info.idr[3], kSmmuIdr3},
            Register{"IDR4", info.idr[4], {}},        Register{"IDR5", info.idr[5], kSmmuIdr5},
            Register{"IIDR", info.iidr, {}},          Register{"AIDR", info.aidr, {}}};
}

std::array<Register, 2> amd_registers(const iommu_hw_info_amd& info)
{
    return {Register{"EFR", info.efr, kAmdEfr}, Register{"EFR2", info.efr2, {}}};
}

Json decode_vtd(std::uint64_t cap, std::uint64_t ecap)
{
    return decode_registers(vtd_registers(cap, ecap));
}

Json decode_smmuv3(const iommu_hw_info_arm_smmuv3& info)
{
    return decode_registers(smmuv3_registers(info));
}

std::string render_smmuv3(const iommu_hw_info_arm_smmuv3& info)
{
    return render_registers(smmuv3_registers(info), false);
}

Json decode_amd(const iommu_hw_info_amd& info)
{
    return decode_registers(amd_registers(info));
}

std::string render_amd(const iommu_hw_info_amd& info)
{
    return render_registers(amd_registers(info), true);
}

std::string render_vtd(std::uint64_t cap, std::uint64_t ecap)
{
    const std::uint64_t sagaw = field(cap, 8, 5);
    std::string widths;
    for (auto [bit, text] : {std::pair{1u, "39-bit/3-level"}, {2u, "48-bit/4-level"}, {3u, "57-bit/5-level"}})
        if (sagaw >> bit & 1)
            widths += (widths.empty() ? "" : ", ") + std::string(text);
    const std::uint64_t sllps = field(cap, 34, 4);
    std::string large = (sllps & 1) ? "2 MiB" : "";
    if (sllps & 2)
        large += large.empty() ? "1 GiB" : ", 1 GiB";
    const std::uint64_t mgaw = field(cap, 16, 6);
    std::string out = "  cap  " + hex16(cap) + "  SAGAW=" + hex(sagaw) + " (" + (widths.empty() ? "none" : widths) +
                      ")  MGAW=" + std::to_string(mgaw) + " (" + std::to_string(mgaw + 1) + "-bit)  SLLPS=" +
                      hex(sllps) + " (" + (large.empty() ? "4 KiB only" : large) + ")\n";
    const bool pasid = field(ecap, 40, 1);
    const std::uint64_t pss = field(ecap, 35, 5);
    out += "  ecap " + hex16(ecap) + "  PASID=" + std::to_string(pasid) + "  PSS=" + std::to_string(pss) +
           (pasid ? " (" + std::to_string(pss + 1) + "-bit PASIDs)" : "") +
           "  SLADS=" + std::to_string(field(ecap, 45, 1)) + "  NEST=" + std::to_string(field(ecap, 26, 1)) +
           "  FLTS=" + std::to_string(field(ecap, 47, 1));
    return out;
}

std::vector<DirtyRun> dirty_runs(std::span<const std::uint64_t> bitmap, std::uint64_t nbits, std::uint64_t iova,
                                 std::uint64_t page_size)
{
    std::vector<DirtyRun> runs;
    for (std::uint64_t bit = 0; bit < nbits; ++bit) {
        if (bit / 64 >= bitmap.size())
            break;
        if (!(bitmap[bit / 64] >> (bit % 64) & 1))
            continue;
        const std::uint64_t at = iova + bit * page_size;
        if (!runs.empty() && runs.back().iova + runs.back().pages * page_size == at)
            ++runs.back().pages;
        else
            runs.push_back({at, 1});
    }
    return runs;
}

} // namespace ioasid::ctl
