//===- ArchitectureDerivation.cpp - an architecture from a search ---------===//

#include "codegen/latency/ArchitectureDerivation.h"

#include "llvm/ADT/STLExtras.h"

#include <algorithm>
#include <cmath>
#include <numeric>

using namespace llvm;

namespace qdsl::cost {

double additiveLatency(const SpaceLatency &space, ArrayRef<int64_t> picks) {
  double total = space.fixed;
  for (auto [layer, pick] : llvm::zip(space.layers, picks))
    total += layer.seconds[pick];
  return total;
}

std::pair<double, double> latencyRange(const SpaceLatency &space) {
  double fastest = space.fixed, slowest = space.fixed;
  for (const SpaceLatency::Layer &layer : space.layers) {
    fastest += *std::min_element(layer.seconds.begin(), layer.seconds.end());
    slowest += *std::max_element(layer.seconds.begin(), layer.seconds.end());
  }
  return {fastest, slowest};
}

namespace {

double logProbability(double p) { return std::log(std::max(p, 1e-300)); }

} // namespace

namespace {

/// Each limit's use, LAT_d / T_d, of `picks`.
std::vector<double> limitUse(const std::vector<SpaceLatency> &spaces, ArrayRef<double> limitsMs,
                             ArrayRef<int64_t> picks) {
  std::vector<double> use;
  for (auto [space, limitMs] : llvm::zip(spaces, limitsMs))
    use.push_back(additiveLatency(space, picks) * 1e3 / limitMs);
  return use;
}

double excess(ArrayRef<double> use) {
  double total = 0;
  for (double u : use)
    total += std::max(0.0, u - 1.0);
  return total;
}

/// Branch and bound over the layers, each layer's candidates in order of
/// probability: a branch ends when its best completion cannot beat the best
/// found, or its fastest completion exceeds a limit.
class Enumeration {
public:
  Enumeration(const LayerProbabilities &probabilities, const std::vector<SpaceLatency> &spaces,
              ArrayRef<double> limitsMs)
      : probabilities(probabilities), spaces(spaces) {
    const size_t layers = probabilities.size(), devices = spaces.size();
    order.resize(layers);
    bestRest.assign(layers + 1, 0.0);
    fastestRest.assign(layers + 1, std::vector<double>(devices, 0.0));
    for (size_t l = layers; l-- > 0;) {
      order[l].resize(probabilities[l].size());
      std::iota(order[l].begin(), order[l].end(), 0);
      std::stable_sort(order[l].begin(), order[l].end(), [&](int64_t a, int64_t b) {
        return probabilities[l][a] > probabilities[l][b];
      });
      bestRest[l] = bestRest[l + 1] + logProbability(probabilities[l][order[l][0]]);
      for (size_t d = 0; d < devices; ++d) {
        const std::vector<double> &s = spaces[d].layers[l].seconds;
        fastestRest[l][d] = fastestRest[l + 1][d] + *std::min_element(s.begin(), s.end());
      }
    }
    for (auto [space, limitMs] : llvm::zip(spaces, limitsMs))
      budget.push_back(limitMs * 1e-3 - space.fixed);
    picks.assign(layers, 0);
  }

  std::vector<int64_t> run() {
    visit(0, 0.0, std::vector<double>(spaces.size(), 0.0));
    return best;
  }

private:
  void visit(size_t layer, double logP, const std::vector<double> &seconds) {
    if (layer == picks.size()) {
      if (best.empty() || logP > bestLogP) {
        best = picks;
        bestLogP = logP;
      }
      return;
    }
    std::vector<double> next(seconds.size());
    for (int64_t c : order[layer]) {
      double p = logP + logProbability(probabilities[layer][c]);
      // Candidates come in falling probability: none after this one can do
      // better either.
      if (!best.empty() && p + bestRest[layer + 1] <= bestLogP)
        return;
      bool fits = true;
      for (size_t d = 0; d < seconds.size() && fits; ++d) {
        next[d] = seconds[d] + spaces[d].layers[layer].seconds[c];
        fits = next[d] + fastestRest[layer + 1][d] <= budget[d];
      }
      if (!fits)
        continue;
      picks[layer] = c;
      visit(layer + 1, p, next);
    }
  }

  const LayerProbabilities &probabilities;
  const std::vector<SpaceLatency> &spaces;
  std::vector<std::vector<int64_t>> order;
  std::vector<double> bestRest, budget;
  std::vector<std::vector<double>> fastestRest;
  std::vector<int64_t> picks, best;
  double bestLogP = -INFINITY;
};

std::vector<int64_t> jointRepair(const LayerProbabilities &probabilities,
                                 const std::vector<SpaceLatency> &spaces,
                                 ArrayRef<double> limitsMs) {
  std::vector<int64_t> picks;
  for (const std::vector<double> &layer : probabilities)
    picks.push_back(std::max_element(layer.begin(), layer.end()) - layer.begin());
  for (;;) {
    const double current = excess(limitUse(spaces, limitsMs, picks));
    if (current <= 0)
      return picks;
    double bestCost = INFINITY;
    size_t bestLayer = 0;
    int64_t bestPick = -1;
    for (size_t l = 0; l < picks.size(); ++l)
      for (size_t c = 0; c < probabilities[l].size(); ++c) {
        std::vector<int64_t> trial = picks;
        trial[l] = static_cast<int64_t>(c);
        double removed = current - excess(limitUse(spaces, limitsMs, trial));
        if (!(removed > 0))
          continue;
        double lost = logProbability(probabilities[l][picks[l]]) -
                      logProbability(probabilities[l][c]);
        double cost = lost / removed;
        if (cost < bestCost) {
          bestCost = cost;
          bestLayer = l;
          bestPick = static_cast<int64_t>(c);
        }
      }
    if (bestPick < 0)
      return {};
    picks[bestLayer] = bestPick;
  }
}

} // namespace

Derivation mostProbableWithinLimits(const LayerProbabilities &probabilities,
                                    const std::vector<SpaceLatency> &spaces,
                                    ArrayRef<double> limitsMs, double enumerateUpTo) {
  Derivation out;
  out.architectures = 1;
  for (const std::vector<double> &layer : probabilities)
    out.architectures = std::min(out.architectures * double(layer.size()), 9.2e18);
  out.exact = out.architectures <= enumerateUpTo;
  out.picks = out.exact ? Enumeration(probabilities, spaces, limitsMs).run()
                        : jointRepair(probabilities, spaces, limitsMs);
  return out;
}

std::vector<int64_t> fillBudget(const LayerProbabilities &probabilities,
                                std::vector<int64_t> picks,
                                const std::vector<SpaceLatency> &spaces,
                                ArrayRef<double> limitsMs) {
  auto summedUse = [&](ArrayRef<int64_t> p, bool &within) {
    std::vector<double> use = limitUse(spaces, limitsMs, p);
    within = llvm::all_of(use, [](double u) { return u <= 1; });
    return std::accumulate(use.begin(), use.end(), 0.0);
  };
  for (;;) {
    bool within = false;
    const double current = summedUse(picks, within);
    double bestRate = -INFINITY;
    size_t bestLayer = 0;
    int64_t bestPick = -1;
    for (size_t l = 0; l < picks.size(); ++l)
      for (size_t c = 0; c < probabilities[l].size(); ++c) {
        std::vector<int64_t> trial = picks;
        trial[l] = static_cast<int64_t>(c);
        double spent = summedUse(trial, within) - current;
        if (!(spent > 0) || !within)
          continue;
        double gain = logProbability(probabilities[l][c]) -
                      logProbability(probabilities[l][picks[l]]);
        if (gain / spent > bestRate) {
          bestRate = gain / spent;
          bestLayer = l;
          bestPick = static_cast<int64_t>(c);
        }
      }
    if (bestPick < 0)
      return picks;
    picks[bestLayer] = bestPick;
  }
}

LayerHolds limitsHoldingLayers(const std::vector<SpaceLatency> &spaces,
                               ArrayRef<double> limitsMs, ArrayRef<int64_t> picks) {
  LayerHolds holds;
  std::vector<double> headroom;
  for (auto [space, limitMs] : llvm::zip(spaces, limitsMs)) {
    headroom.push_back(limitMs * 1e-3 - additiveLatency(space, picks));
    holds.met.push_back(headroom.back() >= 0);
  }
  for (size_t l = 0; l < picks.size(); ++l) {
    LayerHold hold;
    hold.layer = spaces.front().layers[l].name;
    hold.pick = picks[l];
    for (size_t d = 0; d < spaces.size(); ++d) {
      const std::vector<double> &seconds = spaces[d].layers[l].seconds;
      std::vector<int64_t> ruledOut;
      for (size_t c = 0; holds.met[d] && c < seconds.size(); ++c)
        if (seconds[c] - seconds[picks[l]] > headroom[d])
          ruledOut.push_back(static_cast<int64_t>(c));
      hold.ruledOut.push_back(std::move(ruledOut));
    }
    holds.layers.push_back(std::move(hold));
  }
  return holds;
}

void printLayerHolds(const LayerHolds &holds, const SpaceLatency &names,
                     ArrayRef<std::string> devices, raw_ostream &os) {
  os << "what holds each layer (a limit holds a layer when one of its candidates, taken "
        "there alone, would exceed it; candidates numbered as --choices numbers them):\n";
  for (auto [hold, layer] : llvm::zip(holds.layers, names.layers)) {
    os << "  " << hold.layer << " = " << layer.candidates[hold.pick] << ": ";
    std::string held;
    for (auto [device, ruledOut] : llvm::zip(devices, hold.ruledOut)) {
      if (ruledOut.empty())
        continue;
      held += (held.empty() ? "held by " : "; ") + device + " (candidate" +
              (ruledOut.size() > 1 ? "s " : " ");
      for (auto [i, c] : llvm::enumerate(ruledOut))
        held += (i ? ", " : "") + std::to_string(c);
      held += " would exceed it)";
    }
    os << (held.empty() ? "free: every candidate fits every limit met" : held) << "\n";
  }
  std::string unmet;
  for (auto [device, met] : llvm::zip(devices, holds.met))
    if (!met)
      unmet += (unmet.empty() ? "" : ", ") + device;
  if (!unmet.empty())
    os << "  (limits not met hold nothing and are left out: " << unmet << ")\n";
}

json::Array layerHoldsToJSON(const LayerHolds &holds, const SpaceLatency &names,
                             ArrayRef<std::string> devices) {
  json::Array out;
  for (auto [hold, layer] : llvm::zip(holds.layers, names.layers)) {
    json::Object heldBy;
    for (auto [device, ruledOut] : llvm::zip(devices, hold.ruledOut))
      if (!ruledOut.empty())
        heldBy[device] = json::Array(ruledOut);
    out.push_back(json::Object{{"layer", hold.layer},
                               {"pick", hold.pick},
                               {"candidate", layer.candidates[hold.pick]},
                               {"held_by", std::move(heldBy)}});
  }
  return out;
}

} // namespace qdsl::cost
