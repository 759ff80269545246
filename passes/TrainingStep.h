//===- TrainingStep.h - a model's training step, built on its own -*- C++ -*-===//
//
// The pipeline that turns one model into its training step: the model is
// cloned into a module of its own (so other models and search spaces of its
// file are left alone), then --quadra-expand-qdwconv for the keep-all
// policy, --quadra-autodiff and --quadra-memory-policy run on it.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_PASSES_TRAININGSTEP_H
#define QDSL_PASSES_TRAININGSTEP_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace qdsl::quadra {

struct TrainingStep {
  mlir::OwningOpRef<mlir::ModuleOp> module;
  /// `<model>_train_step` in `module`.
  mlir::func::FuncOp step;
};

/// Builds `model`'s training step; diagnostics go to the model's context.
mlir::FailureOr<TrainingStep> buildTrainingStep(mlir::func::FuncOp model,
                                                llvm::StringRef policy = "paper",
                                                double labelSmoothing = 0.0);

} // namespace qdsl::quadra

#endif // QDSL_PASSES_TRAININGSTEP_H
