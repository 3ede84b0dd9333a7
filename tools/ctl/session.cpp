#include "session.h"

#include <ioasid/libioasid.h>
#include <ioasid/socket.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "explain.h"
#include "format.h"
#include "help.h"
#include "status_view.h"

namespace ioasid::ctl {
namespace {

using Json = nlohmann::ordered_json;

struct FreeDeleter {
    void operator()(void* p) const { std::free(p); }
};

// enum iommufd_ioas_map_flags, shared by map and copy.
std::uint32_t map_flags(bool readable, bool writeable, bool fixed_iova)
{
    std::uint32_t flags = 0;
    if (readable)
        flags |= IOMMU_IOAS_MAP_READABLE;
    if (writeable)
        flags |= IOMMU_IOAS_MAP_WRITEABLE;
    if (fixed_iova)
        flags |= IOMMU_IOAS_MAP_FIXED_IOVA;
    return flags;
}

std::string ioas_prefix(std::uint32_t ioas)
{
    return "ioas " + std::to_string(ioas) + ": ";
}

Json ranges_json(std::span<const iommu_iova_range> ranges)
{
    Json out = Json::array();
    for (const iommu_iova_range& r : ranges)
        out.push_back({{"start", r.start}, {"last", r.last}});
    return out;
}

std::string variable_text(const Json& value)
{
    if (value.is_string())
        return value.get<std::string>();
    if (value.is_number_unsigned())
        return std::to_string(value.get<std::uint64_t>());
    return value.dump();
}

// The report as JSON, or a CommandFailed that says why not.
Json fetch_status(int fd, std::uint32_t flags, int* err)
{
    char* raw = nullptr;
    *err = -ioasid_status(fd, flags, &raw);
    if (*err)
        return nullptr;
    std::unique_ptr<char, FreeDeleter> text(raw);
    Json report = Json::parse(text.get(), nullptr, false);
    if (report.is_discarded() || !report.is_object()) {
        *err = EPROTO;
        return nullptr;
    }
    return report;
}

std::string socket_in_use(const std::optional<std::string>& device)
{
    if (device)
        return *device;
    const char* env = std::getenv("IOASID_SOCKET");
    return env && *env ? env : IOASID_SOCKET_DEFAULT_PATH;
}

} // namespace

Session::~Session()
{
    // Closing the context first lets the daemon drop its pins before the
    // memory behind them goes (members are destroyed after this body).
    if (fd_ >= 0)
        ioasid_close(fd_);
}

int Session::fd()
{
    if (fd_ >= 0)
        return fd_;
    int rc = ioasid_open(device_ ? device_->c_str() : nullptr);
    if (rc < 0) {
        int err = -rc;
        std::string where = socket_in_use(device_);
        std::string cause;
        if (err == ENOENT || err == ECONNREFUSED)
            cause = device_ ? "cannot open " + where + " (" + std::strerror(err) + ")"
                            : "no ioasid device (/dev/ioasid, /dev/iommu) and no daemon at " + where +
                                  " (start ioasidd, or set IOASID_SOCKET or --device)";
        else
            cause = "cannot open a context on " + (device_ ? *device_ : where) + ": " + std::strerror(err);
        throw CommandFailed(err, cause);
    }
    fd_ = rc;
    return fd_;
}

void Session::fail(int err, const Command& command)
{
    // Ask the daemon what the context looks like now, to say why.
    Facts facts;
    int status_err = 0;
    Json report = fd_ >= 0 ? fetch_status(fd_, 0, &status_err) : Json(nullptr);
    const Json* context = nullptr;
    if (report.is_object()) {
        auto contexts = report.find("contexts");
        if (contexts != report.end() && contexts->is_array() && !contexts->empty())
            context = &(*contexts)[0];
        auto hardware = report.find("hardware");
        if (hardware != report.end() && hardware->is_object())
            facts.hardware = &*hardware;
    }
    facts.context = context;

    std::optional<std::uint32_t> ioas;
    if (const auto* map = std::get_if<Map>(&command); map && err == EINVAL)
        ioas = map->ioas;
    if (const auto* copy = std::get_if<Copy>(&command); copy && err == EINVAL)
        ioas = copy->dst_ioas;
    if (ioas) {
        struct iommu_iova_range* raw = nullptr;
        std::uint32_t count = 0;
        std::uint64_t alignment = 0;
        if (ioasid_ioas_iova_ranges_alloc(fd_, *ioas, &raw, &count, &alignment) == 0) {
            std::unique_ptr<iommu_iova_range, FreeDeleter> owned(raw);
            facts.alignment = alignment;
            facts.usable.emplace();
            for (std::uint32_t i = 0; i < count; ++i)
                facts.usable->push_back({raw[i].start, raw[i].last});
        }
    }
    throw CommandFailed(err, explain(err, command, facts));
}

Outcome Session::run(const Command& command)
{
    // One member function per command kind.
    struct Dispatch {
        Session& s;
        Outcome operator()(const IoasAlloc&) const { return s.ioas_alloc(); }
        Outcome operator()(const Destroy& c) const { return s.destroy(c); }
        Outcome operator()(const Map& c) const { return s.map(c); }
        Outcome operator()(const Unmap& c) const { return s.unmap(c); }
        Outcome operator()(const Copy& c) const { return s.copy(c); }
        Outcome operator()(const Ranges& c) const { return s.ranges(c); }
        Outcome operator()(const Allow& c) const { return s.allow(c); }
        Outcome operator()(const Option& c) const { return s.option(c); }
        Outcome operator()(const VfioIoas& c) const { return s.vfio_ioas(c); }
        Outcome operator()(const Status& c) const { return s.status(c); }
        Outcome operator()(const Topology&) const { return s.topology(); }
        Outcome operator()(const Bind& c) const { return s.bind(c); }
        Outcome operator()(const Unbind& c) const { return s.unbind(c); }
        Outcome operator()(const Attach& c) const { return s.attach(c); }
        Outcome operator()(const Detach& c) const { return s.detach(c); }
        Outcome operator()(const HwptAlloc& c) const { return s.hwpt_alloc(c); }
        Outcome operator()(const HwInfo& c) const { return s.hw_info(c); }
        Outcome operator()(const Dirty& c) const { return s.dirty(c); }
        Outcome operator()(const PtDump& c) const { return s.pt_dump(c); }
        Outcome operator()(const Dma& c) const { return s.dma(c); }
        Outcome operator()(const Echo& c) const
        {
            Outcome out;
            out.fields["text"] = c.text;
            out.text = c.text;
            return out;
        }
        Outcome operator()(const Help& c) const
        {
            Outcome out;
            std::string text(help_text(c.topic));
            if (!text.empty() && text.back() == '\n')
                text.pop_back();
            out.fields["topic"] = c.topic;
            out.fields["text"] = text;
            out.text = std::move(text);
            return out;
        }
    };
    return std::visit(Dispatch{*this}, command);
}

Outcome Session::ioas_alloc()
{
    std::uint32_t id = 0;
    if (int rc = ioasid_ioas_alloc(fd(), &id))
        fail(-rc, IoasAlloc{});
    Outcome out;
    out.fields["id"] = id;
    out.text = "ioas " + std::to_string(id);
    out.value = "id";
    return out;
}

Outcome Session::destroy(const Destroy& c)
{
    if (int rc = ioasid_destroy(fd(), c.id))
        fail(-rc, c);
    Outcome out;
    out.fields["id"] = c.id;
    out.text = "destroyed " + std::to_string(c.id);
    return out;
}

Outcome Session::map(Map c)
{
    const int f = fd();
    MappedSource source;
    try {
        if (const auto* file = std::get_if<FileSource>(&c.source))
            source = map_file(file->path, c.offset, c.length, c.writeable);
        else
            source = map_memfd(std::get<MemfdSource>(c.source).size, c.offset, c.length);
    } catch (const MemoryError& e) {
        throw CommandFailed(e.err, e.message);
    }
    c.length = source.length;

    const std::uint32_t flags = map_flags(c.readable, c.writeable, c.iova.has_value());
    std::uint64_t iova = c.iova.value_or(0);
    if (int rc = ioasid_ioas_map(f, c.ioas, flags, source.address, source.length, &iova))
        fail(-rc, c);
    memory_.push_back(std::move(source));

    Outcome out;
    out.fields["ioas"] = c.ioas;
    out.fields["iova"] = iova;
    out.fields["length"] = *c.length;
    out.fields["readable"] = c.readable;
    out.fields["writeable"] = c.writeable;
    out.text = ioas_prefix(c.ioas) + "mapped " + human_size(*c.length) + " at IOVA " +
               iova_span(iova, *c.length);
    out.value = "iova";
    return out;
}

Outcome Session::unmap(const Unmap& c)
{
    std::uint64_t unmapped = 0;
    if (int rc = ioasid_ioas_unmap(fd(), c.ioas, c.iova, c.length, &unmapped))
        fail(-rc, c);
    Outcome out;
    out.fields["ioas"] = c.ioas;
    out.fields["unmapped"] = unmapped;
    out.text = ioas_prefix(c.ioas) + "unmapped " + human_size(unmapped);
    out.value = "unmapped";
    return out;
}

Outcome Session::copy(const Copy& c)
{
    const std::uint32_t flags = map_flags(c.readable, c.writeable, c.dst_iova.has_value());
    std::uint64_t iova = c.dst_iova.value_or(0);
    if (int rc = ioasid_ioas_copy(fd(), c.dst_ioas, c.src_ioas, flags, c.src_iova, c.length, &iova))
        fail(-rc, c);
    Outcome out;
    out.fields["ioas"] = c.dst_ioas;
    out.fields["iova"] = iova;
    out.fields["length"] = c.length;
    out.fields["src_ioas"] = c.src_ioas;
    out.fields["src_iova"] = c.src_iova;
    out.text = ioas_prefix(c.dst_ioas) + "copied " + human_size(c.length) + " from ioas " +
               std::to_string(c.src_ioas) + " IOVA " + hex(c.src_iova) + " to IOVA " +
               iova_span(iova, c.length);
    out.value = "iova";
    return out;
}

Outcome Session::ranges(const Ranges& c)
{
    struct iommu_iova_range* raw = nullptr;
    std::uint32_t count = 0;
    std::uint64_t alignment = 0;
    if (int rc = ioasid_ioas_iova_ranges_alloc(fd(), c.ioas, &raw, &count, &alignment))
        fail(-rc, c);
    std::unique_ptr<iommu_iova_range, FreeDeleter> owned(raw);
    std::span<const iommu_iova_range> ranges(raw, count);

    Outcome out;
    out.fields["ioas"] = c.ioas;
    out.fields["count"] = count;
    out.fields["alignment"] = alignment;
    out.fields["ranges"] = ranges_json(ranges);
    out.text = ioas_prefix(c.ioas) + std::to_string(count) + (count == 1 ? " range" : " ranges") +
               ", IOVA alignment " + hex(alignment);
    for (const iommu_iova_range& r : ranges)
        out.text += "\n  " + hex_range(r.start, r.last);
    out.value = "count";
    return out;
}

Outcome Session::allow(const Allow& c)
{
    std::vector<iommu_iova_range> ranges;
    for (const IovaRange& r : c.ranges)
        ranges.push_back({.start = r.start, .last = r.last});
    if (int rc = ioasid_ioas_allow_iovas(fd(), c.ioas, ranges.data(),
                                         static_cast<std::uint32_t>(ranges.size())))
        fail(-rc, c);
    Outcome out;
    out.fields["ioas"] = c.ioas;
    out.fields["ranges"] = ranges_json(ranges);
    if (ranges.empty()) {
        out.text = ioas_prefix(c.ioas) + "any IOVA allowed";
    } else {
        out.text = ioas_prefix(c.ioas) + "allowed";
        for (const iommu_iova_range& r : ranges)
            out.text += " " + hex_range(r.start, r.last);
    }
    return out;
}

Outcome Session::option(const Option& c)
{
    const bool huge = c.name == OptionName::huge_pages;
    const std::uint32_t id = huge ? IOMMU_OPTION_HUGE_PAGES : IOMMU_OPTION_RLIMIT_MODE;
    const std::uint32_t object = huge ? c.ioas : 0;
    std::uint64_t value = 0;
    if (c.value) {
        value = *c.value;
        if (int rc = ioasid_option_set(fd(), id, object, value))
            fail(-rc, c);
    } else if (int rc = ioasid_option_get(fd(), id, object, &value)) {
        fail(-rc, c);
    }
    Outcome out;
    out.fields["option"] = huge ? "huge-pages" : "rlimit-mode";
    if (huge)
        out.fields["ioas"] = c.ioas;
    out.fields["value"] = value;
    std::string shown = huge ? (value ? "on" : "off") : (value ? "process" : "user");
    out.fields["setting"] = shown;
    out.text = (huge ? ioas_prefix(c.ioas) + "huge-pages " : std::string("rlimit-mode ")) + shown;
    if (!c.value)
        out.value = "value";
    return out;
}

Outcome Session::vfio_ioas(const VfioIoas& c)
{
    Outcome out;
    switch (c.op) {
    case VfioOp::get: {
        std::uint32_t id = 0;
        if (int rc = ioasid_vfio_ioas_get(fd(), &id))
            fail(-rc, c);
        out.fields["op"] = "get";
        out.fields["id"] = id;
        out.text = "vfio-ioas " + std::to_string(id);
        out.value = "id";
        break;
    }
    case VfioOp::set:
        if (int rc = ioasid_vfio_ioas_set(fd(), c.ioas))
            fail(-rc, c);
        out.fields["op"] = "set";
        out.fields["id"] = c.ioas;
        out.text = "vfio-ioas set to " + std::to_string(c.ioas);
        break;
    case VfioOp::clear:
        if (int rc = ioasid_vfio_ioas_clear(fd()))
            fail(-rc, c);
        out.fields["op"] = "clear";
        out.text = "vfio-ioas cleared";
        break;
    }
    return out;
}

Json Session::report(const Command& command)
{
    int err = 0;
    const auto* status = std::get_if<Status>(&command);
    Json report = fetch_status(fd(), status && status->all ? IOASID_STATUS_ALL : 0, &err);
    if (err == EPROTO)
        throw CommandFailed(err, "the daemon's status report is not a JSON object");
    if (err)
        fail(err, command);
    return report;
}

Outcome Session::status(const Status& c)
{
    Json report = this->report(c);
    Outcome out;
    out.text = render_status(report);
    out.fields["report"] = std::move(report);
    return out;
}

void Session::assign(const std::string& name, const Outcome& outcome)
{
    variables_[name] = Variable{outcome.fields, outcome.value};
}

std::optional<std::string> Session::lookup(std::string_view name, std::string_view field) const
{
    auto it = variables_.find(name);
    if (it == variables_.end())
        return std::nullopt;
    const Variable& var = it->second;
    const std::string key = field.empty() ? var.value.value_or("") : std::string(field);
    auto value = var.fields.find(key);
    if (key.empty() || value == var.fields.end() || value->is_structured())
        return std::nullopt;
    return variable_text(*value);
}

} // namespace ioasid::ctl
