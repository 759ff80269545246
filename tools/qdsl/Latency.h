//===- Latency.h - predicted latency of a model or a search space -*- C++ -*-===//
//
// What `qdsl estimate` prints and `qdsl compile --emit=cost-model` emits:
// the kernels of a model as formed for a device profile's target, each
// with its predicted time, and for a search space the latency of every
// candidate of every choice.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_TOOLS_QDSL_LATENCY_H
#define QDSL_TOOLS_QDSL_LATENCY_H

#include "codegen/CostModel.h"
#include "codegen/Targets.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"

#include <string>
#include <vector>

namespace qdsl::tool {

/// Canonicalises `module` and forms its kernels for `target`.
mlir::LogicalResult formKernels(mlir::ModuleOp module, const codegen::Target &target);

/// A copy of `module` with each choice fixed to its candidate in `picks`
/// (none: the module has no choices) and its kernels formed for `target`.
mlir::FailureOr<mlir::OwningOpRef<mlir::ModuleOp>>
formArchitecture(mlir::ModuleOp module, llvm::ArrayRef<int64_t> picks,
                 const codegen::Target &target);

/// The target of `profile`'s device; an error on `anchor` if qdsl has none.
const codegen::Target *profileTarget(const cost::DeviceProfile &profile,
                                     mlir::Operation *anchor);

struct ModelLatency {
  std::vector<cost::KernelSample> kernels;
  std::vector<double> seconds;  // per kernel
  double overhead = 0, total = 0;
};

/// Predicts `model`, already formed into kernels for the profile's target.
mlir::FailureOr<ModelLatency> estimateModel(mlir::func::FuncOp model,
                                            const codegen::Target &target,
                                            const cost::DeviceProfile &profile,
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
};

/// Estimates every candidate of the space `model` (not yet formed) of
/// `module` by fixing one choice at a time.
mlir::FailureOr<SpaceLatency> estimateSpace(mlir::ModuleOp module,
                                            mlir::func::FuncOp model,
                                            const cost::DeviceProfile &profile,
                                            int64_t batch);

/// Reads the profile named by --device; false after reporting why not.
bool loadDeviceProfile(cost::DeviceProfile &profile);

} // namespace qdsl::tool

#endif // QDSL_TOOLS_QDSL_LATENCY_H
