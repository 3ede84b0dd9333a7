#include "explain.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "format.h"

namespace ioasid::ctl {
namespace {

using Json = nlohmann::ordered_json;

// The fields through which one object of the report refers to another.
constexpr std::array<std::string_view, 10> kReferenceFields{
    "ioas", "ioas_id", "hwpt", "hwpt_id", "pt", "pt_id", "parent", "device", "dev_id", "fault"};

std::optional<std::uint64_t> number(const Json& object, std::string_view key)
{
    auto it = object.find(key);
    if (it == object.end() || !it->is_number_integer())
        return std::nullopt;
    return it->get<std::uint64_t>();
}

std::string kind_label(std::string_view type)
{
    if (type == "ioas")
        return "IOAS";
    if (type == "hwpt" || type == "hwpt_paging" || type == "hwpt_nested")
        return "HWPT";
    return std::string(type);
}

std::string article(std::string_view word)
{
    return std::string_view("aeiouAEIOU").find(word.front()) == std::string_view::npos ? "a " : "an ";
}

class Report {
public:
    explicit Report(const Facts& facts) : context_(facts.context) {}

    [[nodiscard]] bool known() const { return context_ && context_->is_object(); }

    [[nodiscard]] const Json* object(std::uint32_t id) const
    {
        if (!known())
            return nullptr;
        auto objects = context_->find("objects");
        if (objects == context_->end() || !objects->is_array())
            return nullptr;
        for (const Json& object : *objects)
            if (number(object, "id") == id)
                return &object;
        return nullptr;
    }

    [[nodiscard]] std::vector<const Json*> objects() const
    {
        std::vector<const Json*> out;
        if (!known())
            return out;
        auto objects = context_->find("objects");
        if (objects != context_->end() && objects->is_array())
            for (const Json& object : *objects)
                out.push_back(&object);
        return out;
    }

    // Why `id` is not an object of type `want`, when the report knows; else
    // nullopt.
    [[nodiscard]] std::optional<std::string> not_a(std::uint32_t id, std::string_view want) const
    {
        if (!known())
            return std::nullopt;
        const Json* found = object(id);
        if (!found)
            return "no object " + std::to_string(id);
        std::string type = found->value("type", std::string("object"));
        if (type != want)
            return "object " + std::to_string(id) + " is " + article(type) + kind_label(type) +
                   ", not " + article(want) + kind_label(want);
        return std::nullopt;
    }

    // The areas of IOAS `ioas` as [first, last] with their labels.
    struct AreaInfo {
        std::uint64_t first;
        std::uint64_t last;
        std::string label;
    };
    [[nodiscard]] std::vector<AreaInfo> areas(std::uint32_t ioas) const
    {
        std::vector<AreaInfo> out;
        const Json* found = object(ioas);
        if (!found)
            return out;
        auto areas = found->find("areas");
        if (areas == found->end() || !areas->is_array())
            return out;
        for (const Json& area : *areas) {
            auto iova = number(area, "iova");
            auto length = number(area, "length");
            if (!iova || !length || *length == 0)
                continue;
            std::uint64_t last = *iova + (*length - 1);
            auto id = number(area, "id");
            out.push_back({*iova, last, id ? "area " + std::to_string(*id) : "area " + hex_range(*iova, last)});
        }
        return out;
    }

    // "access 2, hwpt 3": the objects that refer to `id`.
    [[nodiscard]] std::string users_of(std::uint32_t id) const
    {
        std::string out;
        for (const Json* object : objects()) {
            if (number(*object, "id") == id)
                continue;
            bool refers = std::any_of(kReferenceFields.begin(), kReferenceFields.end(),
                                      [&](std::string_view key) { return number(*object, key) == id; });
            if (!refers)
                continue;
            if (!out.empty())
                out += ", ";
            out += kind_label(object->value("type", std::string("object"))) + " " +
                   std::to_string(number(*object, "id").value_or(0));
        }
        return out;
    }

private:
    const Json* context_;
};

std::string join_labels(const std::vector<Report::AreaInfo>& areas)
{
    std::string out;
    for (const auto& area : areas) {
        if (!out.empty())
            out += ", ";
        out += area.label;
    }
    return out;
}

std::string ioas_missing(const Report& report, std::uint32_t ioas)
{
    return report.not_a(ioas, "ioas").value_or("no IOAS " + std::to_string(ioas));
}

// EEXIST of map and copy: the areas that are in the way.
std::string overlap(const Report& report, std::uint32_t ioas, std::uint64_t iova, std::uint64_t length)
{
    std::string span = iova_span(iova, length);
    std::uint64_t last = length ? iova + std::min(length - 1, UINT64_MAX - iova) : iova;
    std::vector<Report::AreaInfo> hits;
    for (auto& area : report.areas(ioas))
        if (area.first <= last && iova <= area.last)
            hits.push_back(area);
    if (hits.empty())
        return "IOVA " + span + " is already mapped in IOAS " + std::to_string(ioas);
    return "IOVA " + span + " overlaps " + join_labels(hits);
}

// EINVAL of map and copy: alignment, the allowed ranges, or flags.
std::string map_invalid(const Facts& facts, std::uint32_t ioas, std::optional<std::uint64_t> iova,
                        std::uint64_t length, bool readable, bool writeable)
{
    if (!readable && !writeable)
        return "a mapping must be readable or writeable";
    if (length == 0)
        return "length 0: nothing to map";
    if (facts.alignment && *facts.alignment > 1) {
        std::uint64_t align = *facts.alignment;
        if (iova && *iova % align)
            return "IOVA " + hex(*iova) + " is not aligned to " + hex(align) +
                   ", the IOVA alignment of IOAS " + std::to_string(ioas);
        if (length % align)
            return "length " + hex(length) + " is not a multiple of " + hex(align) +
                   ", the IOVA alignment of IOAS " + std::to_string(ioas);
    }
    if (iova && facts.usable) {
        std::uint64_t last = *iova + std::min(length - 1, UINT64_MAX - *iova);
        bool inside = std::any_of(facts.usable->begin(), facts.usable->end(), [&](const IovaRange& r) {
            return r.start <= *iova && last <= r.last;
        });
        // A fixed IOVA may lie outside the allowed ranges; only reserved
        // IOVA refuses it, as in the kernel.
        if (!inside)
            return "IOVA " + iova_span(*iova, length) + " is reserved in IOAS " + std::to_string(ioas) +
                   " (outside its usable ranges: see `ranges " + std::to_string(ioas) + "`)";
    }
    if (iova)
        return "IOVA " + iova_span(*iova, length) + " is reserved or not allowed in IOAS " +
               std::to_string(ioas);
    return "the memory's address and the IOVA alignment of IOAS " + std::to_string(ioas) +
           " do not fit (or the length is not a multiple of it)";
}

std::string generic(int err)
{
    switch (err) {
    case ENOTCONN:
        return "the daemon has gone away";
    case ENOTTY:
        return "the device does not know this ioctl";
    case EOPNOTSUPP:
        return "not supported by this daemon (unknown flag, option or operation)";
    case EOVERFLOW:
        return "a value is out of range (IOVA + length wraps, or too large)";
    case EFAULT:
        return "the daemon could not reach this process's memory";
    case ENOMEM:
        return "out of memory, or the pinned memory would exceed RLIMIT_MEMLOCK";
    default:
        return std::strerror(err);
    }
}

struct Explainer {
    int err;
    const Facts& facts;
    Report report;

    std::string operator()(const Destroy& c) const
    {
        std::string id = std::to_string(c.id);
        if (err == ENOENT)
            return "no object " + id;
        if (err == EBUSY) {
            const Json* object = report.object(c.id);
            std::string label = object ? kind_label(object->value("type", std::string("object"))) + " " + id
                                       : "object " + id;
            std::string users = report.users_of(c.id);
            if (!users.empty())
                return label + " is in use by " + users;
            if (object && object->value("type", std::string()) == "access")
                return label + " is held by the daemon-side user that created it";
            return label + " is in use";
        }
        return generic(err);
    }

    std::string operator()(const Map& c) const
    {
        std::uint64_t length = c.length.value_or(0);
        switch (err) {
        case ENOENT:
            return ioas_missing(report, c.ioas);
        case EEXIST:
            return overlap(report, c.ioas, c.iova.value_or(0), length);
        case EINVAL:
            return map_invalid(facts, c.ioas, c.iova, length, c.readable, c.writeable);
        case ENOSPC:
            return "no free IOVA range of " + hex(length) + " bytes in the usable ranges of IOAS " +
                   std::to_string(c.ioas);
        case EPERM:
            return "not permitted: the memory is read-only (map it --readable only) or the daemon may "
                   "not pin it";
        case EFAULT:
            return "the daemon could not read this process's memory (is it allowed to ptrace us?)";
        default:
            return generic(err);
        }
    }

    std::string operator()(const Copy& c) const
    {
        switch (err) {
        case ENOENT: {
            if (auto why = report.not_a(c.src_ioas, "ioas"))
                return *why;
            if (auto why = report.not_a(c.dst_ioas, "ioas"))
                return *why;
            std::uint64_t last = c.src_iova + std::min(c.length ? c.length - 1 : 0, UINT64_MAX - c.src_iova);
            std::vector<Report::AreaInfo> hits;
            for (auto& area : report.areas(c.src_ioas))
                if (area.first <= last && c.src_iova <= area.last)
                    hits.push_back(area);
            std::string span = iova_span(c.src_iova, c.length);
            if (hits.empty())
                return "nothing is mapped at IOVA " + span + " in IOAS " + std::to_string(c.src_ioas);
            return "IOVA " + span + " of IOAS " + std::to_string(c.src_ioas) +
                   " is not covered by mappings without gaps (it touches " + join_labels(hits) + ")";
        }
        case EEXIST:
            return overlap(report, c.dst_ioas, c.dst_iova.value_or(0), c.length);
        case EINVAL:
            return map_invalid(facts, c.dst_ioas, c.dst_iova, c.length, c.readable, c.writeable);
        case ENOSPC:
            return "no free IOVA range of " + hex(c.length) + " bytes in the usable ranges of IOAS " +
                   std::to_string(c.dst_ioas);
        case EPERM:
            return "the source mapping is read-only, so the copy cannot be writeable";
        default:
            return generic(err);
        }
    }

    std::string operator()(const Unmap& c) const
    {
        switch (err) {
        case ENOENT: {
            if (auto why = report.not_a(c.ioas, "ioas"))
                return *why;
            if (c.all)
                return "nothing is mapped in IOAS " + std::to_string(c.ioas);
            std::uint64_t last = c.iova + std::min(c.length ? c.length - 1 : 0, UINT64_MAX - c.iova);
            for (auto& area : report.areas(c.ioas))
                if (area.first <= last && c.iova <= area.last &&
                    (area.first < c.iova || area.last > last))
                    return "IOVA " + iova_span(c.iova, c.length) + " would split " + area.label +
                           "; unmap whole mappings";
            return "nothing is mapped at IOVA " + iova_span(c.iova, c.length) + " in IOAS " +
                   std::to_string(c.ioas);
        }
        case EINVAL:
            return c.length == 0 ? "length 0: nothing to unmap" : generic(err);
        case EDEADLK:
            return "an access keeps the area pinned and did not let go";
        default:
            return generic(err);
        }
    }

    std::string operator()(const Ranges& c) const
    {
        return err == ENOENT ? ioas_missing(report, c.ioas) : generic(err);
    }

    std::string operator()(const Allow& c) const
    {
        switch (err) {
        case ENOENT:
            return ioas_missing(report, c.ioas);
        case EINVAL: {
            for (const IovaRange& r : c.ranges)
                if (r.start >= r.last)
                    return "range " + hex_range(r.start, r.last) + " is a single byte (or empty)";
            std::vector<IovaRange> sorted = c.ranges;
            std::sort(sorted.begin(), sorted.end(),
                      [](const IovaRange& a, const IovaRange& b) { return a.start < b.start; });
            for (std::size_t i = 1; i < sorted.size(); ++i)
                if (sorted[i].start <= sorted[i - 1].last)
                    return "ranges " + hex_range(sorted[i - 1].start, sorted[i - 1].last) + " and " +
                           hex_range(sorted[i].start, sorted[i].last) + " overlap";
            return generic(err);
        }
        case EADDRINUSE:
            return "a range covers IOVA that is reserved in IOAS " + std::to_string(c.ioas);
        default:
            return generic(err);
        }
    }

    std::string operator()(const Option& c) const
    {
        if (c.name == OptionName::huge_pages) {
            if (err == ENOENT)
                return ioas_missing(report, c.ioas);
            if (err == EADDRINUSE)
                return "a mapping of IOAS " + std::to_string(c.ioas) +
                       " is not aligned to the IOVA alignment huge-pages off needs";
            return generic(err);
        }
        if (err == EPERM)
            return "setting rlimit-mode needs CAP_SYS_RESOURCE";
        if (err == EBUSY)
            return "rlimit-mode can only change while the context has no objects";
        if (err == EINVAL)
            return "rlimit-mode is 0 (user) or 1 (process)";
        return generic(err);
    }

    std::string operator()(const VfioIoas& c) const
    {
        if (c.op == VfioOp::get && err == ENODEV)
            return "no IOAS is set for VFIO compatibility (vfio-ioas set IOAS)";
        if (c.op == VfioOp::set && err == ENOENT)
            return ioas_missing(report, c.ioas);
        return generic(err);
    }

    std::string operator()(const Status&) const
    {
        if (err == ENOTTY)
            return "no status report here: this is not an ioasidd context (a kernel iommufd?)";
        return generic(err);
    }

    std::string operator()(const IoasAlloc&) const
    {
        return err == EBUSY ? "the context has run out of object ids" : generic(err);
    }

    template <typename Other>
    std::string operator()(const Other&) const
    {
        return generic(err);
    }
};

} // namespace

std::string explain(int err, const Command& command, const Facts& facts)
{
    return std::visit(Explainer{err, facts, Report(facts)}, command);
}

} // namespace ioasid::ctl
