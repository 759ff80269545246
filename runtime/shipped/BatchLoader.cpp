//===- BatchLoader.cpp - batches assembled ahead of the step --------------===//

#include "BatchLoader.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>
#include <new>

namespace qdsl::rt {

BatchLoader::BatchLoader(Producer produce, int64_t count, size_t imageFloats,
                         size_t labelCount, int threads, int depth)
    : produce(std::move(produce)), count(count) {
  threads = std::max(1, threads);
  slots.resize(static_cast<size_t>(std::max(depth, threads)));
  for (Slot &slot : slots) {
    slot.images.resize(imageFloats);
    slot.labels.resize(labelCount);
  }
  try {
    for (int i = 0; i < threads; ++i)
      workers.emplace_back([this] { work(); });
  } catch (...) {
    // The threads already started must be joined before the vector goes.
    stop();
    throw;
  }
}

BatchLoader::~BatchLoader() { stop(); }

void BatchLoader::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex);
    stopping = true;
  }
  changed.notify_all();
  for (std::thread &worker : workers)
    if (worker.joinable())
      worker.join();
}

void BatchLoader::work() {
  const int64_t depth = static_cast<int64_t>(slots.size());
  std::unique_lock<std::mutex> lock(mutex);
  while (true) {
    // The next batch to make, once its slot is free (the batch `depth`
    // before it taken).
    changed.wait(lock, [&] { return stopping || claimed >= count || claimed < consumed + depth; });
    if (stopping || claimed >= count)
      return;
    const int64_t index = claimed++;
    Slot &slot = slots[static_cast<size_t>(index % depth)];
    slot.index = index;
    slot.ready = false;
    lock.unlock();
    std::string error;
    bool ok = false;
    // An exception must not leave this thread (it would end the process):
    // it becomes the batch's error, reported by next() on the step's thread.
    try {
      ok = produce(index, slot.images.data(), slot.labels.data(), error);
    } catch (const std::bad_alloc &) {
      error = "out of memory assembling batch " + std::to_string(index) +
              (error.empty() ? std::string() : " (" + error + ")");
    } catch (const std::exception &e) {
      error = "assembling batch " + std::to_string(index) + ": " + e.what();
    }
    lock.lock();
    slot.ok = ok;
    slot.error = std::move(error);
    slot.ready = true;
    changed.notify_all();
  }
}

bool BatchLoader::next(float *images, int32_t *labels, std::string &error) {
  const int64_t depth = static_cast<int64_t>(slots.size());
  std::unique_lock<std::mutex> lock(mutex);
  if (consumed >= count) {
    error = "the loader has no batch left (all " + std::to_string(count) + " taken)";
    return false;
  }
  Slot &slot = slots[static_cast<size_t>(consumed % depth)];
  const auto start = std::chrono::steady_clock::now();
  changed.wait(lock, [&] { return slot.ready && slot.index == consumed; });
  waited += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!slot.ok) {
    error = slot.error;
    return false;
  }
  std::memcpy(images, slot.images.data(), slot.images.size() * sizeof(float));
  std::memcpy(labels, slot.labels.data(), slot.labels.size() * sizeof(int32_t));
  slot.ready = false;
  ++consumed;
  changed.notify_all();
  return true;
}

} // namespace qdsl::rt
