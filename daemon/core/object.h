// The base of every object a context hands out an id for.
//
// Reference rule, stated once: `users` counts the id table (1 while the
// object is published) plus every object or attachment that depends on it.
// IOMMU_DESTROY succeeds only when the table is the last user, so an object
// with dependents can never be freed under them. All counts change under
// the owning context's lock.
#pragma once

#include <cstdint>
#include <utility>

namespace ioasid::core {

enum class ObjectType {
    device,
    hwpt_paging,
    hwpt_nested,
    ioas,
    access,
    fault,
    selftest, // IOMMUFD_OBJ_SELFTEST: a mock device of IOMMU_TEST_CMD
};

class Object {
public:
    explicit Object(ObjectType type) : type_(type) {}
    virtual ~Object() = default;
    Object(const Object&) = delete;
    Object& operator=(const Object&) = delete;

    [[nodiscard]] ObjectType type() const { return type_; }
    [[nodiscard]] std::uint32_t id() const { return id_; }
    [[nodiscard]] std::uint32_t users() const { return users_; }

private:
    friend class ObjectTable;
    template <typename T> friend class ObjectRef;

    ObjectType type_;
    std::uint32_t id_ = 0;
    std::uint32_t users_ = 1;
};

// A counted reference from one object (or attachment) to another.
template <typename T>
class ObjectRef {
public:
    ObjectRef() = default;
    explicit ObjectRef(T& target) : target_(&target) { ++static_cast<Object&>(target).users_; }
    ObjectRef(ObjectRef&& other) noexcept : target_(std::exchange(other.target_, nullptr)) {}
    ObjectRef& operator=(ObjectRef&& other) noexcept
    {
        if (this != &other) {
            reset();
            target_ = std::exchange(other.target_, nullptr);
        }
        return *this;
    }
    ObjectRef(const ObjectRef&) = delete;
    ObjectRef& operator=(const ObjectRef&) = delete;
    ~ObjectRef() { reset(); }

    void reset()
    {
        if (target_)
            --static_cast<Object*>(std::exchange(target_, nullptr))->users_;
    }
    [[nodiscard]] T* get() const { return target_; }
    T* operator->() const { return target_; }
    T& operator*() const { return *target_; }
    explicit operator bool() const { return target_ != nullptr; }

private:
    T* target_ = nullptr;
};

} // namespace ioasid::core
