//===- ArenaPlanner.h - offsets in one arena from lifetimes -----*- C++ -*-===//
//
// Lays buffers out in one arena so that buffers whose lifetimes overlap
// never share bytes, and those that do not may: the planner behind
// `qdsl stats --train` (passes/analysis/MemoryPlan.cpp) and behind the activation
// memory of every generated project (qdsl_model.cpp), so that what qdsl
// plans is what the generated programs allocate.
//
// Plain C++ (generated projects carry it).
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_RUNTIME_SHIPPED_ARENAPLANNER_H
#define QDSL_RUNTIME_SHIPPED_ARENAPLANNER_H

#include <cstdint>
#include <vector>

namespace qdsl::rt {

struct ArenaBuffer {
  uint64_t bytes = 0;
  /// Live from step `first` to step `last`, both included.
  int64_t first = 0, last = 0;
  /// Set by placeBuffers.
  uint64_t offset = 0;
  /// Buffers of one group (>= 0) and different members are never live in
  /// the same run (the candidates of one search layer of a supernet, of
  /// which one runs): they may share bytes whatever their lifetimes.
  int64_t group = -1, member = -1;
};

/// Buffers start at multiples of this (a cache line, and what vector loads
/// want).
inline constexpr uint64_t kArenaAlignment = 64;
inline uint64_t alignToArena(uint64_t bytes) {
  return (bytes + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment;
}

/// Gives every buffer an offset (largest first, each at the lowest offset
/// free for its whole lifetime) and returns the arena's size. Sizes must be
/// multiples of kArenaAlignment. Deterministic: ties keep the input order.
/// Exclusive buffers (ArenaBuffer::group) never conflict with each other.
uint64_t placeBuffers(std::vector<ArenaBuffer> &buffers);

/// The most bytes live at one time: no layout needs less.
uint64_t liveBytesBound(const std::vector<ArenaBuffer> &buffers);

} // namespace qdsl::rt

#endif // QDSL_RUNTIME_SHIPPED_ARENAPLANNER_H
