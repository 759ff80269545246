//===- PyTorchInterop.h - weights in the public QuadraNet's layout -*- C++ -*-===//
//
// Converts between qdsl's weights and a PyTorch state dict of the public
// QuadraNet code (saved as safetensors): names and layouts. The rules are in
// docs/WEIGHTS.md; in short, names differ only at the stem, the downsampling
// layers, the quadratic convolutions and the head, and layouts by the op
// that reads the weight (conv OIHW, depthwise [C, 1, kh, kw], Linear
// [out, in]).
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_RUNTIME_REFERENCE_PYTORCHINTEROP_H
#define QDSL_RUNTIME_REFERENCE_PYTORCHINTEROP_H

#include "runtime/shipped/Tensor.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace qdsl::rt {

/// The PyTorch name of a qdsl weight name.
std::string toPyTorchName(const std::string &name);

/// Every weight of `model` under its PyTorch name, with its PyTorch shape,
/// in the order the model declares them.
std::vector<TensorSpec> pytorchWeightShapes(mlir::func::FuncOp model);

/// qdsl weights → PyTorch names and layouts.
bool exportPyTorch(mlir::func::FuncOp model, const TensorMap &weights,
                   TensorMap &state, std::string &error);

/// PyTorch names and layouts → qdsl weights. Every weight must be present
/// with the layout its op expects, and nothing else may be.
bool importPyTorch(mlir::func::FuncOp model, const TensorMap &state,
                   TensorMap &weights, std::string &error);

} // namespace qdsl::rt

#endif // QDSL_RUNTIME_REFERENCE_PYTORCHINTEROP_H
