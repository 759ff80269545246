//===- Parallel.h - elementwise loops on a few threads ------------*- C++ -*-===//
//
// The training program's own loops outside the kernels (AdamW, clipping,
// packing weights for the kernels) over large tensors. Elementwise work
// only: each thread owns a contiguous range, so the result does not depend
// on the number of threads. Header-only: generated projects carry it.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_RUNTIME_SHIPPED_PARALLEL_H
#define QDSL_RUNTIME_SHIPPED_PARALLEL_H

#include <algorithm>
#include <cstddef>
#include <thread>
#include <vector>

namespace qdsl::rt {

/// Threads forEachRange uses (0: one per core).
inline int &workerThreads() {
  static int threads = 0;
  return threads;
}

inline void setWorkerThreads(int threads) { workerThreads() = std::max(0, threads); }

/// Runs `body(begin, end)` over contiguous ranges that cover [0, n), on
/// several threads when each gets at least `minimumPerThread` items
/// (starting a thread costs tens of microseconds).
template <typename Body>
void forEachRange(size_t n, Body body, size_t minimumPerThread = size_t(1) << 16) {
  size_t threads = workerThreads() > 0 ? size_t(workerThreads())
                                       : std::max(1u, std::thread::hardware_concurrency());
  threads = std::min(threads, std::max<size_t>(1, n / std::max<size_t>(1, minimumPerThread)));
  if (threads <= 1) {
    body(size_t(0), n);
    return;
  }
  std::vector<std::thread> pool;
  const size_t per = (n + threads - 1) / threads;
  for (size_t t = 1; t < threads; ++t)
    pool.emplace_back(body, std::min(n, t * per), std::min(n, (t + 1) * per));
  body(size_t(0), std::min(n, per));
  for (std::thread &thread : pool)
    thread.join();
}

} // namespace qdsl::rt

#endif // QDSL_RUNTIME_SHIPPED_PARALLEL_H
