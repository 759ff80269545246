//===- ArchitectureSampling.h - architectures drawn and evolved -*- C++ -*-===//
//
// What qdsl search does with a trained supernet besides taking its most
// probable architecture: draw architectures at random among those that
// meet the limits (the random baselines, the supernet's ranking check),
// evolve architectures towards a higher score (supernet accuracy) within
// new limits without training again, and find the Pareto front of accuracy
// against latency. Latency is the additive per-candidate model the search
// optimised (Estimate.h's SpaceLatency), one per device.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_CODEGEN_LATENCY_ARCHITECTURESAMPLING_H
#define QDSL_CODEGEN_LATENCY_ARCHITECTURESAMPLING_H

#include "codegen/latency/Estimate.h"

#include "llvm/ADT/ArrayRef.h"

#include <cstdint>
#include <functional>
#include <vector>

namespace qdsl::cost {

using Architecture = std::vector<int64_t>;

/// Which architectures a draw may give: every limit met (`limitsMs[d]` on
/// device d), and, when `targetMs` is set, each device's latency within
/// `band` of its target (|LAT/target − 1| ≤ band: baselines of "the same
/// latency").
struct ArchitectureFilter {
  std::vector<double> limitsMs, targetMs;
  double band = 0.03;

  bool accepts(const std::vector<SpaceLatency> &spaces, llvm::ArrayRef<int64_t> picks) const;
};

/// Up to `count` distinct architectures drawn uniformly from those `filter`
/// accepts, none of `exclude`. A space of at most 10^6 architectures is
/// enumerated (so a rare band is found, and fewer than `count` means that
/// is all there is); a larger one is sampled, 10^6 draws at most.
std::vector<Architecture> sampleArchitectures(const std::vector<SpaceLatency> &spaces,
                                              const ArchitectureFilter &filter, size_t count,
                                              uint64_t seed,
                                              const std::vector<Architecture> &exclude = {});

/// Scores a batch of architectures (higher is better) into `scores`, one
/// each; false when it could not (having said why).
using ArchitectureScorer =
    std::function<bool(const std::vector<Architecture> &, std::vector<double> &scores)>;

struct ScoredArchitecture {
  Architecture picks;
  double score = 0;
};

struct EvolutionOptions {
  size_t population = 32, generations = 8;
  uint64_t seed = 0;
};

/// A (μ + λ) evolution within `filter`: a random population, then each
/// generation as many children as the population (two parents by
/// tournaments of three, uniform crossover, each layer mutated with
/// probability 1/layers), the best `population` of parents and children
/// kept. When the space accepts no more architectures than the evolution
/// would score, every one is scored instead (exhaustive). Returns every
/// architecture scored, once each, best first; empty when the scorer
/// failed or nothing is accepted.
std::vector<ScoredArchitecture> evolveArchitectures(const std::vector<SpaceLatency> &spaces,
                                                    const ArchitectureFilter &filter,
                                                    const EvolutionOptions &options,
                                                    const ArchitectureScorer &scorer,
                                                    bool &exhaustive);

/// The points no other point beats in both (lower `cost`, higher `value`),
/// by increasing cost.
std::vector<size_t> paretoFront(llvm::ArrayRef<double> cost, llvm::ArrayRef<double> value);

} // namespace qdsl::cost

#endif // QDSL_CODEGEN_LATENCY_ARCHITECTURESAMPLING_H
