//===- ReferenceExecutor.h - run a quadra model op by op --------*- C++ -*-===//
//
// The definition of what a model computes: plain C++ loops over NHWC data,
// one quadra op at a time, sums accumulated in double precision. Clear
// rather than fast; generated kernels are tested against it.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_RUNTIME_REFERENCEEXECUTOR_H
#define QDSL_RUNTIME_REFERENCEEXECUTOR_H

#include "runtime/Tensor.h"
#include "runtime/WeightInit.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace qdsl::rt {

/// Every weight of `model` (its quadra.weight ops), initialised as declared.
TensorMap initializeWeights(mlir::func::FuncOp model, uint64_t seed);

/// The shape and initialiser of every weight of `model`, by name, in the
/// order the model declares them.
struct WeightInfo {
  std::string name;
  std::vector<int64_t> shape;
  InitSpec init;
};
std::vector<WeightInfo> listWeights(mlir::func::FuncOp model);

/// Checks that `weights` has exactly the model's weights with their shapes;
/// the error names every missing, unexpected or misshapen tensor (up to a
/// few).
bool checkWeights(mlir::func::FuncOp model, const TensorMap &weights,
                  std::string &error);

/// Runs `model` on `input` (NHWC, batch first). Fails with a message when
/// the input does not fit the model or the model holds a search choice.
bool runReference(mlir::func::FuncOp model, const TensorMap &weights,
                  const Tensor &input, Tensor &output, std::string &error);

} // namespace qdsl::rt

#endif // QDSL_RUNTIME_REFERENCEEXECUTOR_H
