#include <catch2/catch.hpp>

#include "core/object_table.h"

using namespace ioasid::core;

namespace {

struct Thing final : Object {
    static constexpr ObjectType kType = ObjectType::ioas;
    explicit Thing(int* alive) : Object(kType), alive_(alive) { ++*alive_; }
    ~Thing() override { --*alive_; }
    ObjectRef<Thing> ref;
    int* alive_;
};

std::uint32_t add(ObjectTable& table, int* alive)
{
    PendingObject<Thing> pending(table, std::make_unique<Thing>(alive));
    std::uint32_t id = pending.id();
    pending.publish();
    return id;
}

} // namespace

TEST_CASE("ids start at 1 and the lowest free one is reused", "[core][objects]")
{
    int alive = 0;
    ObjectTable table;
    CHECK(add(table, &alive) == 1);
    CHECK(add(table, &alive) == 2);
    CHECK(add(table, &alive) == 3);
    CHECK(table.destroy(2) == 0);
    CHECK(table.destroy(1) == 0);
    CHECK(add(table, &alive) == 1);
    CHECK(add(table, &alive) == 2);
    CHECK(add(table, &alive) == 4);
    CHECK(table.destroy(0) == -ENOENT);
    CHECK(table.destroy(99) == -ENOENT);
    CHECK(alive == 4);
}

TEST_CASE("a pending object is invisible and gives its id back", "[core][objects]")
{
    int alive = 0;
    ObjectTable table;
    {
        PendingObject<Thing> pending(table, std::make_unique<Thing>(&alive));
        CHECK(pending.id() == 1);
        CHECK(table.find(1, ObjectType::ioas) == nullptr);
        CHECK(table.destroy(1) == -ENOENT);
    }
    CHECK(alive == 0);
    CHECK(add(table, &alive) == 1);
    CHECK(table.find(1, ObjectType::ioas) != nullptr);
    CHECK(table.find(1, ObjectType::access) == nullptr);
}

TEST_CASE("an object with users cannot be destroyed; release frees leaves first", "[core][objects]")
{
    int alive = 0;
    {
        ObjectTable table;
        std::uint32_t parent = add(table, &alive);
        std::uint32_t child = add(table, &alive);
        table.find_as<Thing>(child)->ref = ObjectRef<Thing>(*table.find_as<Thing>(parent));
        std::uint32_t grandchild = add(table, &alive);
        table.find_as<Thing>(grandchild)->ref = ObjectRef<Thing>(*table.find_as<Thing>(child));
        CHECK(table.find_as<Thing>(parent)->users() == 2);
        CHECK(table.destroy(parent) == -EBUSY);
        CHECK(table.destroy(child) == -EBUSY);
        CHECK(alive == 3);
        // The table goes away with a chain still linked: grandchild, child,
        // parent are freed in that order without a dangling reference.
    }
    CHECK(alive == 0);
}
