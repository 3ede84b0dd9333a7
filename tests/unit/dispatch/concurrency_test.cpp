// Concurrent ioctls: several threads on one context (the kernel runs ioctls
// on one iommufd concurrently; results must be as if serialised), and
// several contexts sharing one CoreServices (pin accounting and the
// physical address space are daemon-wide).
//
// Catch2 v2 assertions are not thread-safe: worker threads only record
// failures as text, checked after join().
#include <catch2/catch.hpp>

#include <ioasid/iommufd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/access.h"
#include "core/ioas.h"
#include "test_support.h"

namespace {

using namespace ioasid;
using test::Client;
using test::kArrayAddr;
using test::kArrayRegion;
using test::kBufferAddr;
using test::kStructAddr;
using test::kStructRegion;

constexpr std::uint64_t kPage = 4096;
constexpr std::uint32_t kRW = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;

// Failures seen by a worker thread.
struct Log {
    std::vector<std::string> errors;
    template <typename... Args>
    void fail(Args&&... args)
    {
        if (errors.size() >= 20)
            return;
        std::ostringstream os;
        (os << ... << args);
        errors.push_back(os.str());
    }
};

// One thread's view of a shared Client: its structs live at a private
// address, so threads never overwrite each other's arguments.
class Port {
public:
    Port(Client& c, unsigned index) : c_(c), at_(kStructAddr + 0x1000 * index) {}

    template <typename T>
    int call(unsigned int cmd, T& arg)
    {
        c_.write(at_, std::as_bytes(std::span(&arg, 1)));
        int rc = c_.ioctl_at(cmd, at_);
        c_.read(at_, std::as_writable_bytes(std::span(&arg, 1)));
        return rc;
    }

    int alloc(std::uint32_t* id)
    {
        iommu_ioas_alloc cmd{.size = sizeof(cmd), .flags = 0, .out_ioas_id = 0};
        int rc = call(IOMMU_IOAS_ALLOC, cmd);
        *id = cmd.out_ioas_id;
        return rc;
    }
    int destroy(std::uint32_t id)
    {
        iommu_destroy cmd{.size = sizeof(cmd), .id = id};
        return call(IOMMU_DESTROY, cmd);
    }
    int map(std::uint32_t ioas, std::uint64_t uva, std::uint64_t length, std::uint64_t* iova,
            bool fixed)
    {
        iommu_ioas_map cmd{.size = sizeof(cmd),
                           .flags = kRW | (fixed ? std::uint32_t{IOMMU_IOAS_MAP_FIXED_IOVA} : 0u),
                           .ioas_id = ioas, .__reserved = 0, .user_va = uva, .length = length,
                           .iova = *iova};
        int rc = call(IOMMU_IOAS_MAP, cmd);
        *iova = cmd.iova;
        return rc;
    }
    int unmap(std::uint32_t ioas, std::uint64_t iova, std::uint64_t length, std::uint64_t* unmapped)
    {
        iommu_ioas_unmap cmd{.size = sizeof(cmd), .ioas_id = ioas, .iova = iova, .length = length};
        int rc = call(IOMMU_IOAS_UNMAP, cmd);
        *unmapped = cmd.length;
        return rc;
    }
    int copy(std::uint32_t dst, std::uint32_t src, std::uint64_t src_iova, std::uint64_t length,
             std::uint64_t* dst_iova)
    {
        iommu_ioas_copy cmd{.size = sizeof(cmd), .flags = kRW, .dst_ioas_id = dst,
                            .src_ioas_id = src, .length = length, .dst_iova = 0,
                            .src_iova = src_iova};
        int rc = call(IOMMU_IOAS_COPY, cmd);
        *dst_iova = cmd.dst_iova;
        return rc;
    }
    int iova_ranges(std::uint32_t ioas, std::uint32_t* num, iommu_iova_range* first)
    {
        const std::uint64_t array = kArrayAddr + (at_ - kStructAddr); // a page per port
        iommu_ioas_iova_ranges cmd{.size = sizeof(cmd), .ioas_id = ioas, .num_iovas = 4,
                                   .__reserved = 0, .allowed_iovas = array,
                                   .out_iova_alignment = 0};
        int rc = call(IOMMU_IOAS_IOVA_RANGES, cmd);
        *num = cmd.num_iovas;
        c_.read(array, std::as_writable_bytes(std::span(first, 1)));
        return rc;
    }

private:
    Client& c_;
    std::uint64_t at_;
};

// Ids live at the same time must differ. An id is entered after ALLOC
// returned it and removed before DESTROY is called, so a correct allocator
// can never hand out an id still in the set.
class LiveIds {
public:
    bool add(std::uint32_t id)
    {
        std::lock_guard guard(lock_);
        return ids_.insert(id).second;
    }
    void remove(std::uint32_t id)
    {
        std::lock_guard guard(lock_);
        ids_.erase(id);
    }

private:
    std::mutex lock_;
    std::set<std::uint32_t> ids_;
};

} // namespace

TEST_CASE("concurrent map/unmap/copy/ranges/alloc/destroy on one context stay consistent",
          "[dispatch][concurrency]")
{
    constexpr unsigned kThreads = 4;
    constexpr unsigned kIterations = 1500;
    constexpr std::uint64_t kFixedLen = 0x4000;
    constexpr std::uint64_t kAutoLen = 0x2000;
    constexpr std::uint64_t kSlot = 0x10000;
    // Automatic placement is confined to [4 GiB, 8 GiB); each thread's FIXED
    // maps use its own 256 MiB window below that.
    constexpr iommu_iova_range kAutoWindow{0x100000000, 0x1ffffffff};
    auto window = [](unsigned t) { return 0x10000000ULL * (t + 1); };

    core::CoreServices services;
    Client c(services, Client::make_caller(4 << 20));
    std::uint32_t shared = 0;
    REQUIRE(c.ioas_alloc(&shared) == 0);
    c.write(kArrayAddr, std::as_bytes(std::span(&kAutoWindow, 1)));
    iommu_ioas_allow_iovas allow{.size = sizeof(allow), .ioas_id = shared, .num_iovas = 1,
                                 .__reserved = 0, .allowed_iovas = kArrayAddr};
    REQUIRE(c.ioctl(IOMMU_IOAS_ALLOW_IOVAS, allow) == 0);

    LiveIds live;
    REQUIRE(live.add(shared));
    struct Result {
        Log log;
        std::uint32_t private_ioas = 0;
        std::uint64_t kept_fixed = 0;   // areas left in the shared IOAS window
        std::uint64_t kept_copies = 0;  // areas left in the current private IOAS
        unsigned temp_ioas = 0;
    };
    std::vector<Result> results(kThreads);

    auto worker = [&](unsigned t) {
        Result& r = results[t];
        Log& log = r.log;
        Port port(c, t + 1);
        auto fresh_private = [&] {
            if (int rc = port.alloc(&r.private_ioas))
                return log.fail("alloc private: ", rc);
            if (!live.add(r.private_ioas))
                log.fail("id ", r.private_ioas, " handed out twice");
            r.kept_copies = 0;
        };
        fresh_private();

        for (unsigned i = 0; i < kIterations && log.errors.empty(); ++i) {
            const bool keep = i % 50 == 0;
            const std::uint64_t uva = kBufferAddr + (i % 64) * kPage;

            std::uint64_t fixed_iova = window(t) + i * kSlot;
            if (int rc = port.map(shared, uva, kFixedLen, &fixed_iova, true))
                log.fail("fixed map ", i, ": ", rc);

            std::uint64_t auto_iova = 0;
            if (int rc = port.map(shared, uva, kAutoLen, &auto_iova, false))
                log.fail("auto map ", i, ": ", rc);
            else if (auto_iova < kAutoWindow.start || auto_iova + kAutoLen - 1 > kAutoWindow.last)
                log.fail("auto map ", i, " outside the allowed window: ", std::hex, auto_iova);

            std::uint64_t copy_iova = 0;
            if (int rc = port.copy(r.private_ioas, shared, fixed_iova, kFixedLen, &copy_iova))
                log.fail("copy ", i, ": ", rc);

            std::uint32_t num = 0;
            iommu_iova_range first{};
            if (int rc = port.iova_ranges(shared, &num, &first); rc || num != 1 ||
                first.start != 0 || first.last != UINT64_MAX)
                log.fail("iova_ranges ", i, ": rc ", rc, " num ", num);

            if (i % 10 == 0) {
                std::uint32_t temp = 0;
                if (int alloc_rc = port.alloc(&temp)) {
                    log.fail("alloc temp ", i, ": ", alloc_rc);
                } else {
                    if (!live.add(temp))
                        log.fail("id ", temp, " handed out twice");
                    std::uint64_t iova = 0;
                    if (int rc = port.map(temp, uva, kFixedLen, &iova, false))
                        log.fail("map temp ", i, ": ", rc);
                    live.remove(temp);
                    if (int rc = port.destroy(temp))
                        log.fail("destroy temp ", temp, ": ", rc);
                    ++r.temp_ioas;
                }
            }

            std::uint64_t unmapped = 0;
            if (int rc = port.unmap(shared, auto_iova, kAutoLen, &unmapped); rc || unmapped != kAutoLen)
                log.fail("unmap auto ", i, ": rc ", rc, " bytes ", unmapped);
            if (keep) {
                ++r.kept_fixed;
                ++r.kept_copies;
            } else {
                if (int rc = port.unmap(shared, fixed_iova, kFixedLen, &unmapped);
                    rc || unmapped != kFixedLen)
                    log.fail("unmap fixed ", i, ": rc ", rc, " bytes ", unmapped);
                if (int rc = port.unmap(r.private_ioas, copy_iova, kFixedLen, &unmapped);
                    rc || unmapped != kFixedLen)
                    log.fail("unmap copy ", i, ": rc ", rc, " bytes ", unmapped);
            }

            if (i % 100 == 99) {
                // Destroying an IOAS that still has areas unmaps them.
                live.remove(r.private_ioas);
                if (int rc = port.destroy(r.private_ioas))
                    log.fail("destroy private ", r.private_ioas, ": ", rc);
                fresh_private();
            }
        }
    };

    std::vector<std::thread> threads;
    for (unsigned t = 0; t < kThreads; ++t)
        threads.emplace_back(worker, t);
    for (auto& thread : threads)
        thread.join();

    std::uint64_t kept_fixed_total = 0;
    for (unsigned t = 0; t < kThreads; ++t) {
        CAPTURE(t);
        CHECK(results[t].log.errors == std::vector<std::string>{});
        CHECK(results[t].kept_fixed == kIterations / 50);
        CHECK(results[t].temp_ioas == kIterations / 10);
        kept_fixed_total += results[t].kept_fixed;
    }

    // Every area left behind is exactly where its thread put it.
    auto& iopt = c.ctx().objects().find_as<core::Ioas>(shared)->iopt();
    CHECK(iopt.area_count() == kept_fixed_total);
    std::uint64_t expected_left = kept_fixed_total;
    for (unsigned t = 0; t < kThreads; t += 2) {
        CAPTURE(t);
        std::uint64_t unmapped = 0;
        CHECK(c.unmap(shared, window(t), 0x10000000, &unmapped) == 0);
        CHECK(unmapped == results[t].kept_fixed * kFixedLen);
        expected_left -= results[t].kept_fixed;
    }
    std::uint64_t unmapped = 0;
    CHECK(c.unmap(shared, 0, UINT64_MAX, &unmapped) == 0);
    CHECK(unmapped == expected_left * kFixedLen);
    CHECK(iopt.area_count() == 0);

    std::set<std::uint32_t> ids{shared};
    for (unsigned t = 0; t < kThreads; ++t) {
        CAPTURE(t);
        const std::uint32_t id = results[t].private_ioas;
        CHECK(ids.insert(id).second);
        CHECK(c.unmap(id, 0, UINT64_MAX, &unmapped) == 0);
        CHECK(unmapped == results[t].kept_copies * kFixedLen);
        CHECK(c.destroy(id) == 0);
    }
    // Only the shared IOAS is left, and no id was leaked: the next is 2.
    CHECK(c.ctx().objects().size() == 1);
    std::uint32_t next = 0;
    CHECK(c.ioas_alloc(&next) == 0);
    CHECK(next == 2);
}

TEST_CASE("concurrent IOAS_ALLOC and DESTROY never share an id and reuse the lowest",
          "[dispatch][concurrency]")
{
    constexpr unsigned kThreads = 4;
    constexpr unsigned kIterations = 1000;
    core::CoreServices services;
    Client c(services, Client::make_caller(4 << 20));
    LiveIds live;
    std::vector<Log> logs(kThreads);
    std::atomic<std::uint32_t> max_id{0};

    auto worker = [&](unsigned t) {
        Port port(c, t + 1);
        std::vector<std::uint32_t> mine;
        for (unsigned i = 0; i < kIterations && logs[t].errors.empty(); ++i) {
            std::uint32_t id = 0;
            if (int rc = port.alloc(&id)) {
                logs[t].fail("alloc: ", rc);
                break;
            }
            if (!live.add(id))
                logs[t].fail("id ", id, " handed out twice");
            std::uint32_t seen = max_id.load();
            while (id > seen && !max_id.compare_exchange_weak(seen, id)) {
            }
            mine.push_back(id);
            // Hold up to 3 ids, freeing the oldest.
            if (mine.size() > 3) {
                live.remove(mine.front());
                if (int rc = port.destroy(mine.front()))
                    logs[t].fail("destroy ", mine.front(), ": ", rc);
                mine.erase(mine.begin());
            }
        }
        for (std::uint32_t id : mine) {
            live.remove(id);
            if (int rc = port.destroy(id))
                logs[t].fail("final destroy ", id, ": ", rc);
        }
    };
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < kThreads; ++t)
        threads.emplace_back(worker, t);
    for (auto& thread : threads)
        thread.join();

    for (unsigned t = 0; t < kThreads; ++t) {
        CAPTURE(t);
        CHECK(logs[t].errors == std::vector<std::string>{});
    }
    // Never more than 4 held per thread at once (3 kept + 1 new), so lowest-
    // free allocation keeps every id at or below 16.
    CHECK(max_id.load() <= kThreads * 4);
    CHECK(c.ctx().objects().empty());
    std::uint32_t id = 0;
    CHECK(c.ioas_alloc(&id) == 0);
    CHECK(id == 1);
}

TEST_CASE("contexts sharing one CoreServices pin and account in parallel", "[dispatch][concurrency]")
{
    constexpr unsigned kContexts = 2;
    constexpr unsigned kPins = 300;             // successful pins per context
    constexpr unsigned kMaxAttempts = 1000000;  // against a livelock
    constexpr std::uint64_t kPinPages = 32;
    constexpr std::uint64_t kLimitPages = 48;   // fits one pin, never two at once
    constexpr std::uint64_t kIova = 0x100000;

    core::CoreServices services;
    std::vector<std::shared_ptr<memory::BufferCaller>> callers;
    std::vector<std::unique_ptr<Client>> clients;
    for (unsigned i = 0; i < kContexts; ++i) {
        callers.push_back(Client::make_caller(4 << 20));
        callers.back()->set_memlock_limit(kLimitPages * kPage);
        clients.push_back(std::make_unique<Client>(services, callers.back()));
    }
    REQUIRE(callers[0]->uid() == callers[1]->uid()); // one per-user counter

    struct Result {
        Log log;
        unsigned pinned = 0;
        unsigned enomem = 0;
        std::uint64_t max_charged = 0;
    };
    std::vector<Result> results(kContexts);
    std::atomic<unsigned> ready{0};

    auto worker = [&](unsigned t) {
        // Arrives at the start line on every path, so no thread waits forever.
        struct Arrival {
            std::atomic<unsigned>& count;
            bool done = false;
            void now()
            {
                if (!std::exchange(done, true))
                    ++count;
            }
            ~Arrival() { now(); }
        } arrival{ready};

        Client& c = *clients[t];
        Result& r = results[t];
        Port port(c, 1);
        std::uint32_t ioas = 0;
        if (int rc = port.alloc(&ioas); rc || ioas != 1) // ids are per context
            return r.log.fail("alloc: rc ", rc, " id ", ioas);
        std::uint64_t iova = kIova;
        if (int rc = port.map(ioas, kBufferAddr, kPinPages * kPage, &iova, true))
            return r.log.fail("map: ", rc);
        std::uint32_t access_id = 0;
        {
            std::lock_guard guard(c.ctx().lock());
            if (int rc = core::access_create(c.ctx(), ioas, 1, nullptr, &access_id))
                return r.log.fail("access_create: ", rc);
        }
        arrival.now();
        while (ready.load() < kContexts)
            std::this_thread::yield();

        for (unsigned attempt = 0; r.pinned < kPins && attempt < kMaxAttempts && r.log.errors.empty();
             ++attempt) {
            std::unique_lock guard(c.ctx().lock());
            auto* access = c.ctx().objects().find_as<core::Access>(access_id);
            std::vector<std::uint64_t> phys;
            int rc = access->pin_pages(kIova, kPinPages * kPage, attempt % 2 == 0, &phys);
            if (rc == -ENOMEM) {
                ++r.enomem;
                guard.unlock();
                std::this_thread::yield();
                continue;
            }
            if (rc) {
                r.log.fail("pin ", attempt, ": ", rc);
                break;
            }
            ++r.pinned;
            r.max_charged = std::max(r.max_charged, services.accounting.user_pages(callers[t]->uid()));
            // Every physical page resolves back to this context's pages.
            const auto* area = c.ctx().objects().find_as<core::Ioas>(ioas)->iopt().find_area(kIova);
            if (phys.size() != kPinPages)
                r.log.fail("pin ", attempt, " gave ", phys.size(), " pages");
            for (std::size_t p = 0; p < phys.size(); ++p) {
                auto resolved = services.phys.resolve(phys[p]);
                if (!resolved || resolved->backing != area->pages.get() ||
                    resolved->offset != p * kPage)
                    r.log.fail("pin ", attempt, " page ", p, " resolves elsewhere");
            }
            access->unpin_pages(kIova, kPinPages * kPage);
        }
        std::uint64_t unmapped = 0;
        if (int rc = port.unmap(ioas, 0, UINT64_MAX, &unmapped); rc || unmapped != kPinPages * kPage)
            r.log.fail("unmap all: rc ", rc, " bytes ", unmapped);
    };

    std::vector<std::thread> threads;
    for (unsigned t = 0; t < kContexts; ++t)
        threads.emplace_back(worker, t);
    for (auto& thread : threads)
        thread.join();

    for (unsigned t = 0; t < kContexts; ++t) {
        CAPTURE(t, results[t].enomem);
        CHECK(results[t].log.errors == std::vector<std::string>{});
        CHECK(results[t].pinned == kPins);
        // The shared per-user counter never went past the limit.
        CHECK(results[t].max_charged >= kPinPages);
        CHECK(results[t].max_charged <= kLimitPages);
    }
    CHECK(services.accounting.user_pages(callers[0]->uid()) == 0);
    CHECK(services.phys.reserved_pages() == 0);

    // Pin again in both and close the contexts with the pins held: the
    // shared services come back clean.
    for (unsigned t = 0; t < kContexts; ++t) {
        Client& c = *clients[t];
        callers[t]->set_memlock_limit(UINT64_MAX);
        std::uint64_t iova = kIova;
        REQUIRE(c.map_fixed(1, kBufferAddr, kPinPages * kPage, iova) == 0);
        auto* access = c.ctx().objects().find_as<core::Access>(2);
        REQUIRE(access != nullptr);
        REQUIRE(access->pin_pages(kIova, kPinPages * kPage, true, nullptr) == 0);
    }
    CHECK(services.accounting.user_pages(callers[0]->uid()) == kContexts * kPinPages);
    CHECK(services.phys.reserved_pages() == kContexts * kPinPages);
    clients.clear();
    CHECK(services.accounting.user_pages(callers[0]->uid()) == 0);
    CHECK(services.phys.reserved_pages() == 0);
}
