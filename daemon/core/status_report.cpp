#include "status_report.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "access.h"
#include "context.h"
#include "device.h"
#include "hw_pagetable.h"
#include "ioas.h"
#include "selftest_device.h"

namespace ioasid::core {
namespace {

using nlohmann::json;

std::string iso8601(std::chrono::system_clock::time_point when)
{
    std::time_t t = std::chrono::system_clock::to_time_t(when);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

json describe_ioas(const Ioas& ioas, std::set<const Pages*>& pages)
{
    json areas = json::array();
    ioas.iopt().for_each_area([&](const Area& area) {
        areas.push_back({{"iova", area.iova.first},
                         {"length", area.length()},
                         {"readable", area.readable},
                         {"writable", area.writable}});
        pages.insert(area.pages.get());
    });
    return {{"areas", std::move(areas)}};
}

// Called with the context locked.
json describe_context(Context& ctx)
{
    std::set<const Pages*> pages;
    json objects = json::array();
    ctx.objects().for_each([&](const Object& object) {
        json entry = {{"id", object.id()}, {"users", object.users()}};
        switch (object.type()) {
        case ObjectType::ioas:
            entry["type"] = "ioas";
            entry.update(describe_ioas(static_cast<const Ioas&>(object), pages));
            break;
        case ObjectType::access:
            entry["type"] = "access";
            entry["ioas"] = static_cast<const Access&>(object).ioas_id();
            break;
        case ObjectType::hwpt_paging: {
            const auto& hwpt = static_cast<const HwptPaging&>(object);
            const hw::Domain& domain = hwpt.domain();
            entry["type"] = "hwpt_paging";
            entry["ioas"] = hwpt.ioas().id();
            entry["auto"] = hwpt.auto_domain();
            entry["unit"] = domain.unit().name();
            entry["format"] = domain.format_name();
            entry["domain_tag"] = domain.tag();
            entry["nest_parent"] = hwpt.nest_parent();
            entry["dirty_tracking_allowed"] = domain.request().dirty_tracking;
            entry["dirty_tracking"] = domain.dirty_tracking();
            entry["pasid_capable"] = hwpt.pasid_capable();
            break;
        }
        case ObjectType::hwpt_nested: {
            const auto& hwpt = static_cast<const HwptNested&>(object);
            entry["type"] = "hwpt_nested";
            entry["parent"] = hwpt.parent().id();
            entry["unit"] = hwpt.domain().unit().name();
            entry["format"] = hwpt.domain().format_name();
            if (hwpt.fault())
                entry["fault"] = hwpt.fault()->id();
            break;
        }
        case ObjectType::fault: {
            const auto& fault = static_cast<const Fault&>(object);
            entry["type"] = "fault";
            entry["queued"] = fault.queued();
            entry["awaiting_response"] = fault.awaiting_response();
            break;
        }
        case ObjectType::device: {
            const auto& device = static_cast<const Device&>(object);
            entry["type"] = "device";
            entry["name"] = device.emulated().name;
            if (device.rid_hwpt())
                entry["hwpt"] = device.rid_hwpt()->id();
            json pasids = json::object();
            for (const auto& [pasid, hwpt] : device.pasids())
                pasids[std::to_string(pasid)] = hwpt->id();
            if (!pasids.empty())
                entry["pasids"] = std::move(pasids);
            break;
        }
        case ObjectType::selftest: {
            const auto& stdev = static_cast<const SelftestDevice&>(object);
            entry["type"] = "selftest";
            entry["name"] = stdev.emulated().name;
            entry["device"] = stdev.dev_id();
            break;
        }
        }
        objects.push_back(std::move(entry));
    });
    std::uint64_t pinned = 0;
    for (const Pages* p : pages)
        pinned += p->npinned() * kPageSize;

    // Only processes still alive are worth naming.
    json pids = json::array();
    for (pid_t pid : ctx.callers())
        if (::kill(pid, 0) == 0 || errno == EPERM)
            pids.push_back(pid);
    return {{"objects", std::move(objects)}, {"pinned_bytes", pinned}, {"pids", std::move(pids)}};
}

// Another context may be in the middle of a long ioctl. The report waits a
// little for each, within one budget for the whole report (it holds the
// registry, which opening and closing files need), and then says "busy"
// rather than stall.
class LockBudget {
public:
    bool lock(std::mutex& lock)
    {
        while (!lock.try_lock()) {
            if (std::chrono::steady_clock::now() >= deadline_)
                return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        return true;
    }

private:
    std::chrono::steady_clock::time_point deadline_ =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
};

// The emulated machine: units with their IOTLB counters, and devices with
// the context each is bound to.
json describe_hardware(const Hardware& hardware)
{
    json units = json::array();
    for (const auto& unit : hardware.units()) {
        const hw::IotlbStats stats = unit->iotlb_stats();
        units.push_back({{"name", unit->name()},
                         {"family", unit->family()},
                         {"iotlb",
                          {{"hits", stats.hits},
                           {"misses", stats.misses},
                           {"invalidations", stats.invalidations},
                           {"evictions", stats.evictions},
                           {"entries", stats.entries}}}});
    }
    json devices = json::array();
    hardware.for_each_device([&](const EmulatedDevice& device, const Context* owner) {
        json entry = {{"name", device.name},
                      {"unit", device.unit->name()},
                      {"vfio", device.vfio_name},
                      {"rid", device.endpoint->config().rid},
                      {"group", device.group->name},
                      {"pasid_bits", device.pasid_bits()},
                      {"pasid_only", device.pasid_only}};
        if (owner)
            entry["context"] = owner->serial();
        devices.push_back(std::move(entry));
    });
    return {{"units", std::move(units)}, {"devices", std::move(devices)}};
}

} // namespace

int pt_dump_report(Context& ctx, std::uint32_t hwpt_id, std::string* out)
{
    const HwptPaging* hwpt = ctx.objects().find_as<HwptPaging>(hwpt_id);
    if (!hwpt)
        return -ENOENT;
    const hw::Domain& domain = hwpt->domain();
    json entries = json::array();
    domain.dump([&](const hw::DumpEntry& e) {
        entries.push_back({{"level", e.level},
                           {"index", e.index},
                           {"table", e.table_pa},
                           {"iova", e.iova},
                           {"size", e.size},
                           {"raw", e.raw},
                           {"leaf", e.leaf},
                           {"fields", e.fields}});
    });
    *out = json{{"hwpt", hwpt_id},
                {"unit", domain.unit().name()},
                {"format", domain.format_name()},
                {"root", domain.root_pa()},
                {"levels", domain.levels()},
                {"aperture", {domain.geometry().aperture.first, domain.geometry().aperture.last}},
                {"pgsize_bitmap", domain.geometry().pgsize_bitmap},
                {"entries", std::move(entries)}}
               .dump();
    return 0;
}

std::string status_report(Context& own, const StatusQuery& query)
{
    const ContextRegistry& registry = own.services().registry;
    const DaemonInfo info = registry.daemon_info();
    json daemon = {{"pid", ::getpid()},
                   {"version", "0.1.0"},
                   {"transports", info.transports},
                   {"contexts_opened", registry.opened()}};
    if (!info.devname.empty())
        daemon["devname"] = info.devname;
    if (!info.socket.empty())
        daemon["socket"] = info.socket;

    json contexts = json::array();
    LockBudget budget;
    registry.for_each([&](Context& ctx) {
        if (query.all_contexts ? (query.viewer_uid != 0 && ctx.origin().uid != query.viewer_uid)
                               : &ctx != &own)
            return;
        json entry = {{"id", ctx.serial()},
                      {"transport", ctx.origin().transport},
                      {"uid", ctx.origin().uid},
                      {"opened", iso8601(ctx.opened())},
                      {"own", &ctx == &own}};
        if (budget.lock(ctx.lock())) {
            std::lock_guard guard(ctx.lock(), std::adopt_lock);
            entry.update(describe_context(ctx));
        } else {
            entry["busy"] = true;
        }
        contexts.push_back(std::move(entry));
    });
    return json{{"daemon", std::move(daemon)},
                {"contexts", std::move(contexts)},
                {"hardware", describe_hardware(own.services().hardware)}}
        .dump();
}

} // namespace ioasid::core
