//===- Estimate.cpp - predicted latency of a model or a search space ------===//

#include "codegen/latency/Estimate.h"

#include "codegen/latency/KernelCosts.h"
#include "dialect/QuadraOps.h"
#include "passes/Pipelines.h"


#include <cmath>
#include <set>

using namespace mlir;

namespace qdsl::cost {

const codegen::Target *profileTarget(const DeviceProfile &profile, Operation *anchor) {
  if (const codegen::Target *t = codegen::lookupTarget(profile.device.target))
    return t;
  anchor->emitError("device profile '")
      << profile.device.name << "' names target '" << profile.device.target
      << "', which this qdsl does not know";
  return nullptr;
}

FailureOr<ModelLatency> estimateModel(func::FuncOp model, const codegen::Target &target,
                                      const DeviceProfile &profile, int64_t batch) {
  FailureOr<std::vector<KernelSample>> kernels =
      codegen::kernelSamples(model, target, batch);
  if (failed(kernels))
    return failure();
  ModelLatency latency;
  latency.kernels = std::move(*kernels);
  latency.overhead = profile.passOverhead + profile.exampleOverhead * static_cast<double>(batch);
  latency.total = latency.overhead;
  for (const KernelSample &k : latency.kernels) {
    // The predictors this kernel's prediction uses: its family's (or the
    // fallback), or its parts' families'.
    std::vector<const KernelSample *> predicted = {&k};
    if (predictedFromParts(profile, k)) {
      predicted.clear();
      for (const KernelSample &part : k.parts)
        predicted.push_back(&part);
    }
    std::string predictorName;
    for (const KernelSample *sample : predicted) {
      auto family = profile.families.find(sample->family);
      const FamilyModel &predictor =
          family == profile.families.end() ? profile.fallback : family->second;
      predictorName = family == profile.families.end() ? "the fallback predictor"
                                                       : "family '" + sample->family + "'";
      if (std::string feature = missingFeature(predictor, *sample); !feature.empty())
        return model.emitError("device profile '")
               << profile.file << "': " << predictorName << " uses the feature '" << feature
               << "', which kernel '" << k.name << "' does not have";
    }
    double seconds = predictCall(profile, k);
    if (!std::isfinite(seconds) || seconds < 0)
      return model.emitError("device profile '")
             << profile.file << "': " << predictorName << " predicts " << seconds
             << " s for kernel '" << k.name << "'; expected a finite time >= 0";
    latency.seconds.push_back(seconds);
    latency.total += seconds;
  }
  return latency;
}

FailureOr<SpaceLatency> estimateSpace(ModuleOp module, func::FuncOp model,
                                      const DeviceProfile &profile, int64_t batch) {
  const codegen::Target *target = profileTarget(profile, model);
  if (!target)
    return failure();
  SpaceLatency space;
  space.space = model.getSymName().str();
  space.batch = batch;
  std::vector<quadra::ChoiceOp> choices;
  bool nested = false;
  module.walk<WalkOrder::PreOrder>([&](quadra::ChoiceOp choice) {
    choices.push_back(choice);
    choice->walk([&](quadra::ChoiceOp inner) { nested |= inner != choice; });
    return WalkResult::skip();
  });
  if (nested)
    return model.emitError("the latency model does not handle a choice inside a "
                           "candidate of another");
  for (quadra::ChoiceOp choice : choices) {
    SpaceLatency::Layer layer;
    layer.name = choice.getLayer().str();
    for (StringRef c : choice.getCandidates().getAsValueRange<StringAttr>())
      layer.candidates.push_back(c.str());
    layer.seconds.assign(layer.candidates.size(), 0);
    space.layers.push_back(std::move(layer));
  }

  std::set<std::string> configurations, measured;
  // Predicts the architecture `picks`; returns its total and the time of
  // the kernels of each choice layer.
  auto predict = [&](const std::vector<int64_t> &picks, std::vector<double> &perLayer,
                     double &total) -> LogicalResult {
    FailureOr<OwningOpRef<ModuleOp>> copy = quadra::formArchitecture(module, picks, target->name);
    if (failed(copy))
      return failure();
    auto formed = (*copy)->lookupSymbol<func::FuncOp>(model.getSymName());
    FailureOr<ModelLatency> latency = estimateModel(formed, *target, profile, batch);
    if (failed(latency))
      return failure();
    total = latency->total;
    for (const KernelSample &k : latency->kernels) {
      std::string key = k.family + "|" + k.configuration;
      configurations.insert(key);
      if (predictorUsed(profile, k) == "measured")
        measured.insert(key);
    }
    perLayer.assign(space.layers.size(), 0);
    for (auto [k, seconds] : llvm::zip(latency->kernels, latency->seconds))
      for (auto [l, layer] : llvm::enumerate(space.layers))
        if (StringRef(k.name).starts_with(layer.name + "/"))
          perLayer[l] += seconds;
    return success();
  };

  std::vector<int64_t> base(space.layers.size(), 0);
  std::vector<double> basePerLayer;
  double baseTotal = 0;
  if (failed(predict(base, basePerLayer, baseTotal)))
    return failure();
  space.fixed = baseTotal;
  for (auto [l, layer] : llvm::enumerate(space.layers)) {
    layer.seconds[0] = basePerLayer[l];
    space.fixed -= basePerLayer[l];
  }
  for (auto [l, layer] : llvm::enumerate(space.layers))
    for (size_t c = 1; c < layer.candidates.size(); ++c) {
      std::vector<int64_t> picks = base;
      picks[l] = static_cast<int64_t>(c);
      std::vector<double> perLayer;
      double total = 0;
      if (failed(predict(picks, perLayer, total)))
        return failure();
      layer.seconds[c] = perLayer[l];
      // The decomposition holds only if a choice changes nothing outside
      // its own layer's kernels.
      double expected = total - perLayer[l] + basePerLayer[l];
      if (std::fabs(expected - baseTotal) > 1e-9 * baseTotal + 1e-12)
        return choices[l].emitError("choosing candidate '")
               << layer.candidates[c] << "' of layer '" << layer.name
               << "' changes kernels outside the layer; the expected-latency "
                  "model assumes each layer's kernels are its own";
    }
  space.kernelConfigurations = configurations.size();
  space.measuredConfigurations = measured.size();
  return space;
}

} // namespace qdsl::cost
