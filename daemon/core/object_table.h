// Ids for a context's objects: allocated lowest-free-first from 1, as the
// kernel's ALLOC1 xarray does, so programs that predict ids keep working.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>

#include "object.h"

namespace ioasid::core {

class ObjectTable {
public:
    // The kernel's ids are 31-bit.
    static constexpr std::uint32_t kMaxId = 0x7fffffff;

    ObjectTable() = default;
    ObjectTable(const ObjectTable&) = delete;
    ObjectTable& operator=(const ObjectTable&) = delete;
    ~ObjectTable();

    // An id held for an object under construction: invisible to lookups,
    // returned to the pool unless published.
    [[nodiscard]] std::uint32_t reserve_id();
    void unreserve_id(std::uint32_t id);
    void publish(std::uint32_t id, std::unique_ptr<Object> object);

    // nullptr when absent, reserved, or of another type.
    [[nodiscard]] Object* find(std::uint32_t id, ObjectType type) const;
    template <typename T>
    [[nodiscard]] T* find_as(std::uint32_t id) const
    {
        return static_cast<T*>(find(id, T::kType));
    }

    // IOMMU_DESTROY: -ENOENT for an unknown id, -EBUSY while others use it.
    // `before_free` runs after the object left the table, before it is freed.
    [[nodiscard]] int destroy(std::uint32_t id,
                              const std::function<void(Object&)>& before_free = {});

    // An object whose creator keeps its own reference (an access, held by
    // the code that uses it) is destroyed by that creator: the reference is
    // dropped, then the object is destroyed as by IOMMU_DESTROY.
    void add_owner_reference(Object& object) { ++object.users_; }
    [[nodiscard]] int destroy_owned(std::uint32_t id,
                                    const std::function<void(Object&)>& before_free = {});

    // Context release: frees leaves first until nothing is left.
    void destroy_all();

    [[nodiscard]] bool empty() const { return slots_.empty(); }
    [[nodiscard]] std::size_t size() const { return slots_.size(); }
    void for_each(const std::function<void(const Object&)>& fn) const;

private:
    std::map<std::uint32_t, std::unique_ptr<Object>> slots_; // null = reserved
    std::set<std::uint32_t> freed_;
    std::uint32_t next_ = 1;
};

} // namespace ioasid::core

namespace ioasid::core {

// An object being built: its id is held but invisible. publish() makes it
// visible; otherwise the destructor frees it and returns the id, the way
// iommufd_object_abort_and_destroy() undoes a failed ioctl.
template <typename T>
class PendingObject {
public:
    PendingObject(ObjectTable& table, std::unique_ptr<T> object)
        : table_(&table), id_(table.reserve_id()), object_(std::move(object))
    {
    }
    PendingObject(const PendingObject&) = delete;
    PendingObject& operator=(const PendingObject&) = delete;
    ~PendingObject()
    {
        if (table_ && id_)
            table_->unreserve_id(id_);
    }

    // 0 when the id space is exhausted.
    [[nodiscard]] std::uint32_t id() const { return id_; }
    T& operator*() const { return *object_; }
    T* operator->() const { return object_.get(); }

    T& publish()
    {
        T& object = *object_;
        table_->publish(std::exchange(id_, 0), std::move(object_));
        return object;
    }

private:
    ObjectTable* table_ = nullptr;
    std::uint32_t id_ = 0;
    std::unique_ptr<T> object_;
};

} // namespace ioasid::core
