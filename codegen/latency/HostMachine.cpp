//===- HostMachine.cpp - where a device profile was measured --------------===//

#include "codegen/latency/HostMachine.h"

#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
#include <thread>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#ifndef QDSL_VERSION
#define QDSL_VERSION "unknown"
#endif

namespace qdsl::cost {

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// Independent FMA chains, no memory traffic: 12 accumulators cover the
/// latency of two FMA ports. Returns a value so the work is not dropped.
#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) float fmaChainsAvx2(long iterations) {
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

/// The same on 16-float AVX-512 vectors (the x86-64-avx512 target's width).
__attribute__((target("avx512f"))) float fmaChainsAvx512(long iterations) {
  __m512 acc[12];
  const __m512 a = _mm512_set1_ps(0.9999f), b = _mm512_set1_ps(0.0001f);
  for (int i = 0; i < 12; ++i)
    acc[i] = _mm512_set1_ps(static_cast<float>(i));
  for (long k = 0; k < iterations; ++k)
    for (int i = 0; i < 12; ++i)
      acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  __m512 sum = acc[0];
  for (int i = 1; i < 12; ++i)
    sum = _mm512_add_ps(sum, acc[i]);
  return _mm512_reduce_add_ps(sum);
}
#endif

/// The portable version: 12 chains of 4 lanes (the compiler vectorises it
/// to 128-bit multiply-adds on any target).
float fmaChainsPortable(long iterations) {
  float acc[12][4];
  for (int i = 0; i < 12; ++i)
    for (int l = 0; l < 4; ++l)
      acc[i][l] = static_cast<float>(i + l);
  for (long k = 0; k < iterations; ++k)
    for (int i = 0; i < 12; ++i)
      for (int l = 0; l < 4; ++l)
        acc[i][l] = std::fma(acc[i][l], 0.9999f, 0.0001f);
  float sum = 0;
  for (int i = 0; i < 12; ++i)
    for (int l = 0; l < 4; ++l)
      sum += acc[i][l];
  return sum;
}

bool hasAvx2Fma() {
#if defined(__x86_64__)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

/// Runs `work(thread)` on `threads` threads at once; wall seconds.
template <typename Work> double timeThreads(int threads, Work work) {
  std::vector<std::thread> workers;
  auto start = Clock::now();
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&, t] { work(t); });
  for (std::thread &w : workers)
    w.join();
  return secondsSince(start);
}

std::string cpuModelName() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0 || line.rfind("Model", 0) == 0) {
      size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(colon + 1);
        name.erase(0, name.find_first_not_of(" \t"));
        if (!name.empty())
          return name;
      }
    }
  return "unknown";
}

std::string utcNow() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

} // namespace

const char *qdslVersion() { return QDSL_VERSION; }

double measureFmaPeak(int threads, double seconds, int vectorFloats) {
  if (threads < 1)
    return 0;
#if defined(__x86_64__)
  const bool avx512 = vectorFloats >= 16 && __builtin_cpu_supports("avx512f");
#else
  const bool avx512 = false;
#endif
  const bool avx2 = !avx512 && hasAvx2Fma();
  // Floating-point operations per iteration and thread: 12 chains of 16
  // (AVX-512), 8 (AVX2) or 4 lanes, 2 per multiply-add.
  double flopsPerIteration = 12.0 * (avx512 ? 16 : avx2 ? 8 : 4) * 2;
  auto chains = [avx512, avx2](long iterations) {
#if defined(__x86_64__)
    if (avx512)
      return fmaChainsAvx512(iterations);
    if (avx2)
      return fmaChainsAvx2(iterations);
#endif
    (void)avx512;
    (void)avx2;
    return fmaChainsPortable(iterations);
  };
  // Size one run to about a fifth of the time asked for, from a short
  // calibration run; keep the best of five (other tenants only slow a run).
  long iterations = 100000;
  double probe = timeThreads(1, [&](int) { volatile float sink = chains(iterations); (void)sink; });
  if (probe > 0)
    iterations = std::max(10000L, static_cast<long>(iterations * (seconds / 5) / probe));
  double best = 0;
  for (int repeat = 0; repeat < 5; ++repeat) {
    std::vector<float> sink(threads);
    double elapsed = timeThreads(threads, [&](int t) { sink[t] = chains(iterations); });
    if (elapsed > 0)
      best = std::max(best, threads * iterations * flopsPerIteration / elapsed / 1e9);
  }
  return best;
}

double measureBandwidth(int threads) {
  if (threads < 1)
    return 0;
  // 3 arrays of 64 MiB: far beyond any last-level cache of this class.
  constexpr size_t kFloats = size_t(16) << 20;
  std::unique_ptr<float[]> a(new float[kFloats]), b(new float[kFloats]), c(new float[kFloats]);
  auto range = [&](int t) {
    size_t per = kFloats / threads;
    return std::make_pair(t * per, t + 1 == threads ? kFloats : (t + 1) * per);
  };
  // First touch from the threads that use the pages.
  timeThreads(threads, [&](int t) {
    auto [lo, hi] = range(t);
    std::fill(a.get() + lo, a.get() + hi, 0.0f);
    std::fill(b.get() + lo, b.get() + hi, 1.0f);
    std::fill(c.get() + lo, c.get() + hi, 2.0f);
  });
  double best = 0;
  for (int repeat = 0; repeat < 5; ++repeat) {
    double elapsed = timeThreads(threads, [&](int t) {
      auto [lo, hi] = range(t);
      float *x = a.get(), *y = b.get(), *z = c.get();
      for (size_t i = lo; i < hi; ++i)
        x[i] = y[i] + 0.5f * z[i];
    });
    // Two streams read, one written (and read for ownership: not counted).
    if (elapsed > 0)
      best = std::max(best, 3.0 * kFloats * sizeof(float) / elapsed / 1e9);
  }
  volatile float sink = a[kFloats / 2];
  (void)sink;
  return best;
}

MachineRecord describeThisMachine(int threads, const std::string &generators,
                                  const std::string &halideVersion, int vectorFloats) {
  MachineRecord m;
  m.cpuModel = cpuModelName();
  m.logicalCpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  m.threads = threads;
  m.fmaPeakGflops = std::round(measureFmaPeak(threads, 0.3, vectorFloats) * 10) / 10;
  m.bandwidthGBs = std::round(measureBandwidth(threads) * 10) / 10;
  m.qdslVersion = qdslVersion();
  m.halideVersion = halideVersion;
  m.generators = generators;
  m.measuredAt = utcNow();
  return m;
}

std::vector<std::string> machineDifferences(const MachineRecord &recorded,
                                            const MachineRecord &here, double tolerance) {
  std::vector<std::string> differences;
  auto differs = [](const std::string &a, const std::string &b) {
    return !a.empty() && !b.empty() && a != "unknown" && b != "unknown" && a != b;
  };
  if (differs(recorded.cpuModel, here.cpuModel))
    differences.push_back("CPU '" + here.cpuModel + "' here, '" + recorded.cpuModel +
                          "' when profiled");
  if (recorded.logicalCpus && here.logicalCpus && recorded.logicalCpus != here.logicalCpus)
    differences.push_back(llvm::formatv("{0} CPUs here, {1} when profiled", here.logicalCpus,
                                        recorded.logicalCpus)
                              .str());
  if (recorded.threads && here.threads && recorded.threads != here.threads)
    differences.push_back(llvm::formatv("{0} threads here, {1} when profiled", here.threads,
                                        recorded.threads)
                              .str());
  auto speed = [&](double then, double now, const char *what, const char *unit,
                   double tolerance) {
    if (then > 0 && now > 0 && std::fabs(now / then - 1) > tolerance) {
      char text[160];
      std::snprintf(text, sizeof text, "%s %.0f %s here, %.0f when profiled (%+.0f%%)", what,
                    now, unit, then, (now / then - 1) * 100);
      differences.push_back(text);
    }
  };
  speed(recorded.fmaPeakGflops, here.fmaPeakGflops, "FMA peak", "GFLOP/s", tolerance);
  // Bandwidth moves with other tenants' traffic on a shared machine, and
  // only the memory-bound part of a pass follows it: twice the tolerance.
  speed(recorded.bandwidthGBs, here.bandwidthGBs, "memory bandwidth", "GB/s", 2 * tolerance);
  if (differs(recorded.generators, here.generators))
    differences.push_back("the kernel generators changed since profiling (qdsl " +
                          recorded.qdslVersion + " then, " + here.qdslVersion + " now)");
  if (differs(recorded.halideVersion, here.halideVersion))
    differences.push_back("Halide " + here.halideVersion + " here, " + recorded.halideVersion +
                          " when profiled");
  return differences;
}

} // namespace qdsl::cost
