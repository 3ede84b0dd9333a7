// Emulated hardware for dispatch tests: a few mock and VT-d units with
// devices behind them, and wrappers for the HWPT, device and DMA ioctls,
// each driven through the dispatcher as a client drives the node.
#pragma once

#include <ioasid/emu.h>
#include <ioasid/iommufd.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/hw_pagetable.h"
#include "hwmodels/mock/mock_unit.h"
#include "hwmodels/vtd/vtd_unit.h"
#include "test_support.h"

namespace ioasid::test {

// The mock's geometry (the selftest's MOCK_APERTURE_START/LAST, 2 KiB pages).
inline constexpr std::uint64_t kMockFirst = hw::mock::kApertureFirst;
inline constexpr std::uint64_t kMockLast = hw::mock::kApertureLast;
inline constexpr std::uint64_t kMockPage = hw::mock::kIoPageSize;
// Where devices read from and write to in the client: 8 MiB, apart from
// the memory tests map.
inline constexpr std::uint64_t kDmaBufAddr = 0x20000000;
inline constexpr std::uint64_t kDmaBufSize = 8ULL << 20;
inline constexpr std::uint64_t kPage4K = 4096;
// Where the status report goes.
inline constexpr std::uint64_t kReportAddr = 0x30000000;
inline constexpr std::uint64_t kReportSize = 1ULL << 20;
// One read-only page right after the struct region: a struct placed so
// that its tail lies there can be read but not written back.
inline constexpr std::uint64_t kReadOnlyPage = kStructAddr + kStructRegion;
// Read-only client memory that may be mapped.
inline constexpr std::uint64_t kReadOnlyAddr = 0x38000000;
inline constexpr std::uint64_t kReadOnlySize = 64 * 1024;
// Client addresses nothing backs.
inline constexpr std::uint64_t kUnmappedVa = 0x70000000;

// Units:
//   mock0       mock, dirty tracking, 20-bit PASIDs
//   mock1       the same, another unit
//   mockhuge    mock with 1 MiB pages
//   mocknodirty mock without dirty tracking
//   vtd0        VT-d, default (48 bits, dirty tracking, PASIDs, nesting, 2M+1G)
//   vtdplain    VT-d without dirty tracking, PASIDs, first stage or nesting
// Devices (own group unless said):
//   m0 m1 mp(pasid only) mnp(no PASID) mnd(no dirty tracking) on mock0,
//   ga gb on mock0 in one group "shared",
//   x0 on mock1, h0 on mockhuge, n0 on mocknodirty,
//   v0 v1 on vtd0, w0 on vtdplain.
inline void add_test_hardware(core::CoreServices& s)
{
    auto mock = [&](const char* name, hw::mock::MockConfig config) {
        s.hardware.add_unit(std::make_unique<hw::mock::MockUnit>(name, config, s.phys));
    };
    mock("mock0", {});
    mock("mock1", {});
    mock("mockhuge", {.dirty_tracking = true, .huge_pages = true, .pasid_bits = 20});
    mock("mocknodirty", {.dirty_tracking = false, .huge_pages = false, .pasid_bits = 20});
    s.hardware.add_unit(std::make_unique<hw::vtd::VtdUnit>("vtd0", hw::vtd::VtdConfig{}, s.phys));
    hw::vtd::VtdConfig plain;
    plain.dirty_tracking = false;
    plain.pasid_bits = 0;
    plain.first_stage = false;
    plain.nesting = false;
    s.hardware.add_unit(std::make_unique<hw::vtd::VtdUnit>("vtdplain", plain, s.phys));

    std::uint32_t rid = 0x10;
    auto dev = [&](const char* unit, const char* name, const char* group, unsigned pasid_bits = 20,
                   bool dirty = true, bool pasid_only = false) {
        s.hardware.add_device(unit, hw::EndpointConfig{name, rid++, pasid_bits, dirty}, group, pasid_only,
                              std::string("vfio-") + name);
    };
    dev("mock0", "m0", "g-m0");
    dev("mock0", "m1", "g-m1");
    dev("mock0", "mp", "g-mp", 20, true, true);
    dev("mock0", "mnp", "g-mnp", 0);
    dev("mock0", "mnd", "g-mnd", 20, false);
    dev("mock0", "ga", "shared");
    dev("mock0", "gb", "shared");
    dev("mock1", "x0", "g-x0");
    dev("mockhuge", "h0", "g-h0");
    dev("mocknodirty", "n0", "g-n0");
    dev("vtd0", "v0", "g-v0");
    dev("vtd0", "v1", "g-v1");
    dev("vtdplain", "w0", "g-w0");
}

// A client of Client::make_caller() plus the DMA buffer region.
inline std::shared_ptr<memory::BufferCaller> make_hw_caller()
{
    auto caller = Client::make_caller();
    caller->add_region(kDmaBufAddr, kDmaBufSize);
    caller->add_region(kReportAddr, kReportSize);
    caller->add_region(kReadOnlyPage, kPage4K, /*writable=*/false);
    caller->add_region(kReadOnlyAddr, kReadOnlySize, /*writable=*/false);
    return caller;
}

struct HardwareServices {
    core::CoreServices services;
    HardwareServices() { add_test_hardware(services); }
};

// The machine and one client with one IOAS.
struct HardwareFixture : HardwareServices {
    Client client{services, make_hw_caller()};
    std::uint32_t ioas = alloc_ok(client);

    hw::Unit& unit(const std::string& name)
    {
        for (const auto& u : services.hardware.units())
            if (u->name() == name)
                return *u;
        throw std::runtime_error("no unit " + name);
    }
    core::Ioas& obj(std::uint32_t id)
    {
        if (auto* p = client.ctx().objects().find_as<core::Ioas>(id))
            return *p;
        throw std::runtime_error("no such IOAS");
    }
    core::EmulatedDevice& device(const std::string& name)
    {
        if (auto* d = services.hardware.find_device(name))
            return *d;
        throw std::runtime_error("no device " + name);
    }
};

// --- bytes in client memory ---

// The byte a pattern with `seed` has at offset `i`.
inline std::byte pattern_byte(std::uint64_t i, unsigned seed)
{
    return static_cast<std::byte>((i * 131 + seed * 17 + (i >> 8)) & 0xff);
}

inline std::vector<std::byte> pattern(std::uint64_t length, unsigned seed)
{
    std::vector<std::byte> out(length);
    for (std::uint64_t i = 0; i < length; ++i)
        out[i] = pattern_byte(i, seed);
    return out;
}

inline void fill(Client& c, std::uint64_t addr, std::uint64_t length, unsigned seed)
{
    c.write(addr, pattern(length, seed));
}

inline void fill_byte(Client& c, std::uint64_t addr, std::uint64_t length, std::byte value)
{
    c.write(addr, std::vector<std::byte>(length, value));
}

inline std::vector<std::byte> bytes_at(Client& c, std::uint64_t addr, std::uint64_t length)
{
    std::vector<std::byte> out(length);
    c.read(addr, out);
    return out;
}

template <typename T>
T value_at(Client& c, std::uint64_t addr)
{
    T value{};
    c.read(addr, std::as_writable_bytes(std::span(&value, 1)));
    return value;
}

template <typename T>
void put_value(Client& c, std::uint64_t addr, const T& value)
{
    c.write(addr, std::as_bytes(std::span(&value, 1)));
}

// --- objects ---

inline bool object_exists(Client& c, std::uint32_t id)
{
    bool found = false;
    c.ctx().objects().for_each([&](const core::Object& o) { found |= o.id() == id; });
    return found;
}

inline std::size_t count_objects(Client& c, core::ObjectType type)
{
    std::size_t n = 0;
    c.ctx().objects().for_each([&](const core::Object& o) { n += o.type() == type; });
    return n;
}

// --- device commands (uapi/ioasid/emu.h) ---

inline int bind(Client& c, const std::string& name, std::uint32_t* dev_id)
{
    ioasid_emu_device_bind cmd{};
    cmd.size = sizeof(cmd);
    std::strncpy(cmd.name, name.c_str(), sizeof(cmd.name) - 1);
    int rc = c.ioctl(IOASID_EMU_DEVICE_BIND, cmd);
    *dev_id = cmd.out_dev_id;
    return rc;
}

inline std::uint32_t bind_ok(Client& c, const std::string& name)
{
    std::uint32_t id = 0;
    if (bind(c, name, &id) != 0)
        throw std::runtime_error("bind " + name + " failed");
    return id;
}

inline int unbind(Client& c, std::uint32_t dev_id)
{
    ioasid_emu_device_unbind cmd{.size = sizeof(cmd), .dev_id = dev_id};
    return c.ioctl(IOASID_EMU_DEVICE_UNBIND, cmd);
}

// Attaches (or replaces); *pt_id goes in and comes back.
inline int attach(Client& c, std::uint32_t dev_id, std::uint32_t* pt_id,
                  std::optional<std::uint32_t> pasid = std::nullopt)
{
    ioasid_emu_device_attach cmd{.size = sizeof(cmd),
                                 .flags = pasid ? std::uint32_t{IOASID_EMU_DEVICE_PASID} : 0u,
                                 .dev_id = dev_id,
                                 .pt_id = *pt_id,
                                 .pasid = pasid.value_or(0),
                                 .__reserved = 0};
    int rc = c.ioctl(IOASID_EMU_DEVICE_ATTACH, cmd);
    *pt_id = cmd.pt_id;
    return rc;
}

// Attaches to `pt` and returns the HWPT used.
inline std::uint32_t attach_ok(Client& c, std::uint32_t dev_id, std::uint32_t pt,
                               std::optional<std::uint32_t> pasid = std::nullopt)
{
    if (int rc = attach(c, dev_id, &pt, pasid))
        throw std::runtime_error("attach failed: " + std::to_string(rc));
    return pt;
}

inline int detach(Client& c, std::uint32_t dev_id, std::optional<std::uint32_t> pasid = std::nullopt)
{
    ioasid_emu_device_detach cmd{.size = sizeof(cmd),
                                 .flags = pasid ? std::uint32_t{IOASID_EMU_DEVICE_PASID} : 0u,
                                 .dev_id = dev_id,
                                 .pasid = pasid.value_or(0)};
    return c.ioctl(IOASID_EMU_DEVICE_DETACH, cmd);
}

// --- HWPT commands ---

inline iommu_hwpt_alloc hwpt_alloc_cmd(std::uint32_t dev_id, std::uint32_t pt_id, std::uint32_t flags = 0)
{
    iommu_hwpt_alloc cmd{};
    cmd.size = sizeof(cmd);
    cmd.flags = flags;
    cmd.dev_id = dev_id;
    cmd.pt_id = pt_id;
    return cmd;
}

inline int hwpt_alloc(Client& c, std::uint32_t dev_id, std::uint32_t pt_id, std::uint32_t flags,
                      std::uint32_t* out)
{
    iommu_hwpt_alloc cmd = hwpt_alloc_cmd(dev_id, pt_id, flags);
    int rc = c.ioctl(IOMMU_HWPT_ALLOC, cmd);
    *out = cmd.out_hwpt_id;
    return rc;
}

inline std::uint32_t hwpt_alloc_ok(Client& c, std::uint32_t dev_id, std::uint32_t pt_id,
                                   std::uint32_t flags = 0)
{
    std::uint32_t id = 0;
    if (int rc = hwpt_alloc(c, dev_id, pt_id, flags, &id))
        throw std::runtime_error("HWPT_ALLOC failed: " + std::to_string(rc));
    return id;
}

inline int set_dirty_tracking(Client& c, std::uint32_t hwpt_id, bool enable, std::uint32_t reserved = 0)
{
    iommu_hwpt_set_dirty_tracking cmd{.size = sizeof(cmd),
                                      .flags = enable ? std::uint32_t{IOMMU_HWPT_DIRTY_TRACKING_ENABLE} : 0u,
                                      .hwpt_id = hwpt_id,
                                      .__reserved = reserved};
    return c.ioctl(IOMMU_HWPT_SET_DIRTY_TRACKING, cmd);
}

// IOMMU_GET_HW_INFO into a buffer at `data_uptr` (by default kArrayAddr,
// first filled with kHwInfoFill); `data` is what kArrayAddr's first 256
// bytes hold afterwards.
inline constexpr std::byte kHwInfoFill{0xaa};
struct HwInfoAnswer {
    int rc;
    iommu_hw_info out;
    std::vector<std::byte> data;
};
inline HwInfoAnswer get_hw_info(Client& c, std::uint32_t dev, std::uint32_t data_len, std::uint32_t flags = 0,
                                std::uint32_t in_type = 0, std::uint64_t data_uptr = kArrayAddr)
{
    fill_byte(c, kArrayAddr, 256, kHwInfoFill);
    iommu_hw_info cmd{};
    cmd.size = sizeof(cmd);
    cmd.flags = flags;
    cmd.dev_id = dev;
    cmd.data_len = data_len;
    cmd.data_uptr = data_uptr;
    cmd.in_data_type = in_type;
    HwInfoAnswer r{};
    r.rc = c.ioctl(IOMMU_GET_HW_INFO, cmd);
    r.out = cmd;
    r.data = bytes_at(c, kArrayAddr, 256);
    return r;
}

inline iommu_hwpt_get_dirty_bitmap dirty_cmd(std::uint32_t hwpt_id, std::uint64_t iova, std::uint64_t length,
                                             std::uint64_t page_size, std::uint64_t data,
                                             std::uint32_t flags = 0)
{
    iommu_hwpt_get_dirty_bitmap cmd{};
    cmd.size = sizeof(cmd);
    cmd.hwpt_id = hwpt_id;
    cmd.flags = flags;
    cmd.iova = iova;
    cmd.length = length;
    cmd.page_size = page_size;
    cmd.data = data;
    return cmd;
}

inline int get_dirty_bitmap(Client& c, std::uint32_t hwpt_id, std::uint64_t iova, std::uint64_t length,
                            std::uint64_t page_size, std::uint64_t data, std::uint32_t flags = 0)
{
    auto cmd = dirty_cmd(hwpt_id, iova, length, page_size, data, flags);
    return c.ioctl(IOMMU_HWPT_GET_DIRTY_BITMAP, cmd);
}

// --- IOAS ---

inline int iova_ranges(Client& c, std::uint32_t ioas, std::vector<iommu_iova_range>* out,
                       std::uint64_t* alignment = nullptr)
{
    constexpr std::uint32_t kMax = 64;
    iommu_ioas_iova_ranges cmd{.size = sizeof(cmd), .ioas_id = ioas, .num_iovas = kMax, .__reserved = 0,
                               .allowed_iovas = kArrayAddr, .out_iova_alignment = 0};
    int rc = c.ioctl(IOMMU_IOAS_IOVA_RANGES, cmd);
    out->assign(std::min(cmd.num_iovas, kMax), iommu_iova_range{});
    if (!out->empty())
        c.read(kArrayAddr, std::as_writable_bytes(std::span(*out)));
    if (alignment)
        *alignment = cmd.out_iova_alignment;
    return rc;
}

using RangeList = std::vector<std::pair<std::uint64_t, std::uint64_t>>;

inline RangeList ranges_of(Client& c, std::uint32_t ioas)
{
    std::vector<iommu_iova_range> raw;
    if (iova_ranges(c, ioas, &raw) != 0)
        throw std::runtime_error("IOVA_RANGES failed");
    RangeList out;
    for (const auto& r : raw)
        out.emplace_back(r.start, r.last);
    return out;
}

// --- emulated DMA ---

struct Dma {
    int rc = 0;
    ioasid_emu_dma out{};
};

// A DMA of `length` bytes at `iova`; the device's side of the bytes is
// the client's memory at `buf`.
inline Dma dma(Client& c, std::uint32_t dev_id, std::uint64_t iova, std::uint64_t length, bool write,
               std::uint64_t buf = kDmaBufAddr, std::optional<std::uint32_t> pasid = std::nullopt)
{
    ioasid_emu_dma cmd{};
    cmd.size = sizeof(cmd);
    cmd.flags = (write ? std::uint32_t{IOASID_EMU_DMA_WRITE} : 0u) |
                (pasid ? std::uint32_t{IOASID_EMU_DMA_PASID} : 0u);
    cmd.dev_id = dev_id;
    cmd.pasid = pasid.value_or(0);
    cmd.iova = iova;
    cmd.length = length;
    cmd.buf_uptr = buf;
    cmd.out_done = 0xdeadbeef;
    Dma result;
    result.rc = c.ioctl(IOASID_EMU_DMA, cmd);
    result.out = cmd;
    return result;
}

// A DMA read of `length` bytes that must succeed; the bytes read.
inline std::vector<std::byte> dma_read_ok(Client& c, std::uint32_t dev_id, std::uint64_t iova, std::uint64_t length,
                                          std::optional<std::uint32_t> pasid = std::nullopt)
{
    Dma d = dma(c, dev_id, iova, length, false, kDmaBufAddr, pasid);
    if (d.rc != 0 || d.out.out_done != length)
        throw std::runtime_error("DMA read failed: " + std::to_string(d.rc) + " reason " +
                                 std::to_string(d.out.out_fault_reason));
    return bytes_at(c, kDmaBufAddr, length);
}

// IOASID_EMU_PT_DUMP of a paging HWPT, parsed.
inline nlohmann::json pt_dump(Client& c, std::uint32_t hwpt_id)
{
    ioasid_emu_pt_dump cmd{.size = sizeof(cmd), .hwpt_id = hwpt_id,
                           .buf_len = static_cast<std::uint32_t>(kReportSize), .out_len = 0,
                           .buf_uptr = kReportAddr};
    if (int rc = c.ioctl(IOASID_EMU_PT_DUMP, cmd))
        throw std::runtime_error("PT_DUMP failed: " + std::to_string(rc));
    auto raw = bytes_at(c, kReportAddr, cmd.out_len);
    return nlohmann::json::parse(std::string(reinterpret_cast<const char*>(raw.data()), raw.size()));
}

// [iova, iova + size) of every leaf of a dump.
inline RangeList leaves_of(const nlohmann::json& dump)
{
    RangeList out;
    for (const auto& e : dump["entries"])
        if (e["leaf"].get<bool>())
            out.emplace_back(e["iova"].get<std::uint64_t>(), e["size"].get<std::uint64_t>());
    return out;
}

// --- status report ---

inline nlohmann::json status_json(Client& c)
{
    ioasid_emu_status cmd{.size = sizeof(cmd), .flags = 0, .buf_len = static_cast<std::uint32_t>(kReportSize),
                          .out_len = 0, .buf_uptr = kReportAddr};
    if (c.ioctl(IOASID_EMU_STATUS, cmd) != 0)
        throw std::runtime_error("STATUS failed");
    auto raw = bytes_at(c, kReportAddr, cmd.out_len);
    return nlohmann::json::parse(std::string(reinterpret_cast<const char*>(raw.data()), raw.size()));
}

inline nlohmann::json unit_status(Client& c, const std::string& name)
{
    const nlohmann::json status = status_json(c);
    for (const auto& u : status["hardware"]["units"])
        if (u["name"] == name)
            return u;
    throw std::runtime_error("no unit " + name + " in the status");
}

// The entry of object `id` of the client's context in the status report,
// or null.
inline nlohmann::json object_status(Client& c, std::uint32_t id)
{
    const nlohmann::json status = status_json(c);
    for (const auto& o : status["contexts"][0]["objects"])
        if (o["id"] == id)
            return o;
    return nullptr;
}

} // namespace ioasid::test
