// The causes ioasidctl gives for failures, and the status tables, from
// status reports written by hand in the daemon's format.
#include <catch2/catch.hpp>

#include <cerrno>

#include "explain.h"
#include "format.h"
#include "hardware_view.h"
#include "status_view.h"

using namespace ioasid::ctl;
using Json = nlohmann::ordered_json;

namespace {

// One context: IOAS 1 with two areas, an access on it, IOAS 3 empty.
const Json kContext = Json::parse(R"({
  "id": 4, "transport": "socket", "uid": 1000, "pids": [321], "own": true,
  "opened": "2026-11-21T10:00:00Z", "pinned_bytes": 8192,
  "objects": [
    {"id": 1, "type": "ioas", "users": 2,
     "areas": [{"iova": 0, "length": 8192, "readable": true, "writable": true},
               {"iova": 1048576, "length": 2097152, "readable": true, "writable": false}]},
    {"id": 2, "type": "access", "ioas": 1, "users": 2},
    {"id": 3, "type": "ioas", "users": 1, "areas": []}
  ]})");

Facts facts()
{
    Facts f;
    f.context = &kContext;
    return f;
}

Map map_at(std::uint32_t ioas, std::optional<std::uint64_t> iova, std::uint64_t length)
{
    Map map;
    map.ioas = ioas;
    map.source = MemfdSource{length};
    map.iova = iova;
    map.length = length;
    return map;
}

} // namespace

TEST_CASE("format helpers")
{
    CHECK(hex(0) == "0x0");
    CHECK(hex(0x1000) == "0x1000");
    CHECK(hex_range(0x1000, 0x1fff) == "0x1000-0x1fff");
    CHECK(iova_span(0x1000, 0x1000) == "0x1000-0x1fff");
    CHECK(iova_span(UINT64_MAX - 1, 16) == "0xfffffffffffffffe-0xffffffffffffffff");
    CHECK(human_size(0) == "0 bytes");
    CHECK(human_size(1) == "1 byte");
    CHECK(human_size(4097) == "4097 bytes");
    CHECK(human_size(8192) == "8 KiB");
    CHECK(human_size(3u << 20) == "3 MiB");
    CHECK(human_size(1536) == "1536 bytes");
}

TEST_CASE("ENOENT names the missing object, or what it is instead")
{
    CHECK(explain(ENOENT, Destroy{7}, facts()) == "no object 7");
    CHECK(explain(ENOENT, map_at(7, std::nullopt, 4096), facts()) == "no object 7");
    CHECK(explain(ENOENT, map_at(2, std::nullopt, 4096), facts()) == "object 2 is an access, not an IOAS");
    CHECK(explain(ENOENT, Ranges{9}, facts()) == "no object 9");
    CHECK(explain(ENOENT, VfioIoas{VfioOp::set, 2}, facts()) == "object 2 is an access, not an IOAS");
    // Without a report, still a sentence.
    CHECK(explain(ENOENT, Ranges{9}, Facts{}) == "no IOAS 9");
}

TEST_CASE("EEXIST names the areas in the way")
{
    CHECK(explain(EEXIST, map_at(1, 0x1000, 0x1000), facts()) == "IOVA 0x1000-0x1fff overlaps area 0x0-0x1fff");
    CHECK(explain(EEXIST, map_at(1, 0x1000, 0x200000), facts()) ==
          "IOVA 0x1000-0x200fff overlaps area 0x0-0x1fff, area 0x100000-0x2fffff");
    Copy copy;
    copy.dst_ioas = 1;
    copy.src_ioas = 3;
    copy.dst_iova = 0x2ff000;
    copy.length = 0x2000;
    CHECK(explain(EEXIST, copy, facts()) == "IOVA 0x2ff000-0x300fff overlaps area 0x100000-0x2fffff");
    // Areas that carry an id are named by it.
    Json with_ids = kContext;
    with_ids["objects"][0]["areas"][0]["id"] = 3;
    Facts f;
    f.context = &with_ids;
    CHECK(explain(EEXIST, map_at(1, 0x1000, 0x1000), f) == "IOVA 0x1000-0x1fff overlaps area 3");
}

TEST_CASE("EBUSY names the users")
{
    CHECK(explain(EBUSY, Destroy{1}, facts()) == "IOAS 1 is in use by access 2");
    CHECK(explain(EBUSY, Destroy{3}, facts()) == "IOAS 3 is in use");
    CHECK(explain(EBUSY, Destroy{2}, facts()) == "access 2 is held by the daemon-side user that created it");
    CHECK(explain(EBUSY, Destroy{5}, Facts{}) == "object 5 is in use");
}

TEST_CASE("unmap ENOENT tells a split from nothing mapped")
{
    Unmap split{.ioas = 1, .iova = 0x1000, .length = 0x1000, .all = false};
    CHECK(explain(ENOENT, split, facts()) ==
          "IOVA 0x1000-0x1fff would split area 0x0-0x1fff; unmap whole mappings");
    Unmap empty{.ioas = 1, .iova = 0x10000, .length = 0x1000, .all = false};
    CHECK(explain(ENOENT, empty, facts()) == "nothing is mapped at IOVA 0x10000-0x10fff in IOAS 1");
    Unmap all{.ioas = 3};
    CHECK(explain(ENOENT, all, facts()) == "nothing is mapped in IOAS 3");
    Unmap missing{.ioas = 8};
    CHECK(explain(ENOENT, missing, facts()) == "no object 8");
}

TEST_CASE("map EINVAL and ENOSPC")
{
    Facts f = facts();
    f.alignment = 0x1000;
    f.usable = std::vector<IovaRange>{{0, 0xffffffff}};
    CHECK(explain(EINVAL, map_at(1, 0x10001, 0x1000), f) ==
          "IOVA 0x10001 is not aligned to 0x1000, the IOVA alignment of IOAS 1");
    CHECK(explain(EINVAL, map_at(1, 0x10000, 0x1001), f) ==
          "length 0x1001 is not a multiple of 0x1000, the IOVA alignment of IOAS 1");
    CHECK_THAT(explain(EINVAL, map_at(1, 0x100000000, 0x1000), f),
               Catch::Contains("reserved in IOAS 1") && Catch::Contains("`ranges 1`"));
    Map neither = map_at(1, std::nullopt, 0x1000);
    neither.readable = neither.writeable = false;
    CHECK(explain(EINVAL, neither, f) == "a mapping must be readable or writeable");
    CHECK(explain(ENOSPC, map_at(3, std::nullopt, 0x1000), f) ==
          "no free IOVA range of 0x1000 bytes in the usable ranges of IOAS 3");
}

TEST_CASE("allow EINVAL finds the bad range")
{
    Allow single{.ioas = 1, .ranges = {{0x1000, 0x1000}}};
    CHECK_THAT(explain(EINVAL, single, facts()), Catch::Contains("single byte"));
    Allow overlap{.ioas = 1, .ranges = {{0x3000, 0x4fff}, {0x1000, 0x3fff}}};
    CHECK(explain(EINVAL, overlap, facts()) == "ranges 0x1000-0x3fff and 0x3000-0x4fff overlap");
}

TEST_CASE("other causes")
{
    CHECK(explain(ENODEV, VfioIoas{VfioOp::get, 0}, facts()) ==
          "no IOAS is set for VFIO compatibility (vfio-ioas set IOAS)");
    CHECK_THAT(explain(EPERM, Option{OptionName::rlimit_mode, 0, 1}, facts()),
               Catch::Contains("CAP_SYS_RESOURCE"));
    CHECK_THAT(explain(EBUSY, Option{OptionName::rlimit_mode, 0, 1}, facts()), Catch::Contains("no objects"));
    CHECK_THAT(explain(ENOTTY, Status{}, facts()), Catch::Contains("not an ioasidd context"));
    CHECK(explain(ENOTCONN, IoasAlloc{}, facts()) == "the daemon has gone away");
}

TEST_CASE("status tables")
{
    Json report = Json::parse(R"({"daemon": {"pid": 42, "version": "0.1.0", "transports": ["socket"],
                                             "socket": "/run/ioasid/ioasid.sock"},
                                  "contexts": []})");
    report["contexts"].push_back(kContext);
    std::string text = render_status(report);
    CHECK(text ==
          "daemon  pid 42  version 0.1.0  transports socket  socket /run/ioasid/ioasid.sock\n"
          "context 4 (this one)  transport socket  uid 1000  pids 321  opened 2026-11-21T10:00:00Z  pinned 8 KiB\n"
          "    ID  TYPE    DETAILS\n"
          "    1   ioas    2 areas  users 2\n"
          "        IOVA               LENGTH  ACCESS\n"
          "        0x0-0x1fff         8 KiB   rw\n"
          "        0x100000-0x2fffff  2 MiB   r-\n"
          "    2   access  ioas 1  users 2\n"
          "    3   ioas    0 areas  users 1");

    Json empty = Json::parse(R"({"daemon": {"pid": 42}, "contexts": []})");
    CHECK(render_status(empty) == "daemon  pid 42\n(no contexts)");

    // Fields the view does not know are still shown.
    Json odd = Json::parse(R"({"contexts": [{"id": 1, "busy": true, "colour": "blue"}]})");
    CHECK(render_status(odd) == "context 1 (busy: not described)  colour blue");
}

namespace {

// A context with nic0 bound as dev 5 and attached to HWPT 6 on IOAS 1, and
// the hardware section of the default topology, gpu0-audio bound elsewhere.
const Json kHwContext = Json::parse(R"({
  "id": 2, "own": true,
  "objects": [
    {"id": 1, "type": "ioas", "users": 2, "areas": []},
    {"id": 5, "type": "device", "name": "nic0", "users": 2, "hwpt": 6},
    {"id": 6, "type": "hwpt_paging", "ioas": 1, "unit": "vtd0", "users": 2},
    {"id": 7, "type": "device", "name": "accel0", "users": 1},
    {"id": 8, "type": "hwpt_paging", "ioas": 1, "unit": "mock0", "users": 1}
  ]})");

const Json kHardware = Json::parse(R"({
  "units": [{"name": "mock0", "family": "mock",
             "iotlb": {"entries": 1, "evictions": 0, "hits": 7, "invalidations": 2, "misses": 3}},
            {"name": "vtd0", "family": "vtd"}],
  "devices": [
    {"name": "nic0", "unit": "vtd0", "vfio": "vfio2", "rid": 24, "group": "nic0", "pasid_bits": 16,
     "pasid_only": false, "context": 2},
    {"name": "gpu0", "unit": "vtd0", "vfio": "vfio4", "rid": 40, "group": "gpu", "pasid_bits": 0,
     "pasid_only": false},
    {"name": "gpu0-audio", "unit": "vtd0", "vfio": "vfio5", "rid": 41, "group": "gpu", "pasid_bits": 0,
     "pasid_only": false, "context": 9},
    {"name": "accel0", "unit": "vtd0", "vfio": "vfio6", "rid": 48, "group": "accel0", "pasid_bits": 8,
     "pasid_only": true, "context": 2}
  ]})");

Facts hw_facts()
{
    Facts f;
    f.context = &kHwContext;
    f.hardware = &kHardware;
    return f;
}

} // namespace

TEST_CASE("emulated hardware: causes")
{
    CHECK(explain(ENODEV, Bind{"nope"}, hw_facts()) ==
          "no device 'nope' in the topology (it has: nic0, gpu0, gpu0-audio, accel0)");
    CHECK(explain(EBUSY, Bind{"nic0"}, hw_facts()) == "nic0 is already bound to this context (dev 5)");
    CHECK(explain(EBUSY, Bind{"gpu0-audio"}, hw_facts()) == "gpu0-audio is already bound to context 9");
    CHECK(explain(EBUSY, Bind{"gpu0"}, hw_facts()) ==
          "gpu0 shares IOMMU group 'gpu' with gpu0-audio, bound to context 9: a group belongs to one context at a time");
    CHECK(explain(ENOENT, Unbind{1}, hw_facts()) == "object 1 is an IOAS, not a device");
    CHECK(explain(ENOENT, HwInfo{3}, hw_facts()) == "no object 3");

    CHECK(explain(EINVAL, Attach{7, 1, std::nullopt}, hw_facts()) ==
          "accel0 issues only PASID-tagged DMA: attach a PASID (--pasid N)");
    CHECK(explain(EINVAL, Attach{7, 1, 256}, hw_facts()) == "PASID 256 is outside what accel0 supports (1..255)");
    CHECK(explain(EINVAL, Attach{7, 1, 3}, hw_facts()).starts_with("a PASID attaches to a HWPT allocated with"));
    CHECK(explain(EINVAL, Attach{5, 8, std::nullopt}, hw_facts()) ==
          "HWPT 8 belongs to unit mock0 but nic0 sits behind vtd0");
    CHECK(explain(EINVAL, Attach{5, 7, std::nullopt}, hw_facts()) == "object 7 is a device, not an IOAS or a HWPT");
    CHECK(explain(ENOENT, Attach{5, 9, std::nullopt}, hw_facts()) == "no object 9");
    CHECK(explain(ENOENT, Attach{1, 6, std::nullopt}, hw_facts()) == "object 1 is an IOAS, not a device");

    CHECK(explain(EOPNOTSUPP, HwptAlloc{5, 1, false, true, true}, hw_facts()) ==
          "vtd0 (behind nic0) offers no dirty tracking or PASID-capable domains");
    CHECK(explain(EINVAL, HwptAlloc{5, 9, false, false, false}, hw_facts()) == "no IOAS 9");
    CHECK(explain(EINVAL, HwptAlloc{5, 6, false, false, false}, hw_facts()) ==
          "HWPT 6 is not a nesting parent (hwpt alloc --nest-parent)");

    Dirty read{DirtyOp::read, 6, 0x1000, 0x1800, 4096, true};
    CHECK(explain(EINVAL, read, hw_facts()) == "IOVA 0x1000 and LENGTH 0x1800 must be multiples of the page size 0x1000");
    CHECK(explain(EOPNOTSUPP, Dirty{DirtyOp::enable, 6}, hw_facts()) ==
          "HWPT 6 was not allocated with dirty tracking (hwpt alloc DEV IOAS --dirty)");
    CHECK(explain(ENOENT, Dirty{DirtyOp::enable, 1}, hw_facts()) == "object 1 is an IOAS, not a HWPT");
    CHECK(explain(ENOENT, PtDump{5}, hw_facts()) == "object 5 is a device, not a HWPT");
    Dma dma;
    dma.dev = 6;
    CHECK(explain(ENOENT, dma, hw_facts()) == "object 6 is a HWPT, not a device");
}

TEST_CASE("emulated hardware: views")
{
    CHECK(rid_text(0x18) == "00:03.0");
    CHECK(rid_text(0x29) == "00:05.1");
    CHECK(rid_text(0xff07) == "ff:00.7");

    Json report = {{"contexts", Json::array({kHwContext})}, {"hardware", kHardware}};
    Json view = topology_view(report);
    REQUIRE(view["devices"].size() == 4);
    CHECK(view["devices"][0]["state"] == "bound-here");
    CHECK(view["devices"][0]["dev"] == 5);
    CHECK(view["devices"][0]["bdf"] == "00:03.0");
    CHECK(view["devices"][0]["node"] == "/dev/vfio/devices/vfio2");
    CHECK(view["devices"][1]["state"] == "free");
    CHECK(view["devices"][2]["state"] == "bound");
    CHECK(render_topology(view) ==
          "UNIT   FAMILY  IOTLB HITS  MISSES  INVALIDATIONS  EVICTIONS  ENTRIES\n"
          "mock0  mock    7           3       2              0          1\n"
          "vtd0   vtd     0           0       0              0          0\n"
          "\n"
          "DEVICE      UNIT  RID      GROUP   PASID         VFIO                     STATE\n"
          "nic0        vtd0  00:03.0  nic0    16 bits       /dev/vfio/devices/vfio2  bound here (dev 5)\n"
          "gpu0        vtd0  00:05.0  gpu     -             /dev/vfio/devices/vfio4  free\n"
          "gpu0-audio  vtd0  00:05.1  gpu     -             /dev/vfio/devices/vfio5  bound to context 9\n"
          "accel0      vtd0  00:06.0  accel0  8 bits, only  /dev/vfio/devices/vfio6  bound here (dev 7)");
    CHECK(render_units(report) ==
          "unit mock0  family mock  iotlb hits 7  misses 3  invalidations 2  evictions 0  entries 1\n"
          "unit vtd0  family vtd\n");
    CHECK(render_units(Json::object()).empty());

    Json dump = Json::parse(R"({"hwpt": 3, "unit": "vtd0", "format": "vtd-second-stage", "root": 4294967296,
      "levels": 2, "aperture": [0, 1073741823], "pgsize_bitmap": 2101248,
      "entries": [
        {"level": 1, "index": 0, "table": 4294967296, "iova": 0, "size": 2097152, "raw": 4294971395,
         "leaf": false, "fields": "ADDR=0x100001000 R W"},
        {"level": 0, "index": 256, "table": 4294971392, "iova": 1048576, "size": 4096, "raw": 4297066499,
         "leaf": true, "fields": "ADDR=0x100200000 R W SNP"}]})");
    CHECK(render_pt_dump(dump) ==
          "hwpt 3: vtd-second-stage on vtd0, 2 levels, root 0x100000000, aperture 0x0-0x3fffffff, pages 4 KiB 2 MiB\n"
          "L1[0]      0x0-0x1fffff       0x0000000100001003  table  ADDR=0x100001000 R W\n"
          "  L0[256]  0x100000-0x100fff  0x0000000100200803  leaf   ADDR=0x100200000 R W SNP");

    std::vector<std::uint8_t> bytes(40, 0);
    bytes[0] = 'H';
    bytes[1] = 'i';
    CHECK(hexdump(0xff8, bytes) ==
          "0xff8   48 69 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |Hi..............|\n"
          "0x1008  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|\n"
          "0x1018  00 00 00 00 00 00 00 00                           |........|");
    std::vector<std::uint8_t> same(64, 0x5a);
    CHECK(hexdump(0, same) ==
          "0x0   5a 5a 5a 5a 5a 5a 5a 5a  5a 5a 5a 5a 5a 5a 5a 5a  |ZZZZZZZZZZZZZZZZ|\n"
          "*\n"
          "0x30  5a 5a 5a 5a 5a 5a 5a 5a  5a 5a 5a 5a 5a 5a 5a 5a  |ZZZZZZZZZZZZZZZZ|");
    CHECK(hex_bytes(std::vector<std::uint8_t>{0xde, 0xad, 0x01}) == "dead01");

    // VT-d: the registers of vtd0 in the default topology.
    Json decoded = decode_vtd(0x09ed008c406f0466, 0x0003ef9ea6f050df);
    CHECK(decoded["cap"]["SAGAW"] == 4);
    CHECK(decoded["cap"]["MGAW"] == 47);
    CHECK(decoded["cap"]["SLLPS"] == 3);
    CHECK(decoded["ecap"]["PSS"] == 19);
    CHECK(decoded["ecap"]["SLADS"] == 1);
    CHECK(decoded["ecap"]["NEST"] == 1);
    CHECK(decoded["ecap"]["FLTS"] == 1);
    CHECK(render_vtd(0x09ed008c406f0466, 0x0003ef9ea6f050df) ==
          "  cap  0x09ed008c406f0466  SAGAW=0x4 (48-bit/4-level)  MGAW=47 (48-bit)  SLLPS=0x3 (2 MiB, 1 GiB)\n"
          "  ecap 0x0003ef9ea6f050df  PASID=1  PSS=19 (20-bit PASIDs)  SLADS=1  NEST=1  FLTS=1");

    // SMMUv3: IDR0 = ST_LEVEL 1 (bit 27) | TTENDIAN 2 (bits 22:21) | CD2L (19) |
    // VMID16 (18) | ASID16 (12) | HTTU 2 (bits 7:6) | COHACC (4) | TTF 2
    // (bits 3:2) | S1P (1) | S2P (0) = 0x08000000 | 0x00400000 | 0x00080000 |
    // 0x00040000 | 0x00001000 | 0x00000080 | 0x10 | 0x8 | 0x2 | 0x1.
    iommu_hw_info_arm_smmuv3 smmu{};
    smmu.idr[0] = 0x084c109b;
    smmu.idr[1] = (20u << 6) | 16u;         // SSIDSIZE 20, SIDSIZE 16
    smmu.idr[3] = 1u << 10;                 // RIL
    smmu.idr[5] = (1u << 6) | (1u << 4) | 5; // GRAN64K, GRAN4K, OAS 48-bit
    smmu.aidr = 0x2;
    Json idr = decode_smmuv3(smmu);
    CHECK(idr["IDR0"]["ST_LEVEL"] == 1);
    CHECK(idr["IDR0"]["TTENDIAN"] == 2);
    CHECK(idr["IDR0"]["HTTU"] == 2);
    CHECK(idr["IDR0"]["TTF"] == 2);
    CHECK(idr["IDR0"]["S2P"] == 1);
    CHECK(idr["IDR0"]["PRI"] == 0);
    CHECK(idr["IDR1"]["SSIDSIZE"] == 20);
    CHECK(idr["IDR1"]["SIDSIZE"] == 16);
    CHECK(idr["IDR3"]["RIL"] == 1);
    CHECK(idr["IDR5"]["OAS"] == 5);
    CHECK(idr["IDR5"]["GRAN16K"] == 0);
    CHECK(idr["IDR5"]["GRAN64K"] == 1);
    const std::string smmu_text = render_smmuv3(smmu);
    CHECK(smmu_text.starts_with("  IDR0 0x084c109b  S2P=1  S1P=1  TTF=2  COHACC=1  HTTU=2  ATS=0  ASID16=1"));
    CHECK(smmu_text.find("\n  IDR1 0x00000510  SIDSIZE=16  SSIDSIZE=20\n") != std::string::npos);
    CHECK(smmu_text.ends_with("\n  AIDR 0x00000002"));

    // AMD: EFR = HDSup (52) | HASup (49) | PASmax 15 (36:32) | GLXSup 1
    // (15:14) | GTSup (4) | PPRSup (1).
    iommu_hw_info_amd amd{.efr = (1ULL << 52) | (1ULL << 49) | (15ULL << 32) | (1ULL << 14) | (1ULL << 4) | 2,
                          .efr2 = 0};
    Json efr = decode_amd(amd);
    CHECK(efr["EFR"]["HDSup"] == 1);
    CHECK(efr["EFR"]["HASup"] == 1);
    CHECK(efr["EFR"]["PASmax"] == 15);
    CHECK(efr["EFR"]["GLXSup"] == 1);
    CHECK(efr["EFR"]["GTSup"] == 1);
    CHECK(efr["EFR"]["NXSup"] == 0);
    CHECK(render_amd(amd) == "  EFR  0x0012000f00004012  PPRSup=1  NXSup=0  GTSup=1  GLXSup=1  PASmax=15  GIoSup=0  "
                             "HASup=1  HDSup=1  SNPSup=0\n"
                             "  EFR2 0x0000000000000000");

    std::vector<std::uint64_t> bitmap{0b1011'0000'0110, 1};
    auto runs = dirty_runs(bitmap, 65, 0x100000, 4096);
    REQUIRE(runs.size() == 4);
    CHECK(runs[0].iova == 0x101000);
    CHECK(runs[0].pages == 2);
    CHECK(runs[1].iova == 0x108000);
    CHECK(runs[1].pages == 2);
    CHECK(runs[2].iova == 0x10b000);
    CHECK(runs[2].pages == 1);
    CHECK(runs[3].iova == 0x100000 + 64 * 4096);
    CHECK(dirty_runs(bitmap, 64, 0, 4096).size() == 3); // bit 64 is past nbits

    CHECK(fault_reason_name(4) == "not-present");
    CHECK(fault_reason_name(9) == "reason-9");
}
