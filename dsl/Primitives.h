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

struct PrimitiveParam {
  const char *name;
  ValueType type;
  /// How the default is written in the reference; null when the argument is
  /// required.
  const char *defaultText;
  bool required() const { return defaultText == nullptr; }
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
