// ioasid-bench transport: what one cheap ioctl costs on each way in.
#pragma once

namespace ioasid::bench {

int run_transport_bench(int argc, char** argv);

} // namespace ioasid::bench
