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

/// How an architecture within every limit was chosen.
struct Derivation {
  /// Empty when none was found.
  std::vector<int64_t> picks;
  /// Whether every architecture was considered (by enumeration): then
  /// `picks` is the most probable one within every limit, and empty means
  /// that none meets them all.
  bool exact = false;
  /// Architectures in the space (saturates at 2^63).
  double architectures = 0;
};

/// The most probable architecture (the greatest Σ_l log p_l) that meets
/// every limit jointly: `spaces[d]` and `limitsMs[d]` are device d's. A
/// space of at most `enumerateUpTo` architectures is searched exhaustively
/// (branch and bound: exact). A larger one is repaired from the argmax:
/// each move switches one layer so that the total excess over the limits,
/// Σ_d max(0, LAT_d/T_d − 1), strictly falls, choosing the move that loses
/// the least log-probability per unit of excess removed; the excess never
/// returns to a value it had, so the repair ends, within every limit or
/// with no move left (then `picks` is empty).
Derivation mostProbableWithinLimits(const LayerProbabilities &probabilities,
                                    const std::vector<SpaceLatency> &spaces,
                                    llvm::ArrayRef<double> limitsMs,
                                    double enumerateUpTo = 1e6);

/// --derive=fill: from an architecture within every limit, while one
/// layer's switch to a costlier candidate keeps every limit, the switch
/// that gains the most log-probability per unit of latency it spends (the
/// summed use of the limits, Σ_d LAT_d/T_d); a loss counts as a negative
/// gain, so the least loss per unit spent goes first. The argmax of a
/// spread-out distribution can leave much of the budget unused; this spends
/// it in the order the search preferred. Each switch raises the summed use,
/// so it ends.
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
