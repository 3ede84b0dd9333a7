#include "context.h"

#include <cassert>
#include <algorithm>
#include <cerrno>
#include <vector>

#include "ioas.h"

namespace ioasid::core {

Context::Context(CoreServices& services, AccountMode account_mode, ContextOrigin origin)
    : services_(services), origin_(std::move(origin)), opened_(std::chrono::system_clock::now()),
      pin_services_{services.accounting, services.phys}, account_mode_(account_mode)
{
    if (origin_.pid > 0)
        callers_.push_back(origin_.pid);
    // Last: from here on the status report may lock and read this context.
    serial_ = services.registry.add(*this);
}

Context::~Context()
{
    services_.registry.remove(*this);
    vfio_ioas_ = nullptr;
    // The users of accesses live in the daemon and go with the file, so
    // their references are dropped before the leaves-first teardown.
    // Bound devices too: closing the file unbinds them, which detaches
    // them from their HWPTs first.
    std::vector<std::uint32_t> accesses;
    objects_.for_each([&](const Object& object) {
        if (object.type() == ObjectType::access || object.type() == ObjectType::device)
            accesses.push_back(object.id());
    });
    for (std::uint32_t id : accesses) {
        int rc = objects_.destroy_owned(id);
        assert(rc == 0);
        (void)rc;
    }
    objects_.destroy_all();
}

void Context::note_caller(pid_t tgid)
{
    constexpr std::size_t kKept = 8;
    if (tgid <= 0 || (!callers_.empty() && callers_.back() == tgid))
        return;
    std::erase(callers_, tgid);
    if (callers_.size() == kKept)
        callers_.erase(callers_.begin());
    callers_.push_back(tgid);
}

int Context::destroy(std::uint32_t id)
{
    return objects_.destroy(id, [this](Object& object) {
        if (&object == vfio_ioas_)
            vfio_ioas_ = nullptr;
    });
}

int Context::get_rlimit_mode(std::uint64_t* value) const
{
    *value = account_mode_ == AccountMode::mm;
    return 0;
}

int Context::set_rlimit_mode(const memory::Caller& caller, std::uint64_t value)
{
    if (!caller.capable(memory::Capability::sys_resource))
        return -EPERM;
    // Pages already made keep their mode, so only an empty context may change.
    if (!objects_.empty())
        return -EBUSY;
    if (value == 0)
        account_mode_ = AccountMode::user;
    else if (value == 1)
        account_mode_ = AccountMode::mm;
    else
        return -EINVAL;
    return 0;
}

int Context::vfio_ioas_get(std::uint32_t* id) const
{
    if (!vfio_ioas_)
        return -ENODEV;
    *id = vfio_ioas_->id();
    return 0;
}

int Context::vfio_ioas_set(std::uint32_t id)
{
    Ioas* ioas = objects_.find_as<Ioas>(id);
    if (!ioas)
        return -ENOENT;
    vfio_ioas_ = ioas;
    return 0;
}

} // namespace ioasid::core
