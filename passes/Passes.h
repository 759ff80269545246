//===- Passes.h - passes on the quadra dialect ------------------*- C++ -*-===//

#ifndef QDSL_PASSES_PASSES_H
#define QDSL_PASSES_PASSES_H

#include "codegen/Targets.h"
#include "dialect/QuadraOps.h"
#include "passes/MemoryPolicy.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace qdsl::quadra {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

/// What a pass that is one rewrite pattern does: applies `Pattern` to `op`
/// until nothing matches.
template <typename Pattern> mlir::LogicalResult applyPattern(mlir::Operation *op) {
  mlir::RewritePatternSet patterns(op->getContext());
  patterns.add<Pattern>(op->getContext());
  return mlir::applyPatternsAndFoldGreedily(op, std::move(patterns));
}

} // namespace qdsl::quadra

#endif // QDSL_PASSES_PASSES_H
