//===- ReferenceExecutor.h - run a quadra model op by op --------*- C++ -*-===//
//
// The definition of what a model computes: plain C++ loops over NHWC data,
// one quadra op at a time, in double precision. Clear rather than fast;
// generated kernels are tested against it, and its gradients against finite
// differences.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_RUNTIME_REFERENCE_REFERENCEEXECUTOR_H
#define QDSL_RUNTIME_REFERENCE_REFERENCEEXECUTOR_H

#include "runtime/shipped/Tensor.h"
#include "runtime/shipped/WeightInit.h"

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

/// The name and shape of every weight of `model`: what a weights file for
/// it must hold (checked by weightProblems, runtime/shipped/Tensor.h).
std::vector<TensorSpec> weightShapes(mlir::func::FuncOp model);

/// The weights of `model`: the safetensors file `path` (which must be of
/// this model and hold exactly its weights, each problem named), or, when
/// `path` is empty, the initialisers drawn from `seed`.
bool modelWeights(mlir::func::FuncOp model, const std::string &path, uint64_t seed,
                  TensorMap &weights, std::string &error);

/// A tensor in double precision: what the reference executor computes
/// with, so that gradient checks by finite differences are meaningful.
struct Array {
  std::vector<int64_t> shape;
  std::vector<double> data;

  Array() = default;
  explicit Array(std::vector<int64_t> shape)
      : shape(std::move(shape)), data(Tensor::numElements(this->shape), 0.0) {}
  size_t size() const { return data.size(); }
};
using ArrayMap = std::map<std::string, Array>;

Array toArray(const Tensor &tensor);
/// Rounds to float.
Tensor toTensor(const Array &array);

/// Runs any function of quadra ops — a model, or the training step that
/// --quadra-autodiff builds from it — on `arguments`, in double precision.
/// Labels are passed as arrays of whole numbers. Fails with a message when
/// an argument does not fit, a weight is missing, a label is not a class
/// or the function holds a search choice.
bool evaluate(mlir::func::FuncOp function, const ArrayMap &weights,
              const std::vector<Array> &arguments, std::vector<Array> &results,
              std::string &error);

/// Runs `model` on `input` (NHWC, batch first). Fails with a message when
/// the input does not fit the model or the model holds a search choice.
bool runReference(mlir::func::FuncOp model, const TensorMap &weights,
                  const Tensor &input, Tensor &output, std::string &error);

} // namespace qdsl::rt

#endif // QDSL_RUNTIME_REFERENCE_REFERENCEEXECUTOR_H
