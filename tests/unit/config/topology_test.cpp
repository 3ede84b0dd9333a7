// The topology file: every validation rule against a file that breaks it
// (the exact "FILE:LINE:COL: message" line), rid forms, Params, and the
// embedded default with the properties the hardware models and the README
// rely on.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>

#include "config/topology.h"

using namespace ioasid::config;

namespace {

// The error line for `text`, which must not parse.
std::string error_of(std::string_view text)
{
    std::string error;
    std::optional<Topology> topology = parse_topology(text, "t.toml", &error);
    INFO(text);
    REQUIRE_FALSE(topology);
    return error;
}

Topology parsed(std::string_view text)
{
    std::string error;
    std::optional<Topology> topology = parse_topology(text, "t.toml", &error);
    INFO(error);
    REQUIRE(topology);
    return *topology;
}

// Three lines of unit every device test starts from, so that the first
// [[device]] table is on line 4.
constexpr std::string_view kUnit = "[[unit]]\nname = \"u0\"\nfamily = \"mock\"\n";

std::string with_unit(std::string_view devices)
{
    return std::string(kUnit) + std::string(devices);
}

const DeviceSpec& device(const Topology& topology, std::string_view name)
{
    auto it = std::find_if(topology.devices.begin(), topology.devices.end(),
                           [&](const DeviceSpec& d) { return d.name == name; });
    REQUIRE(it != topology.devices.end());
    return *it;
}

const UnitSpec& unit(const Topology& topology, std::string_view name)
{
    auto it = std::find_if(topology.units.begin(), topology.units.end(),
                           [&](const UnitSpec& u) { return u.name == name; });
    REQUIRE(it != topology.units.end());
    return *it;
}

} // namespace

TEST_CASE("a full file parses into units and devices with defaults filled in", "[topology]")
{
    const Topology t = parsed(R"(# comment
[[unit]]
name = "vtd0"
family = "vtd"
address_width = 48     # family-specific
dirty_tracking = true
model = "x"

[[unit]]
name = "m"
family = "mock"

[[device]]
name = "nic0"
unit = "vtd0"
rid = "00:03.0"
group = "g1"
pasid_bits = 8
pasid_only = false
dirty_tracking = false
vfio = "vfio-nic"

[[device]]
name = "plain"
unit = "m"
rid = 7
)");
    REQUIRE(t.units.size() == 2);
    CHECK(t.units[0].name == "vtd0");
    CHECK(t.units[0].family == "vtd");
    CHECK(t.units[0].params.keys() == std::vector<std::string>{"address_width", "dirty_tracking",
                                                                "model"});
    CHECK(t.units[0].params.where() == "t.toml:2:1");
    CHECK(t.units[1].name == "m");
    CHECK(t.units[1].params.empty());

    REQUIRE(t.devices.size() == 2);
    const DeviceSpec& nic = t.devices[0];
    CHECK(nic.name == "nic0");
    CHECK(nic.unit == "vtd0");
    CHECK(nic.rid == 0x18);
    CHECK(nic.group == "g1");
    CHECK(nic.pasid_bits == 8);
    CHECK_FALSE(nic.pasid_only);
    CHECK_FALSE(nic.dirty_tracking);
    CHECK(nic.vfio == "vfio-nic");

    const DeviceSpec& plain = t.devices[1];
    CHECK(plain.rid == 7);
    CHECK(plain.group == "plain");     // a group of its own, named after it
    CHECK(plain.pasid_bits == 0);
    CHECK_FALSE(plain.pasid_only);
    CHECK(plain.dirty_tracking);
    CHECK(plain.vfio == "vfio1");      // its index in the file, from 0
}

TEST_CASE("inline arrays of tables are the same as [[...]] headers", "[topology]")
{
    const Topology t = parsed(R"(unit = [{ name = "a", family = "amd" }]
device = [{ name = "d", unit = "a", rid = 1 }]
)");
    CHECK(t.units.size() == 1);
    CHECK(t.devices.size() == 1);
}

TEST_CASE("every family is accepted", "[topology]")
{
    for (std::string_view family : {"mock", "vtd", "smmuv3", "amd", "ppc_tce", "virtio"}) {
        const Topology t =
            parsed("[[unit]]\nname = \"u\"\nfamily = \"" + std::string(family) + "\"\n");
        CHECK(t.units.at(0).family == family);
    }
}

TEST_CASE("TOML syntax errors carry the file, line and column", "[topology]")
{
    CHECK(error_of("[[unit]]\nname = \"a\"\nname = \"b\"\n") ==
          "t.toml:3:8: Error while parsing key-value pair: cannot redefine existing string 'name'");
    CHECK(error_of("[[unit]\n").rfind("t.toml:1:", 0) == 0);
}

TEST_CASE("top level: only [[unit]] and [[device]], at least one unit", "[topology]")
{
    CHECK(error_of(std::string(kUnit) + "[units]\nx = 1\n") ==
          "t.toml:4:2: unknown top-level key \"units\" (a topology has only [[unit]] and "
          "[[device]] tables)");
    CHECK(error_of("verbose = true\n" + std::string(kUnit)) ==
          "t.toml:1:1: unknown top-level key \"verbose\" (a topology has only [[unit]] and "
          "[[device]] tables)");
    CHECK(error_of("[unit]\nname = \"u\"\nfamily = \"mock\"\n") ==
          "t.toml:1:2: \"unit\" must be an array of tables ([[unit]]), not a table");
    // Top-level keys come before the first table header.
    CHECK(error_of("device = 3\n" + std::string(kUnit)) ==
          "t.toml:1:1: \"device\" must be an array of tables ([[device]]), not an integer");
    CHECK(error_of("device = [1, 2]\n" + std::string(kUnit)) ==
          "t.toml:1:1: \"device\" must be an array of tables ([[device]]), not an array of "
          "other values");
    CHECK(error_of("") == "t.toml:1:1: no [[unit]]: a topology needs at least one IOMMU unit");
    CHECK(error_of("# nothing\n\n[[device]]\nname = \"d\"\nunit = \"u\"\nrid = 1\n") ==
          "t.toml:1:1: no [[unit]]: a topology needs at least one IOMMU unit");
    CHECK(error_of("unit = []\n") ==
          "t.toml:1:1: no [[unit]]: a topology needs at least one IOMMU unit");
    // No devices at all is fine.
    CHECK(parsed("device = []\n" + std::string(kUnit)).devices.empty());
}

TEST_CASE("unit: name and family are required, checked, unique", "[topology]")
{
    CHECK(error_of("[[unit]]\nfamily = \"mock\"\n") == "t.toml:1:1: [[unit]] without \"name\"");
    CHECK(error_of("\n[[unit]]\nname = \"a\"\n") == "t.toml:2:1: unit \"a\" has no \"family\"");
    CHECK(error_of("[[unit]]\nname = 3\nfamily = \"mock\"\n") ==
          "t.toml:2:1: unit key \"name\" must be a string, not an integer");
    CHECK(error_of("[[unit]]\nname = \"a\"\nfamily = true\n") ==
          "t.toml:3:1: unit key \"family\" must be a string, not a boolean");
    CHECK(error_of("[[unit]]\nname = \"a\"\nfamily = \"intel\"\n") ==
          "t.toml:3:1: unknown unit family \"intel\" (known: mock, vtd, smmuv3, amd, ppc_tce, "
          "virtio)");
    CHECK(error_of("[[unit]]\nfamily = \"mock\"\n  name = \"Vtd0\"\n") ==
          "t.toml:3:3: unit name \"Vtd0\" must be 1 to 31 characters of a-z, 0-9, '_' and '-'");
    CHECK(error_of("[[unit]]\nname = \"\"\nfamily = \"mock\"\n") ==
          "t.toml:2:1: unit name \"\" must be 1 to 31 characters of a-z, 0-9, '_' and '-'");
    CHECK(error_of("[[unit]]\nname = \"a.b\"\nfamily = \"mock\"\n") ==
          "t.toml:2:1: unit name \"a.b\" must be 1 to 31 characters of a-z, 0-9, '_' and '-'");
    const std::string name33(32, 'a');
    CHECK(error_of("[[unit]]\nname = \"" + name33 + "\"\nfamily = \"mock\"\n") ==
          "t.toml:2:1: unit name \"" + name33 +
              "\" must be 1 to 31 characters of a-z, 0-9, '_' and '-'");
    CHECK(parsed("[[unit]]\nname = \"" + std::string(31, 'z') + "\"\nfamily = \"mock\"\n")
              .units.size() == 1);
    CHECK(parsed("[[unit]]\nname = \"a_b-9\"\nfamily = \"mock\"\n").units.size() == 1);
    CHECK(error_of("[[unit]]\nname = \"a\"\nfamily = \"mock\"\n"
                   "[[unit]]\nname = \"b\"\nfamily = \"vtd\"\n"
                   "[[unit]]\nfamily = \"vtd\"\nname = \"a\"\n") ==
          "t.toml:9:1: duplicate unit name \"a\" (first at line 2)");
}

TEST_CASE("unit: family-specific values are integers, booleans or strings", "[topology]")
{
    CHECK(error_of(std::string(kUnit) + "ratio = 1.5\n") ==
          "t.toml:4:1: unit key \"ratio\" must be an integer, a boolean or a string, not a "
          "floating-point number");
    CHECK(error_of(std::string(kUnit) + "windows = [1, 2]\n") ==
          "t.toml:4:1: unit key \"windows\" must be an integer, a boolean or a string, not an "
          "array");
    CHECK(error_of(std::string(kUnit) + "[unit.sub]\nx = 1\n") ==
          "t.toml:4:7: unit key \"sub\" must be an integer, a boolean or a string, not a table");
    CHECK(error_of(std::string(kUnit) + "when = 2024-01-01\n") ==
          "t.toml:4:1: unit key \"when\" must be an integer, a boolean or a string, not a date");
}

TEST_CASE("device: required keys", "[topology]")
{
    CHECK(error_of(with_unit("[[device]]\nunit = \"u0\"\nrid = 1\n")) ==
          "t.toml:4:1: [[device]] without \"name\"");
    CHECK(error_of(with_unit("[[device]]\nname = \"d\"\nrid = 1\n")) ==
          "t.toml:4:1: device \"d\" has no \"unit\"");
    CHECK(error_of(with_unit("[[device]]\nname = \"d\"\nunit = \"u0\"\n")) ==
          "t.toml:4:1: device \"d\" has no \"rid\"");
}

TEST_CASE("device: unknown keys and wrong types", "[topology]")
{
    const std::string head = "[[device]]\nname = \"d\"\nunit = \"u0\"\nrid = 1\n";
    CHECK(error_of(with_unit(head + "pasid = 8\n")) ==
          "t.toml:8:1: unknown device key \"pasid\" (known: name, unit, rid, group, pasid_bits, "
          "pasid_only, dirty_tracking, vfio)");
    CHECK(error_of(with_unit(head + "pasid_bits = \"8\"\n")) ==
          "t.toml:8:1: device key \"pasid_bits\" must be an integer, not a string");
    CHECK(error_of(with_unit(head + "pasid_only = 1\n")) ==
          "t.toml:8:1: device key \"pasid_only\" must be a boolean, not an integer");
    CHECK(error_of(with_unit(head + "dirty_tracking = \"yes\"\n")) ==
          "t.toml:8:1: device key \"dirty_tracking\" must be a boolean, not a string");
    CHECK(error_of(with_unit(head + "group = 1\n")) ==
          "t.toml:8:1: device key \"group\" must be a string, not an integer");
    CHECK(error_of(with_unit(head + "vfio = 0\n")) ==
          "t.toml:8:1: device key \"vfio\" must be a string, not an integer");
    CHECK(error_of(with_unit("[[device]]\nname = \"d\"\nunit = [\"u0\"]\nrid = 1\n")) ==
          "t.toml:6:1: device key \"unit\" must be a string, not an array");
    CHECK(error_of(with_unit("[[device]]\nname = \"d\"\nunit = \"u0\"\nrid = 1.0\n")) ==
          "t.toml:7:1: device key \"rid\" must be an integer or a \"BB:DD.F\" string, not a "
          "floating-point number");
}

TEST_CASE("device: names are checked and unique, units must exist", "[topology]")
{
    CHECK(error_of(with_unit("[[device]]\nname = \"NIC\"\nunit = \"u0\"\nrid = 1\n")) ==
          "t.toml:5:1: device name \"NIC\" must be 1 to 31 characters of a-z, 0-9, '_' and '-'");
    CHECK(error_of(with_unit("[[device]]\nname = \"d\"\nunit = \"u0\"\nrid = 1\n"
                             "group = \"G\"\n")) ==
          "t.toml:8:1: device group \"G\" must be 1 to 31 characters of a-z, 0-9, '_' and '-'");
    CHECK(error_of(with_unit("[[device]]\nname = \"d\"\nunit = \"u0\"\nrid = 1\n"
                             "vfio = \"vfio/0\"\n")) ==
          "t.toml:8:1: device vfio \"vfio/0\" must be 1 to 31 characters of a-z, 0-9, '_' and '-'");
    CHECK(error_of(with_unit("[[device]]\nname = \"d\"\nunit = \"u1\"\nrid = 1\n")) ==
          "t.toml:6:1: device \"d\": no unit named \"u1\"");
    CHECK(error_of(with_unit("[[device]]\nname = \"d\"\nunit = \"u0\"\nrid = 1\n"
                             "[[device]]\nrid = 2\nunit = \"u0\"\nname = \"d\"\n")) ==
          "t.toml:11:1: duplicate device name \"d\" (first at line 5)");
    // A device may share its name with a unit: they are separate name spaces.
    CHECK(parsed(with_unit("[[device]]\nname = \"u0\"\nunit = \"u0\"\nrid = 1\n")).devices.size() ==
          1);
}

TEST_CASE("device: pasid_bits range and pasid_only", "[topology]")
{
    const std::string head = "[[device]]\nname = \"d\"\nunit = \"u0\"\nrid = 1\n";
    CHECK(error_of(with_unit(head + "pasid_bits = 21\n")) ==
          "t.toml:8:1: \"pasid_bits\" must be 0..20, not 21");
    CHECK(error_of(with_unit(head + "pasid_bits = -1\n")) ==
          "t.toml:8:1: \"pasid_bits\" must be 0..20, not -1");
    CHECK(parsed(with_unit(head + "pasid_bits = 20\n")).devices[0].pasid_bits == 20);
    CHECK(parsed(with_unit(head + "pasid_bits = 0\n")).devices[0].pasid_bits == 0);
    CHECK(error_of(with_unit(head + "pasid_only = true\n")) ==
          "t.toml:8:1: device \"d\": \"pasid_only\" needs \"pasid_bits\" above 0");
    CHECK(error_of(with_unit(head + "pasid_only = true\npasid_bits = 0\n")) ==
          "t.toml:8:1: device \"d\": \"pasid_only\" needs \"pasid_bits\" above 0");
    const DeviceSpec only =
        parsed(with_unit(head + "pasid_only = true\npasid_bits = 1\n")).devices[0];
    CHECK(only.pasid_only);
    CHECK(only.pasid_bits == 1);
}

TEST_CASE("rid: PCI bus:dev.fn strings and plain integers", "[topology]")
{
    CHECK(parse_pci_rid("00:03.0") == 0x18u);
    CHECK(parse_pci_rid("ff:1f.7") == 0xffffu);
    CHECK(parse_pci_rid("FF:1F.7") == 0xffffu);
    CHECK(parse_pci_rid("00:00.0") == 0u);
    CHECK(parse_pci_rid("01:00.1") == 0x101u);
    CHECK(parse_pci_rid("3a:10.2") == ((0x3au << 8) | (0x10u << 3) | 2u));
    for (std::string_view bad : {"", "0:3.0", "00:3.0", "00:03", "00:03.", "00:03.8", "00:20.0",
                                 "000:03.0", "0000:00:03.0", "00-03.0", "00:03:0", "g0:03.0",
                                 "00:03.0 ", " 00:03.0", "00:0x.0"}) {
        INFO(bad);
        CHECK_FALSE(parse_pci_rid(bad));
    }

    const auto rid = [](std::string_view value) {
        return parsed(with_unit("[[device]]\nname = \"d\"\nunit = \"u0\"\nrid = " +
                                std::string(value) + "\n"))
            .devices[0]
            .rid;
    };
    CHECK(rid("\"00:03.0\"") == 0x18u);
    CHECK(rid("\"ff:1f.7\"") == 0xffffu);
    CHECK(rid("0") == 0u);
    CHECK(rid("0xffff") == 0xffffu);
    CHECK(rid("24") == 24u);

    const auto rid_error = [](std::string_view value) {
        return error_of(with_unit("[[device]]\nname = \"d\"\nunit = \"u0\"\nrid = " +
                                  std::string(value) + "\n"));
    };
    CHECK(rid_error("0x10000") == "t.toml:7:1: \"rid\" must be 0..0xffff, not 65536");
    CHECK(rid_error("-1") == "t.toml:7:1: \"rid\" must be 0..0xffff, not -1");
    CHECK(rid_error("\"00:20.0\"") ==
          "t.toml:7:1: \"rid\" \"00:20.0\" is not \"BB:DD.F\" (hex bus 00-ff, device 00-1f, "
          "function 0-7)");
    CHECK(rid_error("\"0000:00:03.0\"") ==
          "t.toml:7:1: \"rid\" \"0000:00:03.0\" is not \"BB:DD.F\" (hex bus 00-ff, device "
          "00-1f, function 0-7)");
    CHECK(rid_error("\"nic\"") ==
          "t.toml:7:1: \"rid\" \"nic\" is not \"BB:DD.F\" (hex bus 00-ff, device 00-1f, "
          "function 0-7)");
    CHECK(rid_error("true") ==
          "t.toml:7:1: device key \"rid\" must be an integer or a \"BB:DD.F\" string, not a "
          "boolean");
}

TEST_CASE("rid: unique per unit, whatever the form", "[topology]")
{
    const std::string two_units = "[[unit]]\nname = \"u0\"\nfamily = \"mock\"\n"
                                  "[[unit]]\nname = \"u1\"\nfamily = \"vtd\"\n";
    // Line 7 onwards.
    CHECK(error_of(two_units +
                   "[[device]]\nname = \"a\"\nunit = \"u0\"\nrid = \"00:03.0\"\n"
                   "[[device]]\nname = \"b\"\nunit = \"u0\"\nrid = 0x18\n") ==
          "t.toml:14:1: device \"b\": rid 00:03.0 (0x0018) on unit \"u0\" is already taken by "
          "device \"a\" (line 7)");
    // The same rid on another unit is another device.
    CHECK(parsed(two_units + "[[device]]\nname = \"a\"\nunit = \"u0\"\nrid = 24\n"
                             "[[device]]\nname = \"b\"\nunit = \"u1\"\nrid = 24\n")
              .devices.size() == 2);
}

TEST_CASE("vfio: defaults to vfio<index>, names unique", "[topology]")
{
    const Topology t = parsed(with_unit("[[device]]\nname = \"a\"\nunit = \"u0\"\nrid = 1\n"
                                        "[[device]]\nname = \"b\"\nunit = \"u0\"\nrid = 2\n"
                                        "vfio = \"nvme-x\"\n"
                                        "[[device]]\nname = \"c\"\nunit = \"u0\"\nrid = 3\n"));
    CHECK(t.devices[0].vfio == "vfio0");
    CHECK(t.devices[1].vfio == "nvme-x");
    CHECK(t.devices[2].vfio == "vfio2"); // the index counts explicitly named devices too

    // Explicit against explicit: the second key.
    CHECK(error_of(with_unit("[[device]]\nname = \"a\"\nunit = \"u0\"\nrid = 1\nvfio = \"x\"\n"
                             "[[device]]\nname = \"b\"\nunit = \"u0\"\nrid = 2\nvfio = \"x\"\n")) ==
          "t.toml:13:1: device \"b\": vfio node \"x\" is already device \"a\"'s (line 4)");
    // A default that collides with an earlier explicit name: the table.
    CHECK(error_of(with_unit("[[device]]\nname = \"a\"\nunit = \"u0\"\nrid = 1\nvfio = \"vfio1\"\n"
                             "[[device]]\nname = \"b\"\nunit = \"u0\"\nrid = 2\n")) ==
          "t.toml:9:1: device \"b\": vfio node \"vfio1\" is already device \"a\"'s (line 4); "
          "set \"vfio\" explicitly");
    // An explicit name that collides with an earlier default.
    CHECK(error_of(with_unit("[[device]]\nname = \"a\"\nunit = \"u0\"\nrid = 1\n"
                             "[[device]]\nname = \"b\"\nunit = \"u0\"\nrid = 2\n"
                             "vfio = \"vfio0\"\n")) ==
          "t.toml:12:1: device \"b\": vfio node \"vfio0\" is already device \"a\"'s (line 4)");
}

TEST_CASE("groups: shared by name, on one unit only", "[topology]")
{
    const std::string two_units = "[[unit]]\nname = \"u0\"\nfamily = \"mock\"\n"
                                  "[[unit]]\nname = \"u1\"\nfamily = \"vtd\"\n";
    const Topology t = parsed(two_units +
                              "[[device]]\nname = \"a\"\nunit = \"u0\"\nrid = 1\ngroup = \"g\"\n"
                              "[[device]]\nname = \"b\"\nunit = \"u0\"\nrid = 2\ngroup = \"g\"\n"
                              "[[device]]\nname = \"c\"\nunit = \"u0\"\nrid = 3\ngroup = \"g\"\n"
                              "[[device]]\nname = \"d\"\nunit = \"u1\"\nrid = 3\n");
    CHECK(device(t, "a").group == "g");
    CHECK(device(t, "b").group == "g");
    CHECK(device(t, "c").group == "g");
    CHECK(device(t, "d").group == "d");

    // Line 7: a; line 12: b.
    CHECK(error_of(two_units +
                   "[[device]]\nname = \"a\"\nunit = \"u0\"\nrid = 1\ngroup = \"g\"\n"
                   "[[device]]\nname = \"b\"\nunit = \"u1\"\nrid = 2\ngroup = \"g\"\n") ==
          "t.toml:16:1: device \"b\": group \"g\" is on unit \"u0\" (device \"a\", line 7), this "
          "device on unit \"u1\": a group belongs to one unit");
    // Joining another device's default group by its name: same rule, and
    // with no "group" key the error points at "unit".
    CHECK(parsed(two_units + "[[device]]\nname = \"a\"\nunit = \"u0\"\nrid = 1\n"
                             "[[device]]\nname = \"b\"\nunit = \"u0\"\nrid = 2\ngroup = \"a\"\n")
              .devices[1]
              .group == "a");
    CHECK(error_of(two_units + "[[device]]\nname = \"g\"\nunit = \"u0\"\nrid = 1\ngroup = \"x\"\n"
                               "[[device]]\nname = \"x\"\nunit = \"u1\"\nrid = 2\n") ==
          "t.toml:14:1: device \"x\": group \"x\" is on unit \"u0\" (device \"g\", line 7), this "
          "device on unit \"u1\": a group belongs to one unit");
}

TEST_CASE("the first error in file order is the one reported", "[topology]")
{
    // toml++ sorts keys; the parser reads them in the order written.
    CHECK(error_of(with_unit("[[device]]\nzz = 1\naa = 2\n"
                             "name = \"d\"\nunit = \"u0\"\nrid = 1\n")) ==
          "t.toml:5:1: unknown device key \"zz\" (known: name, unit, rid, group, pasid_bits, "
          "pasid_only, dirty_tracking, vfio)");
}

TEST_CASE("Params: typed getters, positions, consumption", "[topology][params]")
{
    const Topology t = parsed(R"([[unit]]
name = "v"
family = "vtd"
address_width = 48
dirty_tracking = true
model = "sapphire"
  extra = 1
)");
    const Params& p = t.units[0].params;
    CHECK(p.size() == 4);
    CHECK(p.contains("model"));
    CHECK_FALSE(p.contains("name")); // name and family are not parameters
    CHECK(p.where("address_width") == "t.toml:4:1");
    CHECK(p.where("extra") == "t.toml:7:3");
    CHECK(p.where("absent") == "t.toml:1:1"); // the unit table
    CHECK(p.unconsumed() ==
          std::vector<std::string>{"address_width", "dirty_tracking", "model", "extra"});

    CHECK(p.integer("address_width") == 48);
    CHECK(p.boolean("dirty_tracking") == true);
    CHECK(p.string("model") == "sapphire");
    CHECK_FALSE(p.integer("absent"));
    CHECK_FALSE(p.boolean("absent"));
    CHECK_FALSE(p.string("absent"));
    CHECK(p.unconsumed() == std::vector<std::string>{"extra"});

    // Consumption belongs to a copy.
    Params copy = p;
    CHECK(copy.integer("extra") == 1);
    CHECK(copy.unconsumed().empty());
    CHECK(p.unconsumed() == std::vector<std::string>{"extra"});
}

TEST_CASE("Params: a key of another type throws ParamError naming its position",
          "[topology][params]")
{
    const Topology t = parsed(R"([[unit]]
name = "v"
family = "vtd"
address_width = "48"
flag = 1
name_ = true
)");
    const Params& p = t.units[0].params;
    try {
        (void)p.integer("address_width");
        FAIL("no ParamError");
    } catch (const ParamError& e) {
        CHECK(std::string(e.what()) ==
              "t.toml:4:1: unit key \"address_width\" must be an integer, not a string");
    }
    CHECK_THROWS_AS(p.boolean("flag"), ParamError);
    CHECK_THROWS_WITH(p.string("name_"),
                      "t.toml:6:1: unit key \"name_\" must be a string, not a boolean");
    CHECK_THROWS_WITH(p.boolean("address_width"),
                      "t.toml:4:1: unit key \"address_width\" must be a boolean, not a string");
    // Reported once by the caller, not again as unknown.
    CHECK(p.unconsumed().empty());
}

TEST_CASE("Params: built by hand for family tests", "[topology][params]")
{
    Params p;
    p.set_where("f:1:1");
    p.set("a", std::int64_t{5});
    p.set("b", std::string("x"), "f:2:1");
    p.set("a", true, "f:3:1"); // replaces
    CHECK(p.keys() == std::vector<std::string>{"a", "b"});
    CHECK(p.boolean("a") == true);
    CHECK(p.where("a") == "f:3:1");
    CHECK(p.where("zz") == "f:1:1");
    CHECK_THROWS_WITH(p.integer("b"), "f:2:1: unit key \"b\" must be an integer, not a string");

    Params bare;
    bare.set("k", std::int64_t{1});
    CHECK_THROWS_WITH(bare.string("k"), "unit key \"k\" must be a string, not an integer");
    CHECK(bare.where("k").empty());
}

TEST_CASE("load_topology_file reads a file and names it in errors", "[topology]")
{
    char dir_template[] = "/tmp/topology-test-XXXXXX";
    REQUIRE(::mkdtemp(dir_template));
    const std::string dir = dir_template;
    const std::string good = dir + "/good.toml";
    const std::string bad = dir + "/bad.toml";
    std::ofstream(good) << kUnit;
    std::ofstream(bad) << kUnit << "\n[[device]]\nname = \"d\"\n";

    std::string error;
    std::optional<Topology> t = load_topology_file(good, &error);
    REQUIRE(t);
    CHECK(t->units.at(0).params.where() == good + ":1:1");

    CHECK_FALSE(load_topology_file(bad, &error));
    CHECK(error == bad + ":5:1: device \"d\" has no \"unit\"");

    CHECK_FALSE(load_topology_file(dir + "/missing.toml", &error));
    CHECK(error == dir + "/missing.toml: cannot read: No such file or directory");
    CHECK_FALSE(load_topology_file(dir, &error));
    CHECK(error == dir + ": cannot read: Is a directory");
    // A null error pointer is allowed.
    CHECK_FALSE(load_topology_file(bad, nullptr));

    std::remove(good.c_str());
    std::remove(bad.c_str());
    ::rmdir(dir.c_str());
}

TEST_CASE("the embedded default topology", "[topology][default]")
{
    std::string error;
    std::optional<Topology> reparsed =
        parse_topology(default_topology_text(), "default_topology.toml", &error);
    INFO(error);
    REQUIRE(reparsed);
    const Topology& t = default_topology();
    CHECK(&t == &default_topology()); // parsed once
    CHECK(t.units.size() == reparsed->units.size());
    CHECK(t.devices.size() == reparsed->devices.size());

    SECTION("units")
    {
        REQUIRE(t.units.size() >= 3);
        Params mock = unit(t, "mock0").params;
        CHECK(unit(t, "mock0").family == "mock");
        CHECK(mock.empty());

        Params vtd0 = unit(t, "vtd0").params; // copies: the default is shared
        CHECK(unit(t, "vtd0").family == "vtd");
        CHECK(vtd0.integer("address_width") == 48);
        CHECK(vtd0.boolean("dirty_tracking") == true);
        CHECK(vtd0.integer("pasid_bits") == 20);

        Params vtd1 = unit(t, "vtd1").params;
        CHECK(unit(t, "vtd1").family == "vtd");
        CHECK(vtd1.integer("address_width") == 57);
    }
    SECTION("devices on vtd0")
    {
        std::vector<const DeviceSpec*> on_vtd0;
        for (const DeviceSpec& d : t.devices) {
            if (d.unit == "vtd0")
                on_vtd0.push_back(&d);
        }
        CHECK(on_vtd0.size() == 5);

        const DeviceSpec& nic = device(t, "nic0");
        CHECK(nic.unit == "vtd0");
        CHECK(nic.pasid_bits == 16);
        CHECK_FALSE(nic.pasid_only);

        const DeviceSpec& nvme = device(t, "nvme0");
        CHECK(nvme.unit == "vtd0");
        CHECK(nvme.pasid_bits == 0);

        const DeviceSpec& gpu = device(t, "gpu0");
        const DeviceSpec& audio = device(t, "gpu0-audio");
        CHECK(gpu.unit == "vtd0");
        CHECK(audio.unit == "vtd0");
        CHECK(gpu.group == "gpu");
        CHECK(audio.group == "gpu");
        CHECK((gpu.rid & 7) == 0);
        CHECK((audio.rid & 7) == 1);
        CHECK((gpu.rid >> 3) == (audio.rid >> 3)); // same bus and device
        CHECK(std::count_if(t.devices.begin(), t.devices.end(),
                            [](const DeviceSpec& d) { return d.group == "gpu"; }) == 2);

        const auto accel = std::find_if(t.devices.begin(), t.devices.end(),
                                        [](const DeviceSpec& d) { return d.pasid_only; });
        REQUIRE(accel != t.devices.end());
        CHECK(accel->unit == "vtd0");
        CHECK(accel->pasid_bits == 8);
    }
    SECTION("devices on vtd1 and mock0")
    {
        std::vector<const DeviceSpec*> on_vtd1;
        for (const DeviceSpec& d : t.devices) {
            if (d.unit == "vtd1")
                on_vtd1.push_back(&d);
        }
        REQUIRE(on_vtd1.size() == 1);
        CHECK(on_vtd1[0]->pasid_bits == 20);

        CHECK(device(t, "mock-dev0").unit == "mock0");
        CHECK(device(t, "mock-dev0").pasid_bits == 20);
        CHECK(device(t, "mock-dev1").unit == "mock0");
        CHECK(device(t, "mock-dev1").pasid_bits == 0);
    }
    SECTION("one unit of each other family, with devices after the VT-d ones")
    {
        CHECK(unit(t, "smmu0").family == "smmuv3");
        CHECK(unit(t, "amd0").family == "amd");
        CHECK(unit(t, "tce0").family == "ppc_tce");
        CHECK(unit(t, "viommu0").family == "virtio");
        Params amd = unit(t, "amd0").params;
        CHECK(amd.boolean("dirty_tracking") == true);
        CHECK(amd.boolean("guest_translation") == true);
        CHECK(device(t, "arm-nic0").unit == "smmu0");
        CHECK(device(t, "arm-nic0").pasid_bits == 20);
        CHECK(device(t, "arm-nvme0").unit == "smmu0");
        CHECK(device(t, "amd-gpu0").unit == "amd0");
        CHECK(device(t, "amd-gpu0").pasid_bits == 16);
        CHECK(device(t, "amd-nic0").unit == "amd0");
        CHECK(device(t, "ppc-nic0").unit == "tce0");
        CHECK(device(t, "virtio-net0").unit == "viommu0");
        CHECK(device(t, "virtio-blk0").unit == "viommu0");
        // Devices added later come last, so the earlier ones keep their nodes.
        CHECK(device(t, "dsa0").vfio == "vfio7");
        CHECK(device(t, "arm-nic0").vfio == "vfio8");
    }
    SECTION("vfio nodes are vfio<index>, groups are per device unless shared")
    {
        std::set<std::string> groups;
        for (std::size_t i = 0; i < t.devices.size(); ++i) {
            CHECK(t.devices[i].vfio == "vfio" + std::to_string(i));
            CHECK(t.devices[i].dirty_tracking);
            groups.insert(t.devices[i].group);
        }
        CHECK(groups.size() == t.devices.size() - 1); // only the GPU pair shares
    }
}
