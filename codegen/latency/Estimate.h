//===- Estimate.h - predicted latency of a model or a search space -*- C++ -*-===//
//
// What `qdsl estimate` prints and `qdsl compile --emit=cost-model` emits:
// the kernels of a model as formed for a device profile's target, each
// with its predicted time, and for a search space the latency of every
// candidate of every choice.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_CODEGEN_LATENCY_ESTIMATE_H
#define QDSL_CODEGEN_LATENCY_ESTIMATE_H

#include "codegen/Targets.h"
#include "codegen/latency/CostModel.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"

#include <string>
#include <vector>

namespace qdsl::cost {

/// The target of `profile`'s device; an error on `anchor` if qdsl has none.
const codegen::Target *profileTarget(const DeviceProfile &profile,
                                     mlir::Operation *anchor);

struct ModelLatency {
  std::vector<KernelSample> kernels;
  std::vector<double> seconds;  // per kernel
  double overhead = 0, total = 0;
};

/// Predicts `model`, already formed into kernels for the profile's target.
mlir::FailureOr<ModelLatency> estimateModel(mlir::func::FuncOp model,
                                            const codegen::Target &target,
                                            const DeviceProfile &profile,
                                            int64_t batch);

/// The latency of a search space as E[LAT] = fixed + Σ_l Σ_c p_lc·LAT_lc:
/// LAT_lc is the time of the kernels of layer l (those named "l/…") when
/// candidate c is chosen, the rest fixed; `fixed` is everything else.
struct SpaceLatency {
  struct Layer {
    std::string name;
    std::vector<std::string> candidates;
    std::vector<double> seconds;
  };
  std::string space;
  int64_t batch = 1;
  double fixed = 0;
  std::vector<Layer> layers;
  /// Distinct kernel configurations over every candidate, and how many of
  /// them the profile measured (the rest come from its fitted models).
  size_t kernelConfigurations = 0, measuredConfigurations = 0;
};

/// Estimates every candidate of the space `model` (not yet formed) of
/// `module` by fixing one choice at a time.
mlir::FailureOr<SpaceLatency> estimateSpace(mlir::ModuleOp module,
                                            mlir::func::FuncOp model,
                                            const DeviceProfile &profile,
                                            int64_t batch);

} // namespace qdsl::cost

#endif // QDSL_CODEGEN_LATENCY_ESTIMATE_H
