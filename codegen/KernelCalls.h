//===- KernelCalls.h - how each kernel calls its implementation -*- C++ -*-===//
//
// The describers of the kernel family table (codegen/KernelFamilies.cpp):
// for each family, a function that reads a quadra.kernel into a call of one
// kernel implementation — which implementation (a Halide generator of
// codegen/halide/ and the CUDA function of codegen/cuda/ of the same name),
// with which parameters (channel counts, kernel size, what is fused), and
// which tensors to pass, in which order, layout and role. Both back ends
// read the same call. Kernels with the same implementation and parameters
// share one compiled function.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_CODEGEN_KERNELCALLS_H
#define QDSL_CODEGEN_KERNELCALLS_H

#include "codegen/Targets.h"
#include "dialect/QuadraOps.h"

#include <string>
#include <utility>
#include <vector>

namespace qdsl::codegen {

/// How a tensor is passed to a generated function.
enum class View {
  /// An activation as (c, x, y, n): NHWC with dimensions innermost first.
  Image,
  /// An activation as (c, rows): every leading dimension folded into rows.
  Rows,
  /// A weight with its dimensions reversed: [kh, kw, C] is (c, kx, ky).
  Weight,
  /// A linear weight [C_in, C_out] packed in panels of `panel` output
  /// channels: [C_out / panel][C_in][panel], passed as (p, i, panel index);
  /// `transposed`: the same of its transpose [C_out, C_in] (the gradient of
  /// the layer's input is a product with it).
  PackedWeight,
  /// A tensor without a batch dimension (a weight's gradient, the loss)
  /// with its dimensions reversed.
  Tensor,
  /// A training step's labels: int32, one per example.
  Labels,
};

struct KernelArgument {
  View view;
  /// An activation (a model input or another kernel's result) ...
  mlir::Value activation;
  /// ... or the name of a weight.
  std::string weight;
  int panel = 0;
  bool transposed = false;
  /// What the argument is to the kernel: the CUDA back end's tensor field
  /// (x, ln_scale, wa, dy, ...; codegen/cuda/qdsl_cuda.h).
  std::string role;
};

struct KernelCall {
  /// The kernel's name in the model, for errors and profiles.
  std::string name;
  std::string family;
  /// The kernel implementation (KernelFamilies.h) the call runs.
  std::string implementation;
  std::vector<std::pair<std::string, std::string>> params;
  std::vector<KernelArgument> inputs;
  /// The kernel's results and how each is passed, in order, and their roles.
  std::vector<View> outputViews;
  std::vector<std::string> outputRoles;
  std::vector<mlir::Value> results;

  /// Identifies the compiled function: implementation and parameters.
  std::string configuration() const;
};

/// Describes `kernel` as a call for `target`, by the describer its family
/// names in the family table; reports an error on the kernel and fails when
/// the target's back end does not implement the family or the kernel does
/// not hold the ops its describer expects.
mlir::FailureOr<KernelCall> describeKernel(quadra::KernelOp kernel,
                                           const Target &target);

/// One of the kernels a fused kernel replaces (KernelFamily::parts): its
/// ops inside the fused kernel and the call it would make alone — family,
/// implementation and parameters (its tensors are not resolved).
struct KernelPart {
  KernelCall call;
  std::vector<mlir::Operation *> ops;
};

/// The parts of `kernel` on `target`; empty when its family has none or its
/// ops do not split into them.
std::vector<KernelPart> describeParts(quadra::KernelOp kernel, const Target &target);

/// Whether `value` has the dynamic batch as its first dimension.
bool isBatched(mlir::Value value);

/// The weight panel width used for a linear layer with `outChannels`
/// outputs on `target` (a multiple of its vector width, or all outputs).
int linearPanel(int64_t outChannels, bool quadratic, const Target &target);

namespace describers {
class KernelReader;
struct CallBuilder;
} // namespace describers

/// A family's parameter describer: reads the kernel's ops in order into the
/// call; false when they are not the ops it expects.
using KernelDescriber = bool (*)(describers::KernelReader &, describers::CallBuilder &);

namespace describers {
// One describer per implementation (and per way of calling it); the family
// table says which families each serves.
bool describeDepthwise(KernelReader &, CallBuilder &);
bool describePointwise(KernelReader &, CallBuilder &);
bool describeMLP(KernelReader &, CallBuilder &);
bool describeConv(KernelReader &, CallBuilder &);
bool describeHead(KernelReader &, CallBuilder &);
bool describeAvgPool(KernelReader &, CallBuilder &);
bool describeElementwise(KernelReader &, CallBuilder &);
bool describeLayerNormGrad(KernelReader &, CallBuilder &);
bool describeActivationGrad(KernelReader &, CallBuilder &);
bool describeChannelSum(KernelReader &, CallBuilder &);
bool describeLinearGradWeight(KernelReader &, CallBuilder &);
bool describeLinearGradInput(KernelReader &, CallBuilder &);
bool describeDepthwiseGradInput(KernelReader &, CallBuilder &);
bool describeConvGradInput(KernelReader &, CallBuilder &);
bool describeDepthwiseGradFilter(KernelReader &, CallBuilder &);
bool describeConvGradFilter(KernelReader &, CallBuilder &);
bool describeAvgPoolGrad(KernelReader &, CallBuilder &);
bool describeSoftmaxCrossEntropy(KernelReader &, CallBuilder &);
bool describeQDWConvGrad(KernelReader &, CallBuilder &);
} // namespace describers

} // namespace qdsl::codegen

#endif // QDSL_CODEGEN_KERNELCALLS_H
