//===- ArchitectureDerivation.cpp - an architecture from a search ---------===//

#include "codegen/latency/ArchitectureDerivation.h"

#include "llvm/ADT/STLExtras.h"

#include <algorithm>
#include <cmath>

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

std::vector<int64_t> withinLimits(const LayerProbabilities &probabilities,
                                  std::vector<int64_t> picks,
                                  const std::vector<SpaceLatency> &spaces,
                                  ArrayRef<double> limitsMs) {
  for (int guard = 0; guard < 10000; ++guard) {
    size_t worst = limitsMs.size();
    double worstRatio = 1.0;
    for (size_t d = 0; d < limitsMs.size(); ++d) {
      double ratio = additiveLatency(spaces[d], picks) * 1e3 / limitsMs[d];
      if (ratio > worstRatio) {
        worstRatio = ratio;
        worst = d;
      }
    }
    if (worst == limitsMs.size())
      return picks;
    double bestCost = INFINITY;
    size_t bestLayer = 0;
    int64_t bestPick = -1;
    for (size_t l = 0; l < picks.size(); ++l)
      for (size_t c = 0; c < probabilities[l].size(); ++c) {
        const std::vector<double> &seconds = spaces[worst].layers[l].seconds;
        double saved = seconds[picks[l]] - seconds[c];
        if (!(saved > 0))
          continue;
        double lost = logProbability(probabilities[l][picks[l]]) -
                      logProbability(probabilities[l][c]);
        double cost = std::max(lost, 0.0) / saved;
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
  return {};
}

std::vector<int64_t> fillBudget(const LayerProbabilities &probabilities,
                                std::vector<int64_t> picks,
                                const std::vector<SpaceLatency> &spaces,
                                ArrayRef<double> limitsMs) {
  auto use = [&](ArrayRef<int64_t> p, bool &within) {
    double total = 0;
    within = true;
    for (auto [space, limitMs] : llvm::zip(spaces, limitsMs)) {
      double ratio = additiveLatency(space, p) * 1e3 / limitMs;
      within = within && ratio <= 1;
      total += ratio;
    }
    return total;
  };
  for (;;) {
    bool within = false;
    double current = use(picks, within);
    double bestGain = -INFINITY;
    size_t bestLayer = 0;
    int64_t bestPick = -1;
    for (size_t l = 0; l < picks.size(); ++l)
      for (size_t c = 0; c < probabilities[l].size(); ++c) {
        std::vector<int64_t> trial = picks;
        trial[l] = static_cast<int64_t>(c);
        if (!(use(trial, within) > current) || !within)
          continue;
        double gain = logProbability(probabilities[l][c]) -
                      logProbability(probabilities[l][picks[l]]);
        if (gain > bestGain) {
          bestGain = gain;
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
