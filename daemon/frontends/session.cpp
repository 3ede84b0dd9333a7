#include "session.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstring>

#include "dispatch/dispatcher.h"

namespace ioasid::frontends {
namespace {

std::atomic<bool> tracing{false};

const char* errno_name(int rc)
{
    const char* name = rc == 0 ? "OK" : strerrorname_np(-rc);
    return name ? name : "?";
}

} // namespace

void set_tracing(bool on)
{
    tracing.store(on, std::memory_order_relaxed);
}

Session::Session(core::CoreServices& services, core::ContextOrigin origin)
    : context_(services, core::AccountMode::user, std::move(origin))
{
    spdlog::debug("context {} opened by pid {} uid {} over {}", context_.serial(),
                  context_.origin().pid, context_.origin().uid, context_.origin().transport);
}

Session::~Session()
{
    spdlog::debug("context {} released", context_.serial());
}

int Session::ioctl(unsigned int cmd, const std::shared_ptr<memory::Caller>& caller,
                   std::uint64_t arg, pid_t tid)
{
    if (!tracing.load(std::memory_order_relaxed))
        return dispatch::ioctl(context_, cmd, caller, arg);

    const std::string before = dispatch::describe(cmd, caller->memory(), arg);
    const auto start = std::chrono::steady_clock::now();
    const int rc = dispatch::ioctl(context_, cmd, caller, arg);
    const auto took = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() -
                                                                start);
    // After a success the struct holds what was written back.
    const std::string after = rc == 0 ? dispatch::describe(cmd, caller->memory(), arg) : "";
    spdlog::info("trace pid={} ctx={} {} -> {} ({}){}{} {:.1f}us", tid, context_.serial(), before,
                 rc, errno_name(rc), rc == 0 ? " out " : "", after, took.count());
    return rc;
}

int vfio_ioctl(dispatch::VfioDevice& device, unsigned int cmd,
               const std::shared_ptr<memory::Caller>& caller, std::uint64_t arg, pid_t tid,
               const dispatch::IommufdResolver& resolve)
{
    if (!tracing.load(std::memory_order_relaxed))
        return device.ioctl(cmd, caller, arg, resolve);

    const std::string before = dispatch::VfioDevice::describe(cmd, caller->memory(), arg);
    const auto start = std::chrono::steady_clock::now();
    const int rc = device.ioctl(cmd, caller, arg, resolve);
    const auto took = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() -
                                                                start);
    const std::string after =
        rc == 0 ? dispatch::VfioDevice::describe(cmd, caller->memory(), arg) : "";
    spdlog::info("trace pid={} vfio={} {} -> {} ({}){}{} {:.1f}us", tid, device.device().vfio_name,
                 before, rc, errno_name(rc), rc == 0 ? " out " : "", after, took.count());
    return rc;
}

} // namespace ioasid::frontends
