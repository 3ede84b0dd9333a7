// The operations of IOMMU_TEST_CMD, one handler each, private to dispatch.
// selftest_commands.cpp decodes the command and picks the handler by op;
// each handler lives in the file of the object it works on.
#pragma once

#include <ioasid/selftest.h>

#include "command.h"

namespace ioasid::dispatch {

// Gets the whole command, already copied in and zero-extended. A handler
// that answers (the kernel's iommufd_ucmd_respond) calls cmd.respond(test).
using TestOpHandler = int (*)(Command& cmd, iommu_test_cmd& test);

int test_add_reserved(Command& cmd, iommu_test_cmd& test);
int test_mock_domain(Command& cmd, iommu_test_cmd& test);
int test_mock_domain_flags(Command& cmd, iommu_test_cmd& test);
int test_mock_domain_replace(Command& cmd, iommu_test_cmd& test);
int test_md_check_map(Command& cmd, iommu_test_cmd& test);
int test_md_check_refs(Command& cmd, iommu_test_cmd& test);
int test_set_temp_memory_limit(Command& cmd, iommu_test_cmd& test);
int test_dirty(Command& cmd, iommu_test_cmd& test);
int test_create_access(Command& cmd, iommu_test_cmd& test);
int test_destroy_access_pages(Command& cmd, iommu_test_cmd& test);
int test_access_pages(Command& cmd, iommu_test_cmd& test);
int test_access_rw(Command& cmd, iommu_test_cmd& test);
int test_access_replace_ioas(Command& cmd, iommu_test_cmd& test);
int test_md_check_iotlb(Command& cmd, iommu_test_cmd& test);
int test_trigger_iopf(Command& cmd, iommu_test_cmd& test);

} // namespace ioasid::dispatch
