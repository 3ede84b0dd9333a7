#include "config/topology.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <utility>

namespace ioasid::config {

// ---------------------------------------------------------------- Params

const Params::Entry* Params::find(std::string_view key) const
{
    for (const Entry& entry : entries_) {
        if (entry.key == key)
            return &entry;
    }
    return nullptr;
}

namespace {

const char* kind_of(const Params::Value& value)
{
    if (std::holds_alternative<std::int64_t>(value))
        return "an integer";
    if (std::holds_alternative<bool>(value))
        return "a boolean";
    return "a string";
}

} // namespace

template <typename T>
std::optional<T> Params::get(std::string_view key, const char* wanted) const
{
    const Entry* entry = find(key);
    if (!entry)
        return std::nullopt;
    // Consumed even when the type is wrong: the caller reports this key
    // itself, it must not come back as "unknown" too.
    entry->consumed = true;
    if (const T* value = std::get_if<T>(&entry->value))
        return *value;
    std::string message = "unit key \"" + entry->key + "\" must be " + wanted + ", not " +
                          kind_of(entry->value);
    throw ParamError(entry->where.empty() ? message : entry->where + ": " + message);
}

std::optional<std::int64_t> Params::integer(std::string_view key) const
{
    return get<std::int64_t>(key, "an integer");
}

std::optional<bool> Params::boolean(std::string_view key) const
{
    return get<bool>(key, "a boolean");
}

std::optional<std::string> Params::string(std::string_view key) const
{
    return get<std::string>(key, "a string");
}

std::vector<std::string> Params::unconsumed() const
{
    std::vector<std::string> keys;
    for (const Entry& entry : entries_) {
        if (!entry.consumed)
            keys.push_back(entry.key);
    }
    return keys;
}

std::vector<std::string> Params::keys() const
{
    std::vector<std::string> keys;
    keys.reserve(entries_.size());
    for (const Entry& entry : entries_)
        keys.push_back(entry.key);
    return keys;
}

std::string Params::where(std::string_view key) const
{
    const Entry* entry = find(key);
    return entry && !entry->where.empty() ? entry->where : table_where_;
}

void Params::set(std::string key, Value value, std::string where)
{
    for (Entry& entry : entries_) {
        if (entry.key == key) {
            entry.value = std::move(value);
            entry.where = std::move(where);
            entry.consumed = false;
            return;
        }
    }
    entries_.push_back({std::move(key), std::move(value), std::move(where)});
}

// ---------------------------------------------------------------- parsing

std::optional<std::uint32_t> parse_pci_rid(std::string_view text)
{
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9')
            return c - '0';
        if (c >= 'a' && c <= 'f')
            return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
            return c - 'A' + 10;
        return -1;
    };
    // Exactly the form lspci prints, so that a typo is not read as some
    // other device.
    if (text.size() != 7 || text[2] != ':' || text[5] != '.')
        return std::nullopt;
    const int digits[] = {hex(text[0]), hex(text[1]), hex(text[3]), hex(text[4]), hex(text[6])};
    if (std::any_of(std::begin(digits), std::end(digits), [](int d) { return d < 0; }))
        return std::nullopt;
    const unsigned bus = static_cast<unsigned>(digits[0] * 16 + digits[1]);
    const unsigned dev = static_cast<unsigned>(digits[2] * 16 + digits[3]);
    const unsigned fn = static_cast<unsigned>(digits[4]);
    if (dev > 0x1f || fn > 7)
        return std::nullopt;
    return (bus << 8) | (dev << 3) | fn;
}

namespace {

// Names travel NUL-terminated in IOASID_EMU_NAME_LEN (32) bytes.
constexpr std::size_t kMaxNameLength = 31;
constexpr std::int64_t kMaxRid = 0xffff;
constexpr std::int64_t kMaxPasidBits = 20;

// Thrown inside the parser with the finished error line; parse_topology
// turns it into its return value.
struct Failure {
    std::string message;
};

bool is_name(std::string_view text)
{
    return !text.empty() && text.size() <= kMaxNameLength &&
           std::all_of(text.begin(), text.end(), [](char c) {
               return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
           });
}

std::string quoted(std::string_view text)
{
    return "\"" + std::string(text) + "\"";
}

std::string rid_text(std::uint32_t rid)
{
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%02x:%02x.%x (0x%04x)", rid >> 8, (rid >> 3) & 0x1f,
                  rid & 7, rid);
    return buffer;
}

const char* type_name(const toml::node& node)
{
    switch (node.type()) {
    case toml::node_type::string:
        return "a string";
    case toml::node_type::integer:
        return "an integer";
    case toml::node_type::floating_point:
        return "a floating-point number";
    case toml::node_type::boolean:
        return "a boolean";
    case toml::node_type::date:
        return "a date";
    case toml::node_type::time:
        return "a time";
    case toml::node_type::date_time:
        return "a date-time";
    case toml::node_type::array:
        return "an array";
    case toml::node_type::table:
        return "a table";
    case toml::node_type::none:
        break;
    }
    return "nothing";
}

// The entries of a table in the order they appear in the file (toml++
// keeps them sorted by key), so the first error reported is the first one
// a reader meets.
std::vector<std::pair<const toml::key*, const toml::node*>> in_file_order(const toml::table& table)
{
    std::vector<std::pair<const toml::key*, const toml::node*>> entries;
    for (auto&& [key, node] : table)
        entries.emplace_back(&key, &node);
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
        const toml::source_position& pa = a.first->source().begin;
        const toml::source_position& pb = b.first->source().begin;
        return std::pair(pa.line, pa.column) < std::pair(pb.line, pb.column);
    });
    return entries;
}

// Where the keys of one [[device]] were, for messages about relations
// between devices found after the table has been read.
struct DeviceSource {
    toml::source_position table;
    std::optional<toml::source_position> name{}, unit{}, rid{}, group{}, pasid_only{}, vfio{};
};

class Parser {
public:
    explicit Parser(std::string_view source_name) : source_(source_name) {}

    Topology run(const toml::table& root)
    {
        const toml::array* units = nullptr;
        const toml::array* devices = nullptr;
        const toml::key* units_key = nullptr;
        for (const auto& [key, node] : in_file_order(root)) {
            if (key->str() != "unit" && key->str() != "device")
                fail(*key, "unknown top-level key " + quoted(key->str()) +
                               " (a topology has only [[unit]] and [[device]] tables)");
            // [[unit]] headers and `unit = [{...}]` both make an array of
            // tables; an empty array is no tables at all.
            const toml::array* array = node->as_array();
            if (!array || !(array->empty() || array->is_array_of_tables()))
                fail(*key, quoted(key->str()) + " must be an array of tables ([[" +
                               std::string(key->str()) + "]]), not " + type_name(*node) +
                               (array ? " of other values" : ""));
            if (key->str() == "unit") {
                units = array;
                units_key = key;
            } else {
                devices = array;
            }
        }
        if (!units || units->empty())
            fail(units_key ? units_key->source().begin : toml::source_position{1, 1},
                 "no [[unit]]: a topology needs at least one IOMMU unit");
        for (const toml::node& node : *units)
            read_unit(*node.as_table());
        if (devices) {
            for (const toml::node& node : *devices)
                read_device(*node.as_table());
        }
        return std::move(topology_);
    }

private:
    std::string at(const toml::source_position& position) const
    {
        return source_ + ":" + std::to_string(position.line) + ":" +
               std::to_string(position.column);
    }

    [[noreturn]] void fail(const toml::source_position& position, const std::string& message) const
    {
        throw Failure{at(position) + ": " + message};
    }
    [[noreturn]] void fail(const toml::key& key, const std::string& message) const
    {
        fail(key.source().begin, message);
    }

    template <typename T>
    T value_of(const toml::key& key, const toml::node& node, const char* owner,
               const char* wanted) const
    {
        if (const auto* value = node.as<T>())
            return value->get();
        fail(key, std::string(owner) + " key " + quoted(key.str()) + " must be " + wanted +
                      ", not " + type_name(node));
    }

    std::string name_of(const toml::key& key, const toml::node& node, const char* owner) const
    {
        std::string text = value_of<std::string>(key, node, owner, "a string");
        if (!is_name(text))
            fail(key, std::string(owner) + " " + std::string(key.str()) + " " + quoted(text) +
                          " must be 1 to 31 characters of a-z, 0-9, '_' and '-'");
        return text;
    }

    void read_unit(const toml::table& table)
    {
        UnitSpec unit;
        const toml::key* name_key = nullptr;
        unit.params.set_where(at(table.source().begin));
        for (const auto& [key, node] : in_file_order(table)) {
            if (key->str() == "name") {
                unit.name = name_of(*key, *node, "unit");
                name_key = key;
            } else if (key->str() == "family") {
                unit.family = value_of<std::string>(*key, *node, "unit", "a string");
                if (std::find(std::begin(kFamilies), std::end(kFamilies), unit.family) ==
                    std::end(kFamilies))
                    fail(*key, "unknown unit family " + quoted(unit.family) +
                                   " (known: mock, vtd, smmuv3, amd, ppc_tce, virtio)");
            } else if (const auto* integer = node->as_integer()) {
                unit.params.set(std::string(key->str()), integer->get(), at(key->source().begin));
            } else if (const auto* boolean = node->as_boolean()) {
                unit.params.set(std::string(key->str()), boolean->get(), at(key->source().begin));
            } else if (const auto* string = node->as_string()) {
                unit.params.set(std::string(key->str()), string->get(), at(key->source().begin));
            } else {
                fail(*key, "unit key " + quoted(key->str()) +
                               " must be an integer, a boolean or a string, not " +
                               type_name(*node));
            }
        }
        if (!name_key)
            fail(table.source().begin, "[[unit]] without \"name\"");
        if (unit.family.empty())
            fail(table.source().begin, "unit " + quoted(unit.name) + " has no \"family\"");
        if (auto [it, added] = unit_lines_.emplace(unit.name, name_key->source().begin.line);
            !added)
            fail(*name_key, "duplicate unit name " + quoted(unit.name) + " (first at line " +
                                std::to_string(it->second) + ")");
        topology_.units.push_back(std::move(unit));
    }

    void read_device(const toml::table& table)
    {
        DeviceSpec device;
        DeviceSource where{table.source().begin};
        const std::size_t index = topology_.devices.size();
        for (const auto& [key, node] : in_file_order(table)) {
            const std::string_view name = key->str();
            const toml::source_position position = key->source().begin;
            if (name == "name") {
                device.name = name_of(*key, *node, "device");
                where.name = position;
            } else if (name == "unit") {
                device.unit = value_of<std::string>(*key, *node, "device", "a string");
                where.unit = position;
            } else if (name == "rid") {
                device.rid = read_rid(*key, *node);
                where.rid = position;
            } else if (name == "group") {
                device.group = name_of(*key, *node, "device");
                where.group = position;
            } else if (name == "pasid_bits") {
                const std::int64_t bits =
                    value_of<std::int64_t>(*key, *node, "device", "an integer");
                if (bits < 0 || bits > kMaxPasidBits)
                    fail(*key, "\"pasid_bits\" must be 0..20, not " + std::to_string(bits));
                device.pasid_bits = static_cast<unsigned>(bits);
            } else if (name == "pasid_only") {
                device.pasid_only = value_of<bool>(*key, *node, "device", "a boolean");
                where.pasid_only = position;
            } else if (name == "dirty_tracking") {
                device.dirty_tracking = value_of<bool>(*key, *node, "device", "a boolean");
            } else if (name == "vfio") {
                device.vfio = name_of(*key, *node, "device");
                where.vfio = position;
            } else {
                fail(*key, "unknown device key " + quoted(name) +
                               " (known: name, unit, rid, group, pasid_bits, pasid_only, "
                               "dirty_tracking, vfio)");
            }
        }
        if (!where.name)
            fail(where.table, "[[device]] without \"name\"");
        if (!where.unit)
            fail(where.table, "device " + quoted(device.name) + " has no \"unit\"");
        if (!where.rid)
            fail(where.table, "device " + quoted(device.name) + " has no \"rid\"");

        const std::string self = "device " + quoted(device.name) + ": ";
        if (auto [it, added] = device_lines_.emplace(device.name, where.name->line); !added)
            fail(*where.name, "duplicate device name " + quoted(device.name) + " (first at line " +
                                  std::to_string(it->second) + ")");
        if (!unit_lines_.count(device.unit))
            fail(*where.unit, self + "no unit named " + quoted(device.unit));
        if (device.pasid_only && device.pasid_bits == 0)
            fail(*where.pasid_only, self + "\"pasid_only\" needs \"pasid_bits\" above 0");
        if (auto [it, added] = rids_.emplace(std::pair(device.unit, device.rid), index); !added)
            fail(*where.rid, self + "rid " + rid_text(device.rid) + " on unit " +
                                 quoted(device.unit) + " is already taken by device " +
                                 quoted(topology_.devices[it->second].name) + " (line " +
                                 std::to_string(device_sources_[it->second].table.line) + ")");

        // A defaulted name has no key to point at; the table header stands
        // for it.
        if (device.vfio.empty())
            device.vfio = "vfio" + std::to_string(index);
        if (auto [it, added] = vfio_.emplace(device.vfio, index); !added)
            fail(where.vfio.value_or(where.table),
                 self + "vfio node " + quoted(device.vfio) + " is already device " +
                     quoted(topology_.devices[it->second].name) + "'s (line " +
                     std::to_string(device_sources_[it->second].table.line) + ")" +
                     (where.vfio ? "" : "; set \"vfio\" explicitly"));

        if (device.group.empty())
            device.group = device.name;
        if (auto [it, added] = groups_.emplace(device.group, index); !added) {
            const DeviceSpec& first = topology_.devices[it->second];
            if (first.unit != device.unit)
                fail(where.group.value_or(*where.unit),
                     self + "group " + quoted(device.group) + " is on unit " + quoted(first.unit) +
                         " (device " + quoted(first.name) + ", line " +
                         std::to_string(device_sources_[it->second].table.line) +
                         "), this device on unit " + quoted(device.unit) +
                         ": a group belongs to one unit");
        }
        topology_.devices.push_back(std::move(device));
        device_sources_.push_back(where);
    }

    std::uint32_t read_rid(const toml::key& key, const toml::node& node) const
    {
        if (const auto* integer = node.as_integer()) {
            if (integer->get() < 0 || integer->get() > kMaxRid)
                fail(key, "\"rid\" must be 0..0xffff, not " + std::to_string(integer->get()));
            return static_cast<std::uint32_t>(integer->get());
        }
        if (const auto* string = node.as_string()) {
            if (std::optional<std::uint32_t> rid = parse_pci_rid(string->get()))
                return *rid;
            fail(key, "\"rid\" " + quoted(string->get()) +
                          " is not \"BB:DD.F\" (hex bus 00-ff, device 00-1f, function 0-7)");
        }
        fail(key, "device key \"rid\" must be an integer or a \"BB:DD.F\" string, not " +
                      std::string(type_name(node)));
    }

    std::string source_;
    Topology topology_;
    std::vector<DeviceSource> device_sources_;
    std::map<std::string, std::uint32_t, std::less<>> unit_lines_;   // name -> line
    std::map<std::string, std::uint32_t, std::less<>> device_lines_; // name -> line
    std::map<std::pair<std::string, std::uint32_t>, std::size_t> rids_; // (unit, rid) -> device
    std::map<std::string, std::size_t, std::less<>> vfio_;   // node -> device
    std::map<std::string, std::size_t, std::less<>> groups_; // group -> first device
};

} // namespace

std::optional<Topology> parse_topology(std::string_view text, std::string_view source_name,
                                       std::string* error)
{
    try {
        const toml::table root = toml::parse(text, source_name);
        return Parser(source_name).run(root);
    } catch (const toml::parse_error& parse_error) {
        if (error) {
            const toml::source_position& begin = parse_error.source().begin;
            *error = std::string(source_name) + ":" + std::to_string(begin.line) + ":" +
                     std::to_string(begin.column) + ": " + std::string(parse_error.description());
        }
    } catch (const Failure& failure) {
        if (error)
            *error = failure.message;
    }
    return std::nullopt;
}

std::optional<Topology> load_topology_file(const std::string& path, std::string* error)
{
    auto cannot_read = [&](int errnum) {
        if (error)
            *error = path + ": cannot read: " + std::strerror(errnum);
        return std::nullopt;
    };
    const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                                &std::fclose);
    if (!file)
        return cannot_read(errno);
    std::string text;
    char buffer[1 << 16];
    for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0;)
        text.append(buffer, n);
    // A directory opens but does not read (EISDIR).
    if (std::ferror(file.get()))
        return cannot_read(errno);
    return parse_topology(text, path, error);
}

const Topology& default_topology()
{
    static const Topology topology = [] {
        std::string error;
        std::optional<Topology> parsed =
            parse_topology(default_topology_text(), "default_topology.toml", &error);
        // The unit tests parse the default; reaching this is a build defect.
        if (!parsed)
            throw std::logic_error("embedded default topology: " + error);
        return std::move(*parsed);
    }();
    return topology;
}

} // namespace ioasid::config
