//===- KernelFamilies.cpp - every kernel family and who implements it -----===//

#include "codegen/KernelFamilies.h"

#include "llvm/ADT/StringMap.h"

namespace qdsl::codegen {

namespace {

using namespace describers;

const std::vector<KernelImplementation> &implementations() {
  // name, Halide generator, CUDA parameter and tensor structs, whether the
  // CUDA struct takes rows_per_example and pixels.
  static const std::vector<KernelImplementation> all = {
      {"depthwise", "depthwise", "DepthwiseParams", "DepthwiseTensors"},
      {"pointwise", "pointwise", "PointwiseParams", "PointwiseTensors", true},
      // Halide only: on a GPU the two products are cuBLASLt matmuls.
      {"mlp", "mlp"},
      {"conv", "conv", "ConvParams", "ConvTensors"},
      {"head", "head", "HeadParams", "HeadTensors", false, true},
      {"avgpool", "avgpool", "AvgPoolParams", "AvgPoolTensors", false, true},
      {"elementwise", "elementwise", "ElementwiseParams", "ElementwiseTensors", true},
      {"layernorm_grad", "layernorm_grad", "LayerNormGradParams", "LayerNormGradTensors", true},
      {"activation_grad", "activation_grad", "ActivationGradParams", "ActivationGradTensors",
       true},
      {"channel_sum", "channel_sum", "ChannelSumParams", "ChannelSumTensors", true},
      {"linear_grad_weight", "linear_grad_weight", "LinearGradWeightParams",
       "LinearGradWeightTensors", true},
      {"conv_grad_input", "conv_grad_input", "ConvGradParams", "ConvGradInputTensors"},
      {"conv_grad_filter", "conv_grad_filter", "ConvGradParams", "ConvGradFilterTensors"},
      {"qdwconv_grad", "qdwconv_grad", "QDWConvGradParams", "QDWConvGradTensors"},
      {"avgpool_grad", "avgpool_grad", "AvgPoolGradParams", "AvgPoolGradTensors"},
      {"softmax_cross_entropy", "softmax_cross_entropy", "SoftmaxCrossEntropyParams",
       "SoftmaxCrossEntropyTensors"},
  };
  return all;
}

const std::vector<KernelFamily> &families() {
  // name, what it computes, the implementations its describer may choose,
  // the describer.
  static const std::vector<KernelFamily> all = {
      // Fused by the fusion rules of the targets.
      {"ln_qdwconv_scale_residual", "x + layerscale(qdwconv(layernorm(x)))", {"depthwise"},
       describeDepthwise},
      {"ln_dwconv_scale_residual", "x + layerscale(dwconv(layernorm(x)))", {"depthwise"},
       describeDepthwise},
      // On a GPU the layer norm is a kernel of its own (codegen/Targets.cpp).
      {"pwconv_gelu", "gelu(linear(x))", {"pointwise"}, describePointwise},
      {"ln_pwconv_gelu", "gelu(linear(layernorm(x)))", {"pointwise"}, describePointwise},
      {"pwconv_scale_residual", "r + layerscale(linear(h))", {"pointwise"}, describePointwise},
      {"ln_mlp_scale_residual", "r + layerscale(linear(gelu(linear(layernorm(x)))))", {"mlp"},
       describeMLP, {{"ln_pwconv_gelu", 3}, {"pwconv_scale_residual", 3}}},
      {"conv_ln", "layernorm(conv2d(x))", {"conv"}, describeConv},
      {"ln_conv", "conv2d(layernorm(x))", {"conv"}, describeConv},
      {"pool_ln_linear", "linear(layernorm(avgpool(x)))", {"head"}, describeHead},
      // Ops no rule covers, one kernel each.
      {"qdwconv", "qdwconv", {"depthwise"}, describeDepthwise},
      {"dwconv", "dwconv", {"depthwise"}, describeDepthwise},
      {"linear", "linear", {"pointwise"}, describePointwise},
      {"qlinear", "qlinear", {"pointwise"}, describePointwise},
      {"conv2d", "conv2d", {"conv"}, describeConv},
      {"avgpool", "avgpool", {"avgpool"}, describeAvgPool},
      {"layernorm", "layernorm", {"elementwise"}, describeElementwise},
      {"gelu", "gelu", {"elementwise"}, describeElementwise},
      {"relu", "relu", {"elementwise"}, describeElementwise},
      {"layerscale", "layerscale", {"elementwise"}, describeElementwise},
      {"add", "add", {"elementwise"}, describeElementwise},
      {"mul", "mul", {"elementwise"}, describeElementwise},
      // The backward pass of a training step.
      {"pwconv_grad_gelu", "gelu_grad(linear_grad_input(dy))", {"pointwise"},
       describeLinearGradInput},
      {"pwconv_grad_relu", "relu_grad(linear_grad_input(dy))", {"pointwise"},
       describeLinearGradInput},
      {"linear_grad_input", "linear_grad_input", {"pointwise"}, describeLinearGradInput},
      {"linear_grad_weight", "linear_grad_weight", {"linear_grad_weight"},
       describeLinearGradWeight},
      {"qdwconv_grad",
       "a stride-1 qdwconv's whole backward pass: dx, dwa, dwb, dwc [, dba, dbb, dbc]",
       {"qdwconv_grad"}, describeQDWConvGrad},
      // Stride 1: the forward depthwise kernel on flipped filters.
      {"dwconv_grad_input", "dwconv_grad_input", {"depthwise", "conv_grad_input"},
       describeDepthwiseGradInput},
      {"dwconv_grad_filter", "dwconv_grad_filter", {"conv_grad_filter"},
       describeDepthwiseGradFilter},
      {"conv2d_grad_input", "conv2d_grad_input", {"conv_grad_input"}, describeConvGradInput},
      {"conv2d_grad_filter", "conv2d_grad_filter", {"conv_grad_filter"},
       describeConvGradFilter},
      {"layernorm_grad", "layernorm_grad", {"layernorm_grad"}, describeLayerNormGrad},
      {"gelu_grad", "gelu_grad", {"activation_grad"}, describeActivationGrad},
      {"relu_grad", "relu_grad", {"activation_grad"}, describeActivationGrad},
      {"channel_sum", "channel_sum", {"channel_sum"}, describeChannelSum},
      {"avgpool_grad", "avgpool_grad", {"avgpool_grad"}, describeAvgPoolGrad},
      {"softmax_cross_entropy", "softmax_cross_entropy", {"softmax_cross_entropy"},
       describeSoftmaxCrossEntropy},
      {"softmax_cross_entropy_grad", "softmax_cross_entropy_grad", {"softmax_cross_entropy"},
       describeSoftmaxCrossEntropy},
  };
  return all;
}

} // namespace

llvm::ArrayRef<KernelFamily> allKernelFamilies() { return families(); }

const KernelFamily *lookupKernelFamily(llvm::StringRef name) {
  static const llvm::StringMap<const KernelFamily *> byName = [] {
    llvm::StringMap<const KernelFamily *> map;
    for (const KernelFamily &family : families())
      map[family.name] = &family;
    return map;
  }();
  return byName.lookup(name);
}

llvm::ArrayRef<KernelImplementation> allKernelImplementations() { return implementations(); }

const KernelImplementation *lookupKernelImplementation(llvm::StringRef name) {
  for (const KernelImplementation &implementation : implementations())
    if (implementation.name == name)
      return &implementation;
  return nullptr;
}

bool hasImplementation(Backend backend, const KernelImplementation &implementation) {
  return backend == Backend::Cuda ? !implementation.cudaParams.empty()
                                  : !implementation.halideGenerator.empty();
}

bool implementsFamily(Backend backend, const KernelFamily &family) {
  if (!family.describe || family.implementations.empty())
    return false;
  for (const std::string &name : family.implementations) {
    const KernelImplementation *implementation = lookupKernelImplementation(name);
    if (!implementation || !hasImplementation(backend, *implementation))
      return false;
  }
  return true;
}

} // namespace qdsl::codegen
