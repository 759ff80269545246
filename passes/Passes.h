//===- Passes.h - passes on the quadra dialect ------------------*- C++ -*-===//

#ifndef QDSL_PASSES_PASSES_H
#define QDSL_PASSES_PASSES_H

#include "dialect/QuadraOps.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace qdsl::quadra {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

} // namespace qdsl::quadra

#endif // QDSL_PASSES_PASSES_H
