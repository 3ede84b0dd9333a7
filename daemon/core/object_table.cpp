#include "object_table.h"

#include <cassert>
#include <cerrno>
#include <vector>

namespace ioasid::core {

ObjectTable::~ObjectTable()
{
    destroy_all();
}

std::uint32_t ObjectTable::reserve_id()
{
    std::uint32_t id;
    if (!freed_.empty()) {
        id = *freed_.begin();
        freed_.erase(freed_.begin());
    } else {
        if (next_ > kMaxId)
            return 0;
        id = next_++;
    }
    slots_.emplace(id, nullptr);
    return id;
}

void ObjectTable::unreserve_id(std::uint32_t id)
{
    auto it = slots_.find(id);
    assert(it != slots_.end() && !it->second);
    slots_.erase(it);
    freed_.insert(id);
}

void ObjectTable::publish(std::uint32_t id, std::unique_ptr<Object> object)
{
    auto it = slots_.find(id);
    assert(it != slots_.end() && !it->second);
    object->id_ = id;
    it->second = std::move(object);
}

Object* ObjectTable::find(std::uint32_t id, ObjectType type) const
{
    auto it = slots_.find(id);
    if (it == slots_.end() || !it->second || it->second->type() != type)
        return nullptr;
    return it->second.get();
}

int ObjectTable::destroy(std::uint32_t id, const std::function<void(Object&)>& before_free)
{
    auto it = slots_.find(id);
    if (it == slots_.end() || !it->second)
        return -ENOENT;
    if (it->second->users_ != 1)
        return -EBUSY;
    std::unique_ptr<Object> object = std::move(it->second);
    slots_.erase(it);
    freed_.insert(id);
    object->users_ = 0;
    if (before_free)
        before_free(*object);
    return 0;
}

int ObjectTable::destroy_owned(std::uint32_t id, const std::function<void(Object&)>& before_free)
{
    auto it = slots_.find(id);
    if (it == slots_.end() || !it->second)
        return -ENOENT;
    assert(it->second->users_ >= 2);
    --it->second->users_;
    int rc = destroy(id, before_free);
    if (rc)
        ++slots_.find(id)->second->users_;
    return rc;
}

void ObjectTable::destroy_all()
{
    // Destroying a leaf drops the users of what it referenced, which turns
    // those into leaves for the next pass. A pass that frees nothing means
    // a reference cycle, which the object graph never forms.
    while (!slots_.empty()) {
        std::vector<std::unique_ptr<Object>> leaves;
        for (auto it = slots_.begin(); it != slots_.end();) {
            if (!it->second || it->second->users_ == 1) {
                if (it->second)
                    leaves.push_back(std::move(it->second));
                freed_.insert(it->first);
                it = slots_.erase(it);
            } else {
                ++it;
            }
        }
        if (leaves.empty()) {
            assert(!"object reference cycle");
            break;
        }
        for (auto& leaf : leaves)
            leaf->users_ = 0;
        leaves.clear();
    }
}

void ObjectTable::for_each(const std::function<void(const Object&)>& fn) const
{
    for (const auto& [id, object] : slots_)
        if (object)
            fn(*object);
}

} // namespace ioasid::core
