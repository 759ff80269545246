//===- Primitives.cpp - the built-in layers of the .qd language -----------===//

#include "dsl/Primitives.h"

#include <sstream>

namespace qdsl::dsl {

namespace {
using T = ValueType;
using D = PrimitiveDefault;

// Argument kinds that recur, with their defaults and ranges.
PrimitiveParam tensor(const char *name) { return {name, T::Tensor, D::required()}; }
PrimitiveParam size(const char *name, D dflt = D::required()) {
  return {name, T::Int, dflt, 1, kMaxDim};
}
PrimitiveParam window(const char *name, D dflt = D::required(), int64_t min = 1) {
  return {name, T::Int, dflt, min, kMaxWindow};
}
PrimitiveParam flag(const char *name, bool dflt) { return {name, T::Bool, D::ofBool(dflt)}; }
PrimitiveParam positive(const char *name, double dflt) {
  return {name, T::Float, D::ofFloat(dflt), 0, 0, /*positive=*/true};
}
PrimitiveParam finite(const char *name, double dflt) {
  return {name, T::Float, D::ofFloat(dflt)};
}

// The initial weights follow the public QuadraNet code: truncated normal with
// std 0.02 for convolutions and linear maps, zero biases.
const std::vector<Primitive> &table() {
  // Parameters shared by families of primitives.
  static const std::vector<PrimitiveParam> depthwise = {
      tensor("x"),
      window("k"),
      window("stride", D::ofInt(1)),
      window("padding", D::samePadding(), 0),
      flag("bias", true),
      positive("std", 0.02)};
  static const std::vector<PrimitiveParam> linear = {
      tensor("x"), size("out"), flag("bias", true), positive("std", 0.02)};
  static const std::vector<PrimitiveParam> unary = {tensor("x")};
  static const std::vector<PrimitiveParam> binary = {tensor("a"), tensor("b")};
  static const std::vector<Primitive> primitives = {
      {"conv2d", PrimitiveKind::Conv,
       {tensor("x"), size("out"), window("k"), window("stride", D::ofInt(1)),
        window("padding", D::samePadding(), 0), size("groups", D::ofInt(1)),
        flag("bias", true), positive("std", 0.02)},
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
      {"layernorm", PrimitiveKind::LayerNorm, {tensor("x"), positive("eps", 1e-6)},
       "layer normalisation over channels, with learned scale and offset"},
      {"gelu", PrimitiveKind::Gelu, unary, "GELU activation (exact, erf form)"},
      {"relu", PrimitiveKind::Relu, unary, "ReLU activation"},
      {"layerscale", PrimitiveKind::LayerScale, {tensor("x"), finite("init", 1e-6)},
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

std::string PrimitiveDefault::text() const {
  switch (kind) {
  case Kind::Required:
    return "";
  case Kind::Int:
    return std::to_string(intValue);
  case Kind::Float: {
    std::ostringstream os;
    os << floatValue;
    return os.str();
  }
  case Kind::Bool:
    return boolValue ? "true" : "false";
  case Kind::SamePadding:
    return "(k - 1) / 2";
  }
  return "";
}

const Primitive *lookupPrimitive(llvm::StringRef name) {
  for (const Primitive &p : table())
    if (name == p.name)
      return &p;
  return nullptr;
}

llvm::ArrayRef<Primitive> allPrimitives() { return table(); }

} // namespace qdsl::dsl
