//===- Primitives.cpp - the built-in layers of the .qd language -----------===//

#include "dsl/Primitives.h"

namespace qdsl::dsl {

namespace {
using T = ValueType;

// The initial weights follow the public QuadraNet code: truncated normal with
// std 0.02 for convolutions and linear maps, zero biases.
const std::vector<Primitive> &table() {
  // Parameters shared by families of primitives.
  static const std::vector<PrimitiveParam> depthwise = {
      {"x", T::Tensor, nullptr},      {"k", T::Int, nullptr},
      {"stride", T::Int, "1"},        {"padding", T::Int, "(k - 1) / 2"},
      {"bias", T::Bool, "true"},      {"std", T::Float, "0.02"}};
  static const std::vector<PrimitiveParam> linear = {
      {"x", T::Tensor, nullptr},
      {"out", T::Int, nullptr},
      {"bias", T::Bool, "true"},
      {"std", T::Float, "0.02"}};
  static const std::vector<PrimitiveParam> unary = {{"x", T::Tensor, nullptr}};
  static const std::vector<PrimitiveParam> binary = {{"a", T::Tensor, nullptr},
                                                     {"b", T::Tensor, nullptr}};
  static const std::vector<Primitive> primitives = {
      {"conv2d", PrimitiveKind::Conv,
       {{"x", T::Tensor, nullptr},
        {"out", T::Int, nullptr},
        {"k", T::Int, nullptr},
        {"stride", T::Int, "1"},
        {"padding", T::Int, "(k - 1) / 2"},
        {"groups", T::Int, "1"},
        {"bias", T::Bool, "true"},
        {"std", T::Float, "0.02"}},
       "k×k convolution to `out` channels"},
      {"dwconv", PrimitiveKind::DepthwiseConv, depthwise,
       "depthwise k×k convolution: one filter per channel"},
      {"qdwconv", PrimitiveKind::QuadraticDepthwiseConv, depthwise,
       "quadratic depthwise convolution (Wa⊛x)⊙(Wb⊛x) + Wc⊛x"},
      {"linear", PrimitiveKind::Linear, linear,
       "affine map over the channel axis to `out` channels"},
      {"pwconv", PrimitiveKind::Linear, linear,
       "pointwise (1×1) convolution; the same op as linear"},
      {"qlinear", PrimitiveKind::QuadraticLinear, linear,
       "layer of quadratic neurons (Wa x)⊙(Wb x) + Wc x"},
      {"layernorm", PrimitiveKind::LayerNorm,
       {{"x", T::Tensor, nullptr}, {"eps", T::Float, "1e-6"}},
       "layer normalisation over channels, with learned scale and offset"},
      {"gelu", PrimitiveKind::Gelu, unary, "GELU activation (exact, erf form)"},
      {"relu", PrimitiveKind::Relu, unary, "ReLU activation"},
      {"layerscale", PrimitiveKind::LayerScale,
       {{"x", T::Tensor, nullptr}, {"init", T::Float, "1e-6"}},
       "per-channel learned scale, initialised to `init`"},
      {"add", PrimitiveKind::Add, binary, "elementwise sum (also written a + b)"},
      {"mul", PrimitiveKind::Mul, binary,
       "elementwise product (also written a * b)"},
      {"avgpool", PrimitiveKind::GlobalAvgPool, unary,
       "global average pool: [N, H, W, C] to [N, C]"},
      {"identity", PrimitiveKind::Identity, unary, "passes its input through"},
  };
  return primitives;
}
} // namespace

const Primitive *lookupPrimitive(llvm::StringRef name) {
  for (const Primitive &p : table())
    if (name == p.name)
      return &p;
  return nullptr;
}

llvm::ArrayRef<Primitive> allPrimitives() { return table(); }

} // namespace qdsl::dsl
