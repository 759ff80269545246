// The machine's fp32 FMA peak: independent AVX2 FMA chains on 1 and on N
// threads, no memory traffic. Benchmarks report their speed as a share of
// this figure.
//
//   fma_peak [threads]     prints {"threads": N, "gflops": ...} per count
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

// 12 independent accumulators: enough to cover FMA latency on two ports.
float chain(long iterations) {
    __m256 acc[12];
    const __m256 a = _mm256_set1_ps(0.9999f), b = _mm256_set1_ps(0.0001f);
    for (int i = 0; i < 12; ++i)
        acc[i] = _mm256_set1_ps(static_cast<float>(i));
    for (long k = 0; k < iterations; ++k)
        for (int i = 0; i < 12; ++i)
            acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    __m256 sum = acc[0];
    for (int i = 1; i < 12; ++i)
        sum = _mm256_add_ps(sum, acc[i]);
    float out[8];
    _mm256_storeu_ps(out, sum);
    return out[0];
}

double measure(int threads) {
    const long iterations = 50000000 / 12;
    double best = 0;
    for (int repeat = 0; repeat < 5; ++repeat) {
        std::vector<std::thread> workers;
        std::vector<float> sink(threads);
        auto start = std::chrono::steady_clock::now();
        for (int t = 0; t < threads; ++t)
            workers.emplace_back([&, t] { sink[t] = chain(iterations); });
        for (auto &w : workers)
            w.join();
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        // 12 chains × 8 lanes × 2 flops per FMA.
        best = std::max(best, threads * iterations * 12 * 16.0 / seconds / 1e9);
        if (sink[0] == 12345.0f)
            std::puts("");
    }
    return best;
}

}  // namespace

int main(int argc, char **argv) {
    int threads = argc > 1 ? std::atoi(argv[1]) : 2;
    std::printf("{\"threads_1_gflops\": %.1f, \"threads\": %d, \"gflops\": %.1f}\n", measure(1),
                threads, measure(threads));
    return 0;
}
