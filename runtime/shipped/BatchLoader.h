//===- BatchLoader.h - batches assembled ahead of the step ------*- C++ -*-===//
//
// A training step should never wait for its data. BatchLoader runs a
// producer (decode, crop, normalise: assembleBatch) for batches 0, 1, 2, ...
// on threads of its own, up to `depth` batches ahead of the one the step
// takes, and hands them out in order. Each batch is a function of its index
// alone (its examples and augmentation come from the seed, the epoch and the
// step), so the batches are the same whatever the threads' timing.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_RUNTIME_SHIPPED_BATCHLOADER_H
#define QDSL_RUNTIME_SHIPPED_BATCHLOADER_H

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace qdsl::rt {

class BatchLoader {
public:
  /// Fills batch `index`; false with `error` when it cannot.
  using Producer = std::function<bool(int64_t index, float *images, int32_t *labels,
                                      std::string &error)>;

  /// Batches 0 .. count - 1 of `imageFloats` floats and `labelCount`
  /// labels, made by `threads` threads, at most `depth` (≥ threads) ahead.
  BatchLoader(Producer produce, int64_t count, size_t imageFloats, size_t labelCount,
              int threads, int depth);
  ~BatchLoader();
  BatchLoader(const BatchLoader &) = delete;
  BatchLoader &operator=(const BatchLoader &) = delete;

  /// Waits for the next batch and copies it out; false with the producer's
  /// error (the first one, for this batch or an earlier one).
  bool next(float *images, int32_t *labels, std::string &error);

  /// Seconds next() spent waiting for a batch not yet made.
  double waitedSeconds() const { return waited; }

private:
  struct Slot {
    int64_t index = -1;  // the batch it holds once ready
    bool ready = false, ok = true;
    std::string error;
    std::vector<float> images;
    std::vector<int32_t> labels;
  };
  void work();
  /// Stops and joins the workers.
  void stop();

  Producer produce;
  const int64_t count;
  std::vector<Slot> slots;
  std::vector<std::thread> workers;
  std::mutex mutex;
  std::condition_variable changed;
  int64_t claimed = 0;   // batches handed to workers
  int64_t consumed = 0;  // batches taken by next()
  bool stopping = false;
  double waited = 0;
};

} // namespace qdsl::rt

#endif // QDSL_RUNTIME_SHIPPED_BATCHLOADER_H
