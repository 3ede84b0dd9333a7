// The causes ioasidctl gives for failures, and the status tables, from
// status reports written by hand in the daemon's format.
#include <catch2/catch.hpp>

#include <cerrno>

#include "explain.h"
#include "format.h"
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
