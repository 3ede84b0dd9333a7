// Commands on the context itself: IOMMU_DESTROY, IOMMU_OPTION, IOMMU_VFIO_IOAS.
#include <ioasid/iommufd.h>

#include <cerrno>
#include <cstddef>

#include "command.h"
#include "core/ioas.h"

namespace ioasid::dispatch {

int destroy_command(Command& cmd, void* buf)
{
    auto& args = *static_cast<iommu_destroy*>(buf);
    return cmd.ctx.destroy(args.id);
}

static core::OptionOp option_op(std::uint16_t op)
{
    switch (op) {
    case IOMMU_OPTION_OP_SET:
        return core::OptionOp::set;
    case IOMMU_OPTION_OP_GET:
        return core::OptionOp::get;
    default:
        return core::OptionOp::unknown;
    }
}

static int rlimit_mode_option(Command& cmd, iommu_option& args)
{
    if (args.object_id)
        return -EOPNOTSUPP;
    switch (option_op(args.op)) {
    case core::OptionOp::get: {
        std::uint64_t value;
        int rc = cmd.ctx.get_rlimit_mode(&value);
        args.val64 = value;
        return rc;
    }
    case core::OptionOp::set:
        return cmd.ctx.set_rlimit_mode(*cmd.caller, args.val64);
    case core::OptionOp::unknown:
        break;
    }
    return -EOPNOTSUPP;
}

int option_command(Command& cmd, void* buf)
{
    auto& args = *static_cast<iommu_option*>(buf);
    if (args.__reserved)
        return -EOPNOTSUPP;
    int rc;
    switch (args.option_id) {
    case IOMMU_OPTION_RLIMIT_MODE:
        rc = rlimit_mode_option(cmd, args);
        break;
    case IOMMU_OPTION_HUGE_PAGES:
    {
        std::uint64_t value = args.val64;
        rc = core::ioas_option_huge_pages(cmd.ctx, args.object_id, option_op(args.op), &value);
        args.val64 = value;
        break;
    }
    default:
        return -EOPNOTSUPP;
    }
    if (rc)
        return rc;
    // Only the value goes back, for GET and SET alike.
    return cmd.respond_field(offsetof(iommu_option, val64), args.val64) ? -EFAULT : 0;
}

int vfio_ioas_command(Command& cmd, void* buf)
{
    auto& args = *static_cast<iommu_vfio_ioas*>(buf);
    if (args.__reserved)
        return -EOPNOTSUPP;
    switch (args.op) {
    case IOMMU_VFIO_IOAS_GET:
        if (int rc = cmd.ctx.vfio_ioas_get(&args.ioas_id))
            return rc;
        return cmd.respond(args) ? -EFAULT : 0;
    case IOMMU_VFIO_IOAS_SET:
        return cmd.ctx.vfio_ioas_set(args.ioas_id);
    case IOMMU_VFIO_IOAS_CLEAR:
        cmd.ctx.vfio_ioas_clear();
        return 0;
    default:
        return -EOPNOTSUPP;
    }
}

} // namespace ioasid::dispatch
