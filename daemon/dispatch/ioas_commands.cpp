// IOAS commands: decode the struct, check its flags and reserved fields,
// call the core, write the answer back.
#include <ioasid/iommufd.h>

#include <cerrno>
#include <vector>

#include "command.h"
#include "core/ioas.h"

namespace ioasid::dispatch {
namespace {

constexpr std::uint32_t kMapFlags =
    IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE;

// MAP, MAP_FILE and COPY share their flags (checked against kMapFlags).
template <typename Request>
void set_map_flags(Request& request, std::uint32_t flags)
{
    request.fixed_iova = (flags & IOMMU_IOAS_MAP_FIXED_IOVA) != 0;
    request.readable = (flags & IOMMU_IOAS_MAP_READABLE) != 0;
    request.writable = (flags & IOMMU_IOAS_MAP_WRITEABLE) != 0;
}

int fault_or(int rc)
{
    return rc ? -EFAULT : 0;
}

} // namespace

int ioas_alloc_command(Command& cmd, void* buf)
{
    auto& args = *static_cast<iommu_ioas_alloc*>(buf);
    if (args.flags)
        return -EOPNOTSUPP;
    auto pending = core::ioas_alloc(cmd.ctx);
    if (!pending.id())
        return -EBUSY; // what xa_alloc() says when the 31-bit ids run out
    args.out_ioas_id = pending.id();
    // The IOAS exists only if the client learned its id.
    if (cmd.respond(args))
        return -EFAULT;
    pending.publish();
    return 0;
}

int ioas_map_command(Command& cmd, void* buf)
{
    auto& args = *static_cast<iommu_ioas_map*>(buf);
    if ((args.flags & ~kMapFlags) || args.__reserved)
        return -EOPNOTSUPP;
    core::MapRequest request{
        .ioas_id = args.ioas_id,
        .user_va = args.user_va,
        .length = args.length,
        .iova = args.iova,
    };
    set_map_flags(request, args.flags);
    std::uint64_t iova;
    if (int rc = core::ioas_map(cmd.ctx, cmd.caller, request, &iova))
        return rc;
    args.iova = iova;
    return fault_or(cmd.respond(args));
}

// No __reserved word here (the fd sits where IOAS_MAP has it): only the
// flags can be unsupported.
int ioas_map_file_command(Command& cmd, void* buf)
{
    auto& args = *static_cast<iommu_ioas_map_file*>(buf);
    if (args.flags & ~kMapFlags)
        return -EOPNOTSUPP;
    core::MapFileRequest request{
        .ioas_id = args.ioas_id,
        .fd = args.fd,
        .start = args.start,
        .length = args.length,
        .iova = args.iova,
    };
    set_map_flags(request, args.flags);
    std::uint64_t iova;
    if (int rc = core::ioas_map_file(cmd.ctx, cmd.caller, request, &iova))
        return rc;
    args.iova = iova;
    return fault_or(cmd.respond(args));
}

int ioas_copy_command(Command& cmd, void* buf)
{
    auto& args = *static_cast<iommu_ioas_copy*>(buf);
    if (args.flags & ~kMapFlags)
        return -EOPNOTSUPP;
    core::CopyRequest request{
        .dst_ioas_id = args.dst_ioas_id,
        .src_ioas_id = args.src_ioas_id,
        .length = args.length,
        .dst_iova = args.dst_iova,
        .src_iova = args.src_iova,
    };
    set_map_flags(request, args.flags);
    std::uint64_t dst_iova;
    if (int rc = core::ioas_copy(cmd.ctx, request, &dst_iova))
        return rc;
    args.dst_iova = dst_iova;
    return fault_or(cmd.respond(args));
}

int ioas_unmap_command(Command& cmd, void* buf)
{
    auto& args = *static_cast<iommu_ioas_unmap*>(buf);
    std::uint64_t unmapped = 0;
    if (int rc = core::ioas_unmap(cmd.ctx, args.ioas_id, args.iova, args.length, &unmapped))
        return rc;
    args.length = unmapped;
    return fault_or(cmd.respond(args));
}

int ioas_iova_ranges_command(Command& cmd, void* buf)
{
    auto& args = *static_cast<iommu_ioas_iova_ranges*>(buf);
    if (args.__reserved)
        return -EOPNOTSUPP;
    std::vector<core::IovaRange> ranges;
    std::uint64_t alignment;
    if (int rc = core::ioas_iova_ranges(cmd.ctx, args.ioas_id, &ranges, &alignment))
        return rc;
    const std::uint32_t room = args.num_iovas;
    for (std::uint32_t i = 0; i < ranges.size() && i < room; ++i) {
        iommu_iova_range out{.start = ranges[i].first, .last = ranges[i].last};
        if (cmd.mem().write(args.allowed_iovas + std::uint64_t{i} * sizeof(out),
                            std::as_bytes(std::span(&out, 1))))
            return -EFAULT;
    }
    args.num_iovas = static_cast<std::uint32_t>(ranges.size());
    args.out_iova_alignment = alignment;
    // The count goes back even when the array was too small, so the client
    // can size it and ask again.
    if (cmd.respond(args))
        return -EFAULT;
    return ranges.size() > room ? -EMSGSIZE : 0;
}

int ioas_allow_iovas_command(Command& cmd, void* buf)
{
    auto& args = *static_cast<iommu_ioas_allow_iovas*>(buf);
    if (args.__reserved)
        return -EOPNOTSUPP;
    // Read a page's worth of ranges at a time; a fault inside a batch is
    // located by reading its elements one by one.
    constexpr std::uint32_t kBatch = 256;
    std::vector<iommu_iova_range> batch;
    std::uint32_t batch_first = 0;
    auto read_range = [&](std::uint32_t i, core::IovaRange* range) -> int {
        if (i < batch_first || i >= batch_first + batch.size()) {
            batch_first = i;
            std::uint32_t n = std::min(kBatch, args.num_iovas - i);
            batch.resize(n);
            if (cmd.mem().read(args.allowed_iovas + std::uint64_t{i} * sizeof(iommu_iova_range),
                               std::as_writable_bytes(std::span(batch)))) {
                batch.resize(1);
                if (cmd.mem().read(args.allowed_iovas + std::uint64_t{i} * sizeof(iommu_iova_range),
                                   std::as_writable_bytes(std::span(batch)))) {
                    batch.clear();
                    return -EFAULT;
                }
            }
        }
        const iommu_iova_range& r = batch[i - batch_first];
        *range = {r.start, r.last};
        return 0;
    };
    return core::ioas_allow_iovas(cmd.ctx, args.ioas_id, args.num_iovas, read_range);
}

} // namespace ioasid::dispatch
