//===- ArchitectureDerivation.h - an architecture from a search -*- C++ -*-===//
//
// After the search: which architecture to take from its probabilities
// under latency limits, and which limits hold each layer of it. Everything
// uses the additive per-candidate model of the space on each device
// (Estimate.h's SpaceLatency), the model the search itself optimised.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_CODEGEN_LATENCY_ARCHITECTUREDERIVATION_H
#define QDSL_CODEGEN_LATENCY_ARCHITECTUREDERIVATION_H

#include "codegen/latency/Estimate.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <string>
#include <utility>
#include <vector>

namespace qdsl::cost {

/// Seconds of `picks` on `space`'s device: the fixed part plus each
/// layer's pick.
double additiveLatency(const SpaceLatency &space, llvm::ArrayRef<int64_t> picks);

/// Seconds of the space's fastest and slowest architectures: every layer at
/// its fastest (slowest) candidate.
std::pair<double, double> latencyRange(const SpaceLatency &space);

/// Per layer, the probability of each candidate.
using LayerProbabilities = std::vector<std::vector<double>>;

/// The most probable architecture within every limit: from `picks` (the
/// argmax), while a limit is exceeded, the switch of one layer to a faster
/// candidate that costs the least log-probability per second saved on the
/// most exceeded device. `spaces[d]` and `limitsMs[d]` are device d's.
/// Empty if none is found.
std::vector<int64_t> withinLimits(const LayerProbabilities &probabilities,
                                  std::vector<int64_t> picks,
                                  const std::vector<SpaceLatency> &spaces,
                                  llvm::ArrayRef<double> limitsMs);

/// --derive=fill: from an architecture within every limit, while one
/// layer's switch to a costlier candidate keeps every limit, the switch
/// that loses the least log-probability. The argmax of a spread-out
/// distribution can leave much of the budget unused; this spends it in the
/// order the search preferred. Each switch raises the summed use of the
/// limits, so it ends.
std::vector<int64_t> fillBudget(const LayerProbabilities &probabilities,
                                std::vector<int64_t> picks,
                                const std::vector<SpaceLatency> &spaces,
                                llvm::ArrayRef<double> limitsMs);

/// Which latency limits hold back one choice layer of an architecture. A
/// limit holds a layer when some candidate of that layer, taken there alone
/// (every other layer as it is), would take the architecture over the
/// limit: that candidate is ruled out by the limit. A layer no limit holds
/// could take any of its candidates.
struct LayerHold {
  std::string layer;
  int64_t pick = 0;
  /// Per limit, in the order given: the candidates it rules out (none for
  /// a limit the architecture does not meet: nothing is held there).
  std::vector<std::vector<int64_t>> ruledOut;
};

struct LayerHolds {
  std::vector<LayerHold> layers;
  /// Per limit: whether the architecture meets it.
  std::vector<bool> met;
};

/// The holds of every layer of `picks`, by the additive per-candidate model
/// of the space on each device (`spaces[d]`, limit `limitsMs[d]`).
LayerHolds limitsHoldingLayers(const std::vector<SpaceLatency> &spaces,
                               llvm::ArrayRef<double> limitsMs, llvm::ArrayRef<int64_t> picks);

/// One line per layer: "stages.0.0 = k: held by D (...)" or "free".
void printLayerHolds(const LayerHolds &holds, const SpaceLatency &names,
                     llvm::ArrayRef<std::string> devices, llvm::raw_ostream &os);

/// [{"layer", "pick", "candidate", "held_by": {device: [ruled-out candidates]}}];
/// limits not met are left out.
llvm::json::Array layerHoldsToJSON(const LayerHolds &holds, const SpaceLatency &names,
                                   llvm::ArrayRef<std::string> devices);

} // namespace qdsl::cost

#endif // QDSL_CODEGEN_LATENCY_ARCHITECTUREDERIVATION_H
