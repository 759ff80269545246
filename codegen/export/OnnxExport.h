//===- OnnxExport.h - a model as an ONNX file -------------------*- C++ -*-===//
//
// Writes a model (ExportGraph.h) as an ONNX ModelProto: opset 17, IR
// version 8, a dynamic batch dimension named "batch", the weights embedded
// as initializers under their PyTorch names and layouts. Ops: Conv (grouped
// for the depthwise and quadratic convolutions: one depthwise Conv per
// filter), Transpose, LayerNormalization, MatMul + Add (the weight
// transposed in the graph, which runtimes fold once), Mul, Add, GELU as
// Div → Erf → Add → Mul → Mul (the pattern ONNX Runtime fuses into one
// Gelu), Relu, GlobalAveragePool + Flatten. The protobuf encoding is
// written here (no protobuf library): only the fields above.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_CODEGEN_EXPORT_ONNXEXPORT_H
#define QDSL_CODEGEN_EXPORT_ONNXEXPORT_H

#include "runtime/shipped/Tensor.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <cstdint>
#include <string>

namespace qdsl::exporter {

/// The ONNX opset and IR version written (what Debian's python3-onnx 1.12
/// checks).
constexpr int64_t kOnnxOpset = 17;
constexpr int64_t kOnnxIrVersion = 8;
/// Protobuf cannot hold a message of 2 GiB: above this many bytes of
/// weights they go to a file of their own (ONNX's external data).
constexpr uint64_t kOnnxExternalDataAbove = (uint64_t(1) << 31) - (uint64_t(64) << 20);

struct OnnxFiles {
  /// The ModelProto.
  std::string model;
  /// The weights when they are external (else empty), to be written as
  /// `dataFileName` next to the model file.
  std::string data;
  std::string dataFileName;
};

/// `model` with `state` (PyTorch names and layouts, as exportPyTorch gives)
/// as ONNX. Weights above `externalAbove` bytes in all go to
/// `dataFileName` (a name without directory). Fails with a message naming
/// the layer that cannot be exported.
bool exportOnnx(mlir::func::FuncOp model, const rt::TensorMap &state,
                const std::string &dataFileName, uint64_t externalAbove, OnnxFiles &files,
                std::string &error);

} // namespace qdsl::exporter

#endif // QDSL_CODEGEN_EXPORT_ONNXEXPORT_H
