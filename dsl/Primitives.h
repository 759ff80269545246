//===- Primitives.h - the built-in layers of the .qd language ---*- C++ -*-===//
//
// Each primitive maps to one quadra op (plus the weights it needs). The table
// here is what semantic analysis checks calls against and what the language
// reference lists; MLIRGen.cpp turns a checked call into the op.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_DSL_PRIMITIVES_H
#define QDSL_DSL_PRIMITIVES_H

#include "dsl/AST.h"

#include "llvm/ADT/ArrayRef.h"

namespace qdsl::dsl {

enum class PrimitiveKind {
  Conv,
  DepthwiseConv,
  QuadraticDepthwiseConv,
  Linear,
  QuadraticLinear,
  LayerNorm,
  Gelu,
  Relu,
  LayerScale,
  Add,
  Mul,
  GlobalAvgPool,
  Identity,
};

/// The largest value of a dimension, channel count or group count, and of a
/// kernel size, stride or padding, that a .qd file may ask for.
inline constexpr int64_t kMaxDim = 1 << 24;
inline constexpr int64_t kMaxWindow = 4096;
/// The largest magnitude of a float argument (an initial value, a std):
/// weights are float32, which ends near 3.4e38.
inline constexpr double kMaxFloatArgument = 1e30;

/// A primitive parameter's default, typed: what MLIRGen uses when a call
/// leaves the argument out, and what the language reference lists.
struct PrimitiveDefault {
  enum class Kind {
    /// The argument must be given.
    Required,
    Int,
    Float,
    Bool,
    /// (k - 1) / 2 for the call's window k: the output keeps the input's
    /// size at stride 1.
    SamePadding,
  };
  Kind kind = Kind::Required;
  int64_t intValue = 0;
  double floatValue = 0;
  bool boolValue = false;

  static PrimitiveDefault required() { return {}; }
  static PrimitiveDefault ofInt(int64_t v) { return {Kind::Int, v, 0, false}; }
  static PrimitiveDefault ofFloat(double v) { return {Kind::Float, 0, v, false}; }
  static PrimitiveDefault ofBool(bool v) { return {Kind::Bool, 0, 0, v}; }
  static PrimitiveDefault samePadding() { return {Kind::SamePadding, 0, 0, false}; }

  /// How the reference writes it: "1", "0.02", "true", "(k - 1) / 2".
  std::string text() const;
};

struct PrimitiveParam {
  const char *name;
  ValueType type;
  PrimitiveDefault defaultValue;
  /// The range an Int argument must lie in; a Float one must be finite,
  /// and above zero when `positive`.
  int64_t min = 0, max = 0;
  bool positive = false;

  bool required() const { return defaultValue.kind == PrimitiveDefault::Kind::Required; }
};

struct Primitive {
  const char *name;
  PrimitiveKind kind;
  std::vector<PrimitiveParam> params;
  const char *summary;
};

/// Null when `name` is not a primitive.
const Primitive *lookupPrimitive(llvm::StringRef name);
llvm::ArrayRef<Primitive> allPrimitives();

} // namespace qdsl::dsl

#endif // QDSL_DSL_PRIMITIVES_H
