// ioasid-bench dma: GB/s of emulated DMA through a VT-d unit, in-process.
#pragma once

namespace ioasid::bench {

int run_dma_bench(int argc, char** argv);

} // namespace ioasid::bench
