//===- ArenaPlanner.cpp - offsets in one arena from lifetimes -------------===//

#include "ArenaPlanner.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <utility>

namespace qdsl::rt {

uint64_t placeBuffers(std::vector<ArenaBuffer> &buffers) {
  std::vector<size_t> order(buffers.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return buffers[a].bytes > buffers[b].bytes;
  });
  uint64_t arena = 0;
  std::vector<size_t> placed;
  std::vector<std::pair<uint64_t, uint64_t>> taken;
  for (size_t i : order) {
    ArenaBuffer &b = buffers[i];
    taken.clear();
    for (size_t j : placed) {
      const ArenaBuffer &o = buffers[j];
      bool exclusive = b.group >= 0 && b.group == o.group && b.member != o.member;
      if (!exclusive && o.first <= b.last && b.first <= o.last)
        taken.push_back({o.offset, o.offset + o.bytes});
    }
    std::sort(taken.begin(), taken.end());
    uint64_t offset = 0;
    for (auto [begin, end] : taken) {
      if (offset + b.bytes <= begin)
        break;
      offset = std::max(offset, end);
    }
    b.offset = offset;
    arena = std::max(arena, offset + b.bytes);
    placed.push_back(i);
  }
  return arena;
}

uint64_t liveBytesBound(const std::vector<ArenaBuffer> &buffers) {
  std::map<int64_t, int64_t> delta;
  for (const ArenaBuffer &b : buffers) {
    delta[b.first] += int64_t(b.bytes);
    delta[b.last + 1] -= int64_t(b.bytes);
  }
  int64_t live = 0;
  uint64_t most = 0;
  for (auto [at, change] : delta) {
    live += change;
    most = std::max<uint64_t>(most, uint64_t(live));
  }
  return most;
}

} // namespace qdsl::rt
