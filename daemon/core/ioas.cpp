#include "ioas.h"

#include <cerrno>
#include <map>

namespace ioasid::core {

PendingObject<Ioas> ioas_alloc(Context& ctx)
{
    return PendingObject<Ioas>(ctx.objects(), std::make_unique<Ioas>());
}

int ioas_map_user_pages(Context& ctx, Ioas& ioas, const std::shared_ptr<memory::Caller>& caller,
                        std::uint64_t user_va, std::uint64_t length, std::uint64_t* iova,
                        bool readable, bool writable, bool alloc_iova)
{
    // The pages read the process for as long as they are mapped; a caller
    // whose memory the daemon cannot reach has nothing to map.
    std::shared_ptr<memory::Caller> source = caller->lasting();
    if (!source)
        return -EFAULT;
    std::shared_ptr<Pages> pages;
    if (int rc = Pages::create(std::move(source), user_va, length, writable, ctx.account_mode(),
                               ctx.pin_services(), &pages))
        return rc;
    PagesSlice slice{pages, user_va - pages->uptr(), length};
    return ioas.iopt().map_pages({&slice, 1}, length, iova, readable, writable, alloc_iova);
}

int ioas_map(Context& ctx, const std::shared_ptr<memory::Caller>& caller, const MapRequest& request,
             std::uint64_t* iova)
{
    if (request.iova >= kUlongMax || request.length >= kUlongMax)
        return -EOVERFLOW;
    if (!request.readable && !request.writable)
        return -EINVAL;
    Ioas* ioas = ctx.objects().find_as<Ioas>(request.ioas_id);
    if (!ioas)
        return -ENOENT;
    *iova = request.iova;
    return ioas_map_user_pages(ctx, *ioas, caller, request.user_va, request.length, iova,
                               request.readable, request.writable, !request.fixed_iova);
}

// The order of Linux 6.13: ioas.c iommufd_ioas_map_file(), then
// io_pagetable.c iopt_map_file_pages() and pages.c iopt_alloc_file_pages().
int ioas_map_file(Context& ctx, const std::shared_ptr<memory::Caller>& caller,
                  const MapFileRequest& request, std::uint64_t* iova)
{
    if (request.iova >= kUlongMax || request.length >= kUlongMax)
        return -EOVERFLOW;
    if (!request.readable && !request.writable)
        return -EINVAL;
    Ioas* ioas = ctx.objects().find_as<Ioas>(request.ioas_id);
    if (!ioas)
        return -ENOENT;

    // fget(): a descriptor the caller does not have, or an O_PATH one.
    memory::UniqueFd file;
    if (int rc = caller->take_fd(request.fd, &file))
        return rc;
    memory::FileFacts facts;
    if (memory::describe_file(file.get(), &facts) || facts.path_only)
        return -EBADF;
    // The pins are charged to the process that maps, as the kernel charges
    // current's user and mm; one whose descriptors the daemon reached is
    // one it can name.
    std::shared_ptr<memory::Caller> owner = caller->lasting();
    if (!owner)
        return -EBADF;

    // A writable map of a file not open for writing, or write-sealed, is
    // -EPERM, which 6.13 itself does not check: it pins the pages for write
    // whatever the descriptor allows (a later fix, "Require write access
    // for writable MAP_FILE mappings", refuses it with -EPERM). The daemon
    // cannot write through such a file at all, and must not reopen it with
    // rights the client lacks.
    std::shared_ptr<Pages> pages;
    if (int rc = Pages::create_file(std::move(owner), std::move(file), facts, request.start,
                                    request.length, request.writable, ctx.account_mode(),
                                    ctx.pin_services(), &pages))
        return rc;
    PagesSlice slice{pages, request.start - pages->uptr(), request.length};
    *iova = request.iova;
    return ioas->iopt().map_pages({&slice, 1}, request.length, iova, request.readable,
                                  request.writable, !request.fixed_iova);
}

int ioas_copy(Context& ctx, const CopyRequest& request, std::uint64_t* dst_iova)
{
    if (request.length >= kUlongMax || request.src_iova >= kUlongMax ||
        request.dst_iova >= kUlongMax)
        return -EOVERFLOW;
    if (!request.readable && !request.writable)
        return -EINVAL;
    Ioas* src = ctx.objects().find_as<Ioas>(request.src_ioas_id);
    if (!src)
        return -ENOENT;
    std::vector<PagesSlice> slices;
    if (int rc = src->iopt().get_pages(request.src_iova, request.length, &slices))
        return rc;
    Ioas* dst = ctx.objects().find_as<Ioas>(request.dst_ioas_id);
    if (!dst)
        return -ENOENT;
    *dst_iova = request.dst_iova;
    return dst->iopt().map_pages(slices, request.length, dst_iova, request.readable,
                                 request.writable, !request.fixed_iova);
}

int ioas_unmap(Context& ctx, std::uint32_t ioas_id, std::uint64_t iova, std::uint64_t length,
               std::uint64_t* unmapped)
{
    Ioas* ioas = ctx.objects().find_as<Ioas>(ioas_id);
    if (!ioas)
        return -ENOENT;
    if (iova == 0 && length == UINT64_MAX)
        return ioas->iopt().unmap_range({0, kUlongMax}, unmapped);

    if (iova >= kUlongMax || length >= kUlongMax)
        return -EOVERFLOW;
    if (length == 0)
        return -EINVAL;
    std::uint64_t last;
    if (!last_of(iova, length, &last))
        return -EOVERFLOW;
    if (int rc = ioas->iopt().unmap_range({iova, last}, unmapped))
        return rc;
    return *unmapped ? 0 : -ENOENT;
}

int ioas_iova_ranges(Context& ctx, std::uint32_t ioas_id, std::vector<IovaRange>* ranges,
                     std::uint64_t* alignment)
{
    Ioas* ioas = ctx.objects().find_as<Ioas>(ioas_id);
    if (!ioas)
        return -ENOENT;
    ranges->clear();
    ioas->iopt().for_each_usable_range([&](IovaRange r) { ranges->push_back(r); });
    *alignment = ioas->iopt().iova_alignment();
    return 0;
}

int ioas_allow_iovas(Context& ctx, std::uint32_t ioas_id, std::uint32_t count,
                     const std::function<int(std::uint32_t, IovaRange*)>& read_range)
{
    Ioas* ioas = ctx.objects().find_as<Ioas>(ioas_id);
    if (!ioas)
        return -ENOENT;
    std::map<std::uint64_t, std::uint64_t> seen; // first -> last
    for (std::uint32_t i = 0; i < count; ++i) {
        IovaRange range;
        if (int rc = read_range(i, &range))
            return rc;
        // A single-byte range is refused too, as by the kernel.
        if (range.first >= range.last)
            return -EINVAL;
        auto next = seen.lower_bound(range.first);
        if (next != seen.end() && next->first <= range.last)
            return -EINVAL;
        if (next != seen.begin() && std::prev(next)->second >= range.first)
            return -EINVAL;
        seen.emplace_hint(next, range.first, range.last);
    }
    std::vector<IovaRange> allowed;
    allowed.reserve(seen.size());
    for (auto [first, last] : seen)
        allowed.push_back({first, last});
    return ioas->iopt().set_allowed(std::move(allowed));
}

int ioas_option_huge_pages(Context& ctx, std::uint32_t ioas_id, OptionOp op, std::uint64_t* value)
{
    Ioas* ioas = ctx.objects().find_as<Ioas>(ioas_id);
    if (!ioas)
        return -ENOENT;
    if (op == OptionOp::unknown)
        return -EOPNOTSUPP;
    if (op == OptionOp::get) {
        *value = ioas->iopt().large_pages();
        return 0;
    }
    if (*value == 0)
        return ioas->iopt().disable_large_pages();
    if (*value == 1) {
        ioas->iopt().enable_large_pages();
        return 0;
    }
    return -EINVAL;
}

} // namespace ioasid::core
