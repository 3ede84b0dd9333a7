// The topology: which emulated IOMMU units and devices the daemon offers,
// read from a TOML file (`ioasidd --topology FILE`) or the embedded default.
//
// This is only the validated description. Units and devices are built from
// it by the hardware models; each family reads its own keys from Params and
// reports the keys it did not understand.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ioasid::config {

// A family-specific key of a unit table read as the wrong type. The message
// is a complete "FILE:LINE:COL: ..." line.
struct ParamError : std::runtime_error {
    using runtime_error::runtime_error;
};

// The keys of one [[unit]] table other than name and family, in file order,
// as typed values with their source positions. The family code asks for the
// keys it understands; what nobody asked for is left in unconsumed(), so an
// unknown (misspelt) key is reported instead of silently ignored.
//
// Asking marks a key consumed even though the getters are const: reading the
// parameters is what a consumer does with a const UnitSpec. The marks belong
// to this copy and are not synchronised, so code that may run twice or on
// several threads (default_topology() is shared) works on its own copy.
struct Params {
    using Value = std::variant<std::int64_t, bool, std::string>;

    // The value of `key`, or nothing when the unit does not set it. Marks the
    // key consumed. A key present with another type throws ParamError.
    [[nodiscard]] std::optional<std::int64_t> integer(std::string_view key) const;
    [[nodiscard]] std::optional<bool> boolean(std::string_view key) const;
    [[nodiscard]] std::optional<std::string> string(std::string_view key) const;

    // Keys no getter has asked for, in file order.
    [[nodiscard]] std::vector<std::string> unconsumed() const;

    // "FILE:LINE:COL" of `key`; for a key the unit does not set, the
    // position of the unit table itself (where a missing key belongs).
    [[nodiscard]] std::string where(std::string_view key) const;
    // "FILE:LINE:COL" of the unit table.
    [[nodiscard]] const std::string& where() const { return table_where_; }

    [[nodiscard]] bool contains(std::string_view key) const { return find(key) != nullptr; }
    [[nodiscard]] bool empty() const { return entries_.empty(); }
    [[nodiscard]] std::size_t size() const { return entries_.size(); }
    // Every key, in file order, consumed or not.
    [[nodiscard]] std::vector<std::string> keys() const;

    // Building (the parser, and tests of family code). Adding a key that is
    // already present replaces its value.
    void set(std::string key, Value value, std::string where = {});
    void set_where(std::string where) { table_where_ = std::move(where); }

private:
    struct Entry {
        std::string key;
        Value value;
        std::string where;
        mutable bool consumed = false;
    };

    [[nodiscard]] const Entry* find(std::string_view key) const;
    template <typename T>
    [[nodiscard]] std::optional<T> get(std::string_view key, const char* wanted) const;

    std::vector<Entry> entries_;
    std::string table_where_;
};

// The unit families the parser accepts. Whether a family is built yet is
// for the hardware models to say.
inline constexpr std::string_view kFamilies[] = {"mock", "vtd", "smmuv3", "amd", "ppc_tce",
                                                 "virtio"};

struct UnitSpec {
    std::string name;   // unique among units, [a-z0-9_-]{1,31}
    std::string family; // one of kFamilies
    Params params;      // every other key of the [[unit]] table
};

struct DeviceSpec {
    std::string name; // unique among devices, [a-z0-9_-]{1,31}
    std::string unit; // names a unit
    // Requester / stream id, unique per unit. In the file: an integer
    // 0..0xffff or "BB:DD.F" (hex bus and device) = (bus << 8) | (dev << 3) | fn.
    std::uint32_t rid = 0;
    // IOMMU group; devices with the same group name share a group and must
    // be on the same unit. Defaults to the device name.
    std::string group;
    unsigned pasid_bits = 0;    // 0..20: up to 1 << pasid_bits PASIDs; 0 = no PASID
    bool pasid_only = false;    // refuses a RID attach; needs pasid_bits > 0
    bool dirty_tracking = true; // when its unit tracks dirty pages
    // Its VFIO cdev node under /dev/vfio/devices/; unique. Defaults to
    // "vfio<N>", N = the index of the device in file order from 0.
    std::string vfio;
};

struct Topology {
    std::vector<UnitSpec> units;
    std::vector<DeviceSpec> devices;
};

// Reads and validates a topology. On error returns nothing and sets *error
// (if not null) to one line "FILE:LINE:COL: message" (or "FILE: message"
// when the file cannot be read).
[[nodiscard]] std::optional<Topology> load_topology_file(const std::string& path,
                                                         std::string* error);
// The same for text already in memory; `source_name` stands for FILE.
[[nodiscard]] std::optional<Topology> parse_topology(std::string_view text,
                                                     std::string_view source_name,
                                                     std::string* error);

// The embedded default (daemon/config/default_topology.toml), parsed once.
// Shared: copy it before consuming Params.
[[nodiscard]] const Topology& default_topology();
[[nodiscard]] std::string_view default_topology_text();

// "BB:DD.F" (hex bus 00..ff, hex device 00..1f, function 0..7) as a
// requester id, or nothing when the text is not of that form.
[[nodiscard]] std::optional<std::uint32_t> parse_pci_rid(std::string_view text);

} // namespace ioasid::config
