//===- ArchitectureSampling.cpp - architectures drawn and evolved ---------===//

#include "codegen/latency/ArchitectureSampling.h"
#include "codegen/latency/ArchitectureDerivation.h"

#include "llvm/ADT/STLExtras.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>

using namespace llvm;

namespace qdsl::cost {

bool ArchitectureFilter::accepts(const std::vector<SpaceLatency> &spaces,
                                 ArrayRef<int64_t> picks) const {
  for (size_t d = 0; d < spaces.size(); ++d) {
    double ms = additiveLatency(spaces[d], picks) * 1e3;
    if (d < limitsMs.size() && ms > limitsMs[d])
      return false;
    if (d < targetMs.size() && std::fabs(ms / targetMs[d] - 1) > band)
      return false;
  }
  return true;
}

namespace {

constexpr double kEnumerable = 1e6;

double architectureCount(const std::vector<SpaceLatency> &spaces) {
  double count = 1;
  for (const SpaceLatency::Layer &layer : spaces.front().layers)
    count = std::min(count * double(layer.candidates.size()), 9.2e18);
  return count;
}

/// Every architecture `filter` accepts, in mixed-radix order.
std::vector<Architecture> enumerateAccepted(const std::vector<SpaceLatency> &spaces,
                                            const ArchitectureFilter &filter) {
  const std::vector<SpaceLatency::Layer> &layers = spaces.front().layers;
  std::vector<Architecture> accepted;
  Architecture picks(layers.size(), 0);
  for (;;) {
    if (filter.accepts(spaces, picks))
      accepted.push_back(picks);
    size_t l = 0;
    while (l < layers.size() &&
           ++picks[l] == static_cast<int64_t>(layers[l].candidates.size()))
      picks[l++] = 0;
    if (l == layers.size())
      return accepted;
  }
}

Architecture uniformArchitecture(const std::vector<SpaceLatency> &spaces, std::mt19937_64 &rng) {
  Architecture picks;
  for (const SpaceLatency::Layer &layer : spaces.front().layers)
    picks.push_back(std::uniform_int_distribution<int64_t>(
        0, static_cast<int64_t>(layer.candidates.size()) - 1)(rng));
  return picks;
}

} // namespace

std::vector<Architecture> sampleArchitectures(const std::vector<SpaceLatency> &spaces,
                                              const ArchitectureFilter &filter, size_t count,
                                              uint64_t seed,
                                              const std::vector<Architecture> &exclude) {
  std::mt19937_64 rng(seed);
  std::set<Architecture> excluded(exclude.begin(), exclude.end());
  std::vector<Architecture> out;
  if (architectureCount(spaces) <= kEnumerable) {
    std::vector<Architecture> accepted;
    for (Architecture &a : enumerateAccepted(spaces, filter))
      if (!excluded.count(a))
        accepted.push_back(std::move(a));
    // A partial Fisher–Yates shuffle: the first `count` are a uniform draw.
    for (size_t i = 0; i < accepted.size() && i < count; ++i) {
      size_t j = std::uniform_int_distribution<size_t>(i, accepted.size() - 1)(rng);
      std::swap(accepted[i], accepted[j]);
      out.push_back(accepted[i]);
    }
    return out;
  }
  for (int draw = 0; draw < 1000000 && out.size() < count; ++draw) {
    Architecture a = uniformArchitecture(spaces, rng);
    if (filter.accepts(spaces, a) && excluded.insert(a).second)
      out.push_back(std::move(a));
  }
  return out;
}

std::vector<ScoredArchitecture> evolveArchitectures(const std::vector<SpaceLatency> &spaces,
                                                    const ArchitectureFilter &filter,
                                                    const EvolutionOptions &options,
                                                    const ArchitectureScorer &scorer,
                                                    bool &exhaustive) {
  const size_t budget = options.population * (options.generations + 1);
  std::vector<ScoredArchitecture> scored;
  std::set<Architecture> seen;
  auto score = [&](const std::vector<Architecture> &batch) {
    std::vector<double> scores;
    if (batch.empty())
      return true;
    if (!scorer(batch, scores) || scores.size() != batch.size())
      return false;
    for (auto [a, s] : llvm::zip(batch, scores))
      scored.push_back({a, s});
    return true;
  };
  auto bestFirst = [](const ScoredArchitecture &a, const ScoredArchitecture &b) {
    return a.score > b.score || (a.score == b.score && a.picks < b.picks);
  };
  exhaustive = false;
  if (architectureCount(spaces) <= kEnumerable) {
    std::vector<Architecture> all = enumerateAccepted(spaces, filter);
    if (all.size() <= budget) {
      exhaustive = true;
      if (!score(all))
        return {};
      std::sort(scored.begin(), scored.end(), bestFirst);
      return scored;
    }
  }
  std::mt19937_64 rng(options.seed);
  std::vector<Architecture> first =
      sampleArchitectures(spaces, filter, options.population, options.seed);
  seen.insert(first.begin(), first.end());
  if (!score(first))
    return {};
  std::vector<ScoredArchitecture> population = scored;
  const size_t layers = spaces.front().layers.size();
  for (size_t generation = 0; generation < options.generations && !population.empty();
       ++generation) {
    auto tournament = [&]() -> const Architecture & {
      const ScoredArchitecture *best = nullptr;
      for (int k = 0; k < 3; ++k) {
        const ScoredArchitecture &c =
            population[std::uniform_int_distribution<size_t>(0, population.size() - 1)(rng)];
        if (!best || c.score > best->score)
          best = &c;
      }
      return best->picks;
    };
    std::vector<Architecture> children;
    for (size_t tries = 0; children.size() < options.population && tries < 100 * options.population;
         ++tries) {
      const Architecture &a = tournament(), &b = tournament();
      Architecture child(layers);
      for (size_t l = 0; l < layers; ++l) {
        child[l] = std::bernoulli_distribution(0.5)(rng) ? a[l] : b[l];
        if (std::bernoulli_distribution(1.0 / double(layers))(rng))
          child[l] = std::uniform_int_distribution<int64_t>(
              0, static_cast<int64_t>(spaces.front().layers[l].candidates.size()) - 1)(rng);
      }
      if (filter.accepts(spaces, child) && seen.insert(child).second)
        children.push_back(std::move(child));
    }
    const size_t before = scored.size();
    if (!score(children))
      return {};
    population.insert(population.end(), scored.begin() + before, scored.end());
    std::sort(population.begin(), population.end(), bestFirst);
    if (population.size() > options.population)
      population.resize(options.population);
  }
  std::sort(scored.begin(), scored.end(), bestFirst);
  return scored;
}

std::vector<size_t> paretoFront(ArrayRef<double> cost, ArrayRef<double> value) {
  std::vector<size_t> order(cost.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return cost[a] < cost[b] || (cost[a] == cost[b] && value[a] > value[b]);
  });
  std::vector<size_t> front;
  double best = -INFINITY;
  for (size_t i : order)
    if (value[i] > best) {
      front.push_back(i);
      best = value[i];
    }
  return front;
}

} // namespace qdsl::cost
