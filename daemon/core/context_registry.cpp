#include "context_registry.h"

#include <algorithm>

namespace ioasid::core {

void ContextRegistry::set_daemon_info(DaemonInfo info)
{
    std::lock_guard guard(lock_);
    info_ = std::move(info);
}

DaemonInfo ContextRegistry::daemon_info() const
{
    std::lock_guard guard(lock_);
    return info_;
}

std::uint32_t ContextRegistry::add(Context& ctx)
{
    std::lock_guard guard(lock_);
    contexts_.push_back(&ctx);
    return next_serial_++;
}

void ContextRegistry::remove(Context& ctx)
{
    std::lock_guard guard(lock_);
    std::erase(contexts_, &ctx);
}

std::uint32_t ContextRegistry::opened() const
{
    std::lock_guard guard(lock_);
    return next_serial_ - 1;
}

void ContextRegistry::for_each(const std::function<void(Context&)>& fn) const
{
    std::lock_guard guard(lock_);
    for (Context* ctx : contexts_)
        fn(*ctx);
}

} // namespace ioasid::core
