// Runs the fuzz target on seeded random inputs where libFuzzer is not
// available (gcc builds, CI). Usage: dispatch-fuzz-random [runs] [seed]
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv)
{
    unsigned long runs = argc > 1 ? std::strtoul(argv[1], nullptr, 0) : 20000;
    unsigned long seed = argc > 2 ? std::strtoul(argv[2], nullptr, 0) : 1;
    std::mt19937_64 rng(seed);
    std::vector<std::uint8_t> input;
    for (unsigned long i = 0; i < runs; ++i) {
        input.resize(rng() % 1024);
        for (auto& b : input)
            b = static_cast<std::uint8_t>(rng());
        LLVMFuzzerTestOneInput(input.data(), input.size());
    }
    std::printf("%lu inputs, seed %lu: no crash, nothing left pinned\n", runs, seed);
    return 0;
}
