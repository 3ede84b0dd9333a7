// The VT-d first-stage paging-entry format (VT-d specification, section
// 9.7, "First-Stage Paging Entries"): x86-64 4- and 5-level paging, the
// format hwmodels/common/x86_page_table.h describes, with VT-d's leaves as
// the Linux intel driver writes them (D pre-set only in writable leaves).
// It is the table the driver gives its own DMA domains and the one a guest
// hands over for a nested domain.
#pragma once

#include "hwmodels/common/x86_page_table.h"

namespace ioasid::hw::vtd {

using FirstStageFormat = X86PageTableFormat;

} // namespace ioasid::hw::vtd
