// The arena planner: buffers alive at the same time never share bytes,
// buffers that are not may, and the arena is never below the live bound.
#include "runtime/shipped/ArenaPlanner.h"

#include <gtest/gtest.h>

#include <random>

using qdsl::rt::ArenaBuffer;

namespace {

bool overlapInTime(const ArenaBuffer &a, const ArenaBuffer &b) {
  return a.first <= b.last && b.first <= a.last;
}

bool overlapInMemory(const ArenaBuffer &a, const ArenaBuffer &b) {
  return a.offset < b.offset + b.bytes && b.offset < a.offset + a.bytes;
}

TEST(ArenaPlanner, ReusesMemoryOfBuffersThatAreDead) {
  // A chain: each buffer is read by the next step only.
  std::vector<ArenaBuffer> chain;
  for (int i = 0; i < 6; ++i)
    chain.push_back({1024, i, i + 1, 0});
  EXPECT_EQ(qdsl::rt::placeBuffers(chain), 2048u);
  EXPECT_EQ(qdsl::rt::liveBytesBound(chain), 2048u);
}

TEST(ArenaPlanner, NeverOverlapsLiveBuffers) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<ArenaBuffer> buffers;
    for (int i = 0; i < 40; ++i) {
      int64_t first = rng() % 30;
      buffers.push_back({qdsl::rt::alignToArena(1 + rng() % 5000), first,
                         first + int64_t(rng() % 10), 0});
    }
    uint64_t arena = qdsl::rt::placeBuffers(buffers);
    EXPECT_GE(arena, qdsl::rt::liveBytesBound(buffers));
    for (size_t i = 0; i < buffers.size(); ++i) {
      EXPECT_EQ(buffers[i].offset % qdsl::rt::kArenaAlignment, 0u);
      EXPECT_LE(buffers[i].offset + buffers[i].bytes, arena);
      for (size_t j = i + 1; j < buffers.size(); ++j)
        if (overlapInTime(buffers[i], buffers[j]))
          EXPECT_FALSE(overlapInMemory(buffers[i], buffers[j]))
              << "buffers " << i << " and " << j << " share bytes while both live";
    }
  }
}

} // namespace
