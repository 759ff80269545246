//===- ExportGraph.h - a model as a graph of framework ops ------*- C++ -*-===//
//
// What `qdsl export` writes is the same graph twice: an ONNX model
// (OnnxExport.h) and a PyTorch module (PyTorchExport.h). lowerModel walks
// the quadra ops of a model once and calls a GraphBuilder for each op of
// that graph, so both formats get the same ops, layouts and transposes.
//
// The exported model takes images channels-first (N, C, H, W), as ONNX and
// PyTorch do, and feature vectors as (N, F). Convolutions run
// channels-first; layer norms, linear layers and layer scales act on the
// last axis, so they run channels-last. lowerModel tracks each tensor's
// layout and transposes only where the next op needs the other one (twice
// per QuadraBlock, as ConvNeXt-style PyTorch code does).
//
// Weights are named and laid out as `qdsl weights export` writes them (the
// public QuadraNet code's state dict, runtime/reference/PyTorchInterop.h).
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_CODEGEN_EXPORT_EXPORTGRAPH_H
#define QDSL_CODEGEN_EXPORT_EXPORTGRAPH_H

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace qdsl::exporter {

/// A convolution over (N, C, H, W): `weight` is [C_out, C_in / groups, kh,
/// kw] (a depthwise one has groups = C and [C, 1, kh, kw]).
struct Convolution {
  std::string weight;
  std::optional<std::string> bias;
  std::array<int64_t, 2> kernel, stride, padding;
  int64_t groups = 1;
};

/// Builds one graph. Each method adds an op reading the named values and
/// returns the name of its result. Weight names are PyTorch's.
class GraphBuilder {
public:
  virtual ~GraphBuilder() = default;

  /// The model's input: `shape` without the batch, in the exported layout
  /// ((C, H, W) for images).
  virtual std::string input(const std::vector<int64_t> &shape) = 0;
  /// The model's output (N, classes).
  virtual void output(const std::string &value) = 0;
  /// `layer` of the model file begins; the ops that follow implement it.
  virtual void beginLayer(const std::string &layer) = 0;

  /// Rank-4 permutations: (0, 2, 3, 1) to channels-last, (0, 3, 1, 2) back.
  virtual std::string transpose(const std::string &x, const std::array<int64_t, 4> &perm) = 0;
  virtual std::string convolution(const std::string &x, const Convolution &conv) = 0;
  /// Over the last axis; `scale` and `offset` are [C].
  virtual std::string layerNorm(const std::string &x, const std::string &scale,
                                const std::string &offset, double epsilon) = 0;
  /// Over the last axis; `weight` is [C_out, C_in] (nn.Linear's).
  virtual std::string linear(const std::string &x, const std::string &weight,
                             const std::optional<std::string> &bias) = 0;
  /// x · scale over the last axis; `scale` is [C].
  virtual std::string scale(const std::string &x, const std::string &scale) = 0;
  /// Exact (erf) GELU.
  virtual std::string gelu(const std::string &x) = 0;
  virtual std::string relu(const std::string &x) = 0;
  virtual std::string add(const std::string &a, const std::string &b) = 0;
  virtual std::string multiply(const std::string &a, const std::string &b) = 0;
  /// (N, C, H, W) → (N, C): the mean over all positions.
  virtual std::string globalAveragePool(const std::string &x) = 0;
};

/// Walks `model` (a model, not a search space: no quadra.choice) and builds
/// it with `builder`. Fails with a message naming the layer of an op the
/// exported formats cannot express.
bool lowerModel(mlir::func::FuncOp model, GraphBuilder &builder, std::string &error);

/// The model's input without the batch in the exported layout: (C, H, W)
/// for an image, (F) for features.
std::vector<int64_t> exportedInputShape(mlir::func::FuncOp model);

} // namespace qdsl::exporter

#endif // QDSL_CODEGEN_EXPORT_EXPORTGRAPH_H
