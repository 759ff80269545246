//===- KernelFamilies.cpp - every kernel family and who implements it -----===//

#include "codegen/KernelFamilies.h"

#include "llvm/ADT/StringMap.h"

namespace qdsl::codegen {

namespace {

using namespace halide;

const std::vector<KernelFamily> &families() {
  // name, what it computes, {Halide generators, describer}, {CUDA kernels,
  // describer}.
  static const std::vector<KernelFamily> all = {
      // Fused by the fusion rules of the targets.
      {"ln_qdwconv_scale_residual", "x + layerscale(qdwconv(layernorm(x)))",
       {{"depthwise"}, describeDepthwise}, {{"depthwise"}, describeDepthwise}},
      {"ln_dwconv_scale_residual", "x + layerscale(dwconv(layernorm(x)))",
       {{"depthwise"}, describeDepthwise}, {{"depthwise"}, describeDepthwise}},
      // On a GPU the layer norm is a kernel of its own (codegen/Targets.cpp).
      {"pwconv_gelu", "gelu(linear(x))", {{"pointwise"}, describePointwise},
       {{"pointwise"}, describePointwise}},
      {"ln_pwconv_gelu", "gelu(linear(layernorm(x)))", {{"pointwise"}, describePointwise}, {{"pointwise"}, describePointwise}},
      {"pwconv_scale_residual", "r + layerscale(linear(h))", {{"pointwise"}, describePointwise}, {{"pointwise"}, describePointwise}},
      {"conv_ln", "layernorm(conv2d(x))", {{"conv"}, describeConv}, {{"conv"}, describeConv}},
      {"ln_conv", "conv2d(layernorm(x))", {{"conv"}, describeConv}, {{"conv"}, describeConv}},
      {"pool_ln_linear", "linear(layernorm(avgpool(x)))", {{"head"}, describeHead}, {{"head"}, describeHead}},
      // Ops no rule covers, one kernel each.
      {"qdwconv", "qdwconv", {{"depthwise"}, describeDepthwise}, {{"depthwise"}, describeDepthwise}},
      {"dwconv", "dwconv", {{"depthwise"}, describeDepthwise}, {{"depthwise"}, describeDepthwise}},
      {"linear", "linear", {{"pointwise"}, describePointwise}, {{"pointwise"}, describePointwise}},
      {"qlinear", "qlinear", {{"pointwise"}, describePointwise}, {{"pointwise"}, describePointwise}},
      {"conv2d", "conv2d", {{"conv"}, describeConv}, {{"conv"}, describeConv}},
      {"avgpool", "avgpool", {{"avgpool"}, describeAvgPool}, {{"avgpool"}, describeAvgPool}},
      {"layernorm", "layernorm", {{"elementwise"}, describeElementwise}, {{"elementwise"}, describeElementwise}},
      {"gelu", "gelu", {{"elementwise"}, describeElementwise}, {{"elementwise"}, describeElementwise}},
      {"relu", "relu", {{"elementwise"}, describeElementwise}, {{"elementwise"}, describeElementwise}},
      {"layerscale", "layerscale", {{"elementwise"}, describeElementwise}, {{"elementwise"}, describeElementwise}},
      {"add", "add", {{"elementwise"}, describeElementwise}, {{"elementwise"}, describeElementwise}},
      {"mul", "mul", {{"elementwise"}, describeElementwise}, {{"elementwise"}, describeElementwise}},
      // The backward pass of a training step.
      {"pwconv_grad_gelu", "gelu_grad(linear_grad_input(dy))",
       {{"pointwise"}, describeLinearGradInput},
       {{"pointwise"}, describeLinearGradInput}},
      {"pwconv_grad_relu", "relu_grad(linear_grad_input(dy))",
       {{"pointwise"}, describeLinearGradInput},
       {{"pointwise"}, describeLinearGradInput}},
      {"linear_grad_input", "linear_grad_input", {{"pointwise"}, describeLinearGradInput},
       {{"pointwise"}, describeLinearGradInput}},
      {"linear_grad_weight", "linear_grad_weight",
       {{"linear_grad_weight"}, describeLinearGradWeight},
       {{"linear_grad_weight"}, describeLinearGradWeight}},
      {"qdwconv_grad",
       "a stride-1 qdwconv's whole backward pass: dx, dwa, dwb, dwc [, dba, dbb, dbc]",
       {{"qdwconv_grad"}, describeQDWConvGrad},
       {{"qdwconv_grad"}, describeQDWConvGrad}},
      // Stride 1: the forward depthwise generator on flipped filters.
      {"dwconv_grad_input", "dwconv_grad_input",
       {{"depthwise", "conv_grad_input"}, describeDepthwiseGradInput},
       {{"depthwise", "conv_grad_input"}, describeDepthwiseGradInput}},
      {"dwconv_grad_filter", "dwconv_grad_filter",
       {{"conv_grad_filter"}, describeDepthwiseGradFilter},
       {{"conv_grad_filter"}, describeDepthwiseGradFilter}},
      {"conv2d_grad_input", "conv2d_grad_input", {{"conv_grad_input"}, describeConvGradInput},
       {{"conv_grad_input"}, describeConvGradInput}},
      {"conv2d_grad_filter", "conv2d_grad_filter",
       {{"conv_grad_filter"}, describeConvGradFilter},
       {{"conv_grad_filter"}, describeConvGradFilter}},
      {"layernorm_grad", "layernorm_grad", {{"layernorm_grad"}, describeLayerNormGrad},
       {{"layernorm_grad"}, describeLayerNormGrad}},
      {"gelu_grad", "gelu_grad", {{"activation_grad"}, describeActivationGrad},
       {{"activation_grad"}, describeActivationGrad}},
      {"relu_grad", "relu_grad", {{"activation_grad"}, describeActivationGrad},
       {{"activation_grad"}, describeActivationGrad}},
      {"channel_sum", "channel_sum", {{"channel_sum"}, describeChannelSum},
       {{"channel_sum"}, describeChannelSum}},
      {"avgpool_grad", "avgpool_grad", {{"avgpool_grad"}, describeAvgPoolGrad},
       {{"avgpool_grad"}, describeAvgPoolGrad}},
      {"softmax_cross_entropy", "softmax_cross_entropy",
       {{"softmax_cross_entropy"}, describeSoftmaxCrossEntropy},
       {{"softmax_cross_entropy"}, describeSoftmaxCrossEntropy}},
      {"softmax_cross_entropy_grad", "softmax_cross_entropy_grad",
       {{"softmax_cross_entropy"}, describeSoftmaxCrossEntropy},
       {{"softmax_cross_entropy"}, describeSoftmaxCrossEntropy}},
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

} // namespace qdsl::codegen
