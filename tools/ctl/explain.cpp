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
    explicit Report(const Facts& facts) : context_(facts.context), hardware_(facts.hardware) {}

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

    // The device bound as `dev` in this context: its entry in the
    // hardware section, or nullptr.
    [[nodiscard]] const Json* bound_device(std::uint32_t dev) const
    {
        const Json* object = this->object(dev);
        if (!object || object->value("type", std::string()) != "device")
            return nullptr;
        return device(object->value("name", std::string()));
    }

    // A device of the topology by name, or nullptr.
    [[nodiscard]] const Json* device(std::string_view name) const
    {
        for (const Json* d : devices())
            if (d->value("name", std::string()) == name)
                return d;
        return nullptr;
    }

    [[nodiscard]] std::vector<const Json*> devices() const
    {
        std::vector<const Json*> out;
        if (!hardware_ || !hardware_->is_object())
            return out;
        auto list = hardware_->find("devices");
        if (list != hardware_->end() && list->is_array())
            for (const Json& d : *list)
                out.push_back(&d);
        return out;
    }

    [[nodiscard]] std::optional<std::uint64_t> own_id() const
    {
        return known() ? number(*context_, "id") : std::nullopt;
    }

    // "bound to context 3", "bound here (dev 2)".
    [[nodiscard]] std::string owner_text(const Json& device) const
    {
        auto owner = number(device, "context");
        if (!owner)
            return "free";
        if (owner == own_id()) {
            for (const Json* object : objects())
                if (object->value("type", std::string()) == "device" &&
                    object->value("name", std::string()) == device.value("name", std::string()))
                    return "bound to this context (dev " + std::to_string(number(*object, "id").value_or(0)) + ")";
            return "bound to this context";
        }
        return "bound to context " + std::to_string(*owner);
    }

private:
    const Json* context_;
    const Json* hardware_;
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

    // ---- Emulated hardware ----

    // ENOENT for a DEV argument.
    std::string no_device(std::uint32_t dev) const
    {
        return report.not_a(dev, "device").value_or("no device " + std::to_string(dev));
    }

    std::string device_label(std::uint32_t dev) const
    {
        const Json* object = report.object(dev);
        std::string name = object ? object->value("name", std::string()) : std::string();
        return name.empty() ? "device " + std::to_string(dev) : name + " (dev " + std::to_string(dev) + ")";
    }

    std::string operator()(const Bind& c) const
    {
        if (err == ENODEV) {
            std::string names;
            for (const Json* d : report.devices())
                names += (names.empty() ? "" : ", ") + d->value("name", std::string("?"));
            return "no device '" + c.name + "' in the topology" + (names.empty() ? "" : " (it has: " + names + ")");
        }
        if (err == EBUSY) {
            const Json* device = report.device(c.name);
            if (!device)
                return c.name + " or its IOMMU group is in use";
            if (number(*device, "context"))
                return c.name + " is already " + report.owner_text(*device);
            const std::string group = device->value("group", std::string());
            for (const Json* peer : report.devices())
                if (peer != device && peer->value("group", std::string()) == group && number(*peer, "context"))
                    return c.name + " shares IOMMU group '" + group + "' with " +
                           peer->value("name", std::string("?")) + ", " + report.owner_text(*peer) +
                           ": a group belongs to one context at a time";
            return c.name + " or its IOMMU group is in use";
        }
        if (err == EINVAL)
            return "the daemon refused the name '" + c.name + "'";
        return generic(err);
    }

    std::string operator()(const Unbind& c) const { return err == ENOENT ? no_device(c.dev) : generic(err); }
    std::string operator()(const Detach& c) const { return err == ENOENT ? no_device(c.dev) : generic(err); }
    std::string operator()(const HwInfo& c) const { return err == ENOENT ? no_device(c.dev) : generic(err); }

    std::string operator()(const Attach& c) const
    {
        const Json* device = report.bound_device(c.dev);
        const std::string name = device ? device->value("name", std::string()) : device_label(c.dev);
        const Json* pt = report.object(c.pt);
        const std::string pt_type = pt ? pt->value("type", std::string()) : std::string();
        switch (err) {
        case ENOENT:
            if (auto why = report.not_a(c.dev, "device"))
                return *why;
            return "no object " + std::to_string(c.pt);
        case EOPNOTSUPP:
            if (c.pasid)
                return name + " has no PASID support";
            return generic(err);
        case EINVAL: {
            if (pt && pt_type != "ioas" && pt_type != "hwpt_paging")
                return "object " + std::to_string(c.pt) + " is " + article(pt_type) + kind_label(pt_type) +
                       ", not an IOAS or a HWPT";
            if (!c.pasid && device && device->value("pasid_only", false))
                return name + " issues only PASID-tagged DMA: attach a PASID (--pasid N)";
            if (c.pasid && device) {
                const auto bits = number(*device, "pasid_bits").value_or(0);
                if (*c.pasid == 0 || (bits < 32 && *c.pasid >= (std::uint64_t{1} << bits)))
                    return "PASID " + std::to_string(*c.pasid) + " is outside what " + name + " supports (1.." +
                           std::to_string((std::uint64_t{1} << bits) - 1) + ")";
            }
            if (c.pasid && pt_type == "ioas")
                return "a PASID attaches to a HWPT allocated with `hwpt alloc DEV IOAS --pasid`, not to an IOAS "
                       "(automatic domains take no PASIDs)";
            if (c.pasid)
                return "HWPT " + std::to_string(c.pt) + " cannot be attached to a PASID (allocate it with "
                       "`hwpt alloc --pasid`), or the domain on the RID cannot sit under PASIDs";
            if (pt && device && pt->contains("unit") &&
                pt->value("unit", std::string()) != device->value("unit", std::string()))
                return "HWPT " + std::to_string(c.pt) + " belongs to unit " + pt->value("unit", std::string()) +
                       " but " + name + " sits behind " + device->value("unit", std::string());
            if (device) {
                const std::string group = device->value("group", std::string());
                for (const Json* object : report.objects()) {
                    if (object->value("type", std::string()) != "device" || number(*object, "id") == c.dev)
                        continue;
                    const Json* peer = report.device(object->value("name", std::string()));
                    auto hwpt = number(*object, "hwpt");
                    if (peer && peer->value("group", std::string()) == group && hwpt && hwpt != c.pt)
                        return "IOMMU group '" + group + "' is attached to HWPT " + std::to_string(*hwpt) +
                               " through " + object->value("name", std::string()) +
                               ": the devices of a group share one page table";
                }
            }
            return name + " cannot use object " + std::to_string(c.pt) +
                   " (another unit, an incompatible domain, or its group is attached elsewhere)";
        }
        default:
            return generic(err);
        }
    }

    std::string operator()(const HwptAlloc& c) const
    {
        const Json* device = report.bound_device(c.dev);
        const std::string name = device ? device->value("name", std::string()) : device_label(c.dev);
        const std::string unit = device ? device->value("unit", std::string("its unit")) : "its unit";
        const Json* pt = report.object(c.pt);
        const std::string pt_type = pt ? pt->value("type", std::string()) : std::string();
        switch (err) {
        case ENOENT:
            return no_device(c.dev);
        case EINVAL:
            if (!pt)
                return "no IOAS " + std::to_string(c.pt);
            if (pt_type == "hwpt_paging")
                return "HWPT " + std::to_string(c.pt) + " is not a nesting parent (hwpt alloc --nest-parent)";
            return "object " + std::to_string(c.pt) + " is " + article(pt_type) + kind_label(pt_type) +
                   ", not an IOAS";
        case EOPNOTSUPP: {
            if (pt_type == "hwpt_paging")
                return "nested HWPTs (user-owned first-stage tables) are not supported by " + unit;
            std::string what;
            if (c.dirty)
                what += "dirty tracking";
            if (c.pasid)
                what += std::string(what.empty() ? "" : " or ") + "PASID-capable domains";
            if (c.nest_parent)
                what += std::string(what.empty() ? "" : " or ") + "nesting parents";
            return what.empty() ? generic(err) : unit + " (behind " + name + ") offers no " + what;
        }
        default:
            return generic(err);
        }
    }

    std::string operator()(const Dirty& c) const
    {
        switch (err) {
        case ENOENT:
            return report.not_a(c.hwpt, "hwpt_paging").value_or("no HWPT " + std::to_string(c.hwpt));
        case EOPNOTSUPP:
            return "HWPT " + std::to_string(c.hwpt) +
                   " was not allocated with dirty tracking (hwpt alloc DEV IOAS --dirty)";
        case EINVAL:
            if (c.op != DirtyOp::read)
                return generic(err);
            if (c.length == 0)
                return "length 0: nothing to read";
            if (c.iova % c.page_size || c.length % c.page_size)
                return "IOVA " + hex(c.iova) + " and LENGTH " + hex(c.length) + " must be multiples of the page size " +
                       hex(c.page_size);
            return "IOVA " + iova_span(c.iova, c.length) + " is not aligned to the IOAS's IOVA alignment";
        default:
            return generic(err);
        }
    }

    std::string operator()(const PtDump& c) const
    {
        return err == ENOENT ? report.not_a(c.hwpt, "hwpt_paging").value_or("no HWPT " + std::to_string(c.hwpt))
                             : generic(err);
    }

    std::string operator()(const Dma& c) const
    {
        switch (err) {
        case ENOENT:
            return no_device(c.dev);
        case EFAULT:
            return "the memory behind IOVA " + iova_span(c.iova, c.length) +
                   " could not be reached (the process that mapped it is gone or unmapped it), or this "
                   "process's buffer could not";
        case EPERM:
            return "the memory behind the IOVA is mapped read-only";
        case EOVERFLOW:
            return "IOVA " + hex(c.iova) + " + length " + hex(c.length) + " wraps";
        case ESRCH:
            return "the process that mapped the memory has exited or exec'ed";
        default:
            return generic(err);
        }
    }

    std::string operator()(const Topology&) const
    {
        return err == ENOTTY ? "no status report here: this is not an ioasidd context (a kernel iommufd?)"
                             : generic(err);
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
