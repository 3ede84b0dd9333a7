// One mapping in an IOAS: a window of IOVA onto a slice of a Pages object.
#pragma once

#include <boost/intrusive/set.hpp>

#include <cstdint>
#include <memory>

#include "iova.h"
#include "pages.h"

namespace ioasid::core {

struct Area : boost::intrusive::set_base_hook<> {
    IovaRange iova{};
    std::shared_ptr<Pages> pages;
    std::uint64_t start_byte = 0; // where iova.first lands, counted from pages->uptr()
    bool readable = false;
    bool writable = false;
    std::uint32_t num_accesses = 0; // pins taken through accesses
    // The pages are pinned once for all domains of the IOAS, while it has any.
    bool pinned_for_domains = false;
    // Set once an unmap has asked the holders to let go; from then on no
    // new pin or copy may start on the area.
    bool prevent_access = false;

    [[nodiscard]] std::uint64_t length() const { return iova.last - iova.first + 1; }
    [[nodiscard]] std::uint64_t page_offset() const { return start_byte % kPageSize; }
    [[nodiscard]] std::uint64_t first_index() const { return start_byte / kPageSize; }
    [[nodiscard]] std::uint64_t last_index() const { return (start_byte + length() - 1) / kPageSize; }
    // The byte of `pages` that IOVA `at` (inside the area) names.
    [[nodiscard]] std::uint64_t byte_at(std::uint64_t at) const { return start_byte + (at - iova.first); }

    friend bool operator<(const Area& a, const Area& b) { return a.iova.first < b.iova.first; }
};

// A piece of a Pages object, as IOAS_COPY carries it from one IOAS to another.
struct PagesSlice {
    std::shared_ptr<Pages> pages;
    std::uint64_t start_byte;
    std::uint64_t length;
};

} // namespace ioasid::core
