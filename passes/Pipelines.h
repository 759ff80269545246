//===- Pipelines.h - the pass pipelines qdsl runs -----------------*- C++ -*-===//
//
// Every sequence of passes a qdsl command runs is one of these pipelines,
// registered with qdsl-opt under its flag, so that for a file with one
// model
//
//   qdsl compile model.qd --debug-info | qdsl-opt --quadra-kernel-pipeline=target=T
//
// prints what `qdsl compile model.qd --target=T --emit=mlir` does, and lit
// tests each pipeline (test/passes/<flag>.qd). (qdsl runs the train-step
// pipelines on each model in a module of its own, so for a file with
// several models it prints one module per model.)
//
//   --quadra-kernel-pipeline         [expand-qdwconv] canonicalize form-kernels
//   --quadra-architecture-pipeline   fix-choices, then the kernel pipeline
//   --quadra-train-step-pipeline     [expand-qdwconv for keep-all] autodiff memory-policy
//   --quadra-train-kernel-pipeline   the training step, then the kernel pipeline
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_PASSES_PIPELINES_H
#define QDSL_PASSES_PIPELINES_H

#include "passes/MemoryPolicy.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"

namespace qdsl::quadra {

/// Options that several pipelines share, registered with the pipeline's
/// options object they are a member of.
using PassOptions = mlir::detail::PassOptions;

/// Which target's fusion rules form the kernels, and whether every qdwconv
/// is expanded first (the unfused baseline).
struct KernelOptionSet {
  explicit KernelOptionSet(PassOptions &parent);
  PassOptions::Option<std::string> target;
  PassOptions::Option<bool> expandQDWConv;
};

/// The training step's memory policy and label smoothing.
struct TrainStepOptionSet {
  explicit TrainStepOptionSet(PassOptions &parent);
  PassOptions::Option<MemoryPolicy> policy;
  PassOptions::Option<double> labelSmoothing;
};

/// The target's kernels, as code generation and the latency model read them.
struct KernelPipelineOptions : mlir::PassPipelineOptions<KernelPipelineOptions> {
  KernelOptionSet kernels{*this};
};
void buildKernelPipeline(mlir::OpPassManager &pm, const KernelPipelineOptions &options);

/// One architecture of a search space, in kernels.
struct ArchitecturePipelineOptions : mlir::PassPipelineOptions<ArchitecturePipelineOptions> {
  ListOption<int64_t> picks{*this, "picks",
                            llvm::cl::desc("Candidate index of each choice, in order")};
  Option<int64_t> seed{*this, "seed",
                       llvm::cl::desc("Draw every candidate from this seed (when >= 0)"),
                       llvm::cl::init(-1)};
  KernelOptionSet kernels{*this};
};
void buildArchitecturePipeline(mlir::OpPassManager &pm,
                               const ArchitecturePipelineOptions &options);

/// Each model's training step (`@M_train_step`) under a memory policy.
struct TrainStepPipelineOptions : mlir::PassPipelineOptions<TrainStepPipelineOptions> {
  TrainStepOptionSet step{*this};
};
void buildTrainStepPipeline(mlir::OpPassManager &pm, const TrainStepPipelineOptions &options);

/// The training step in kernels: what `qdsl compile --train --target=T` builds.
struct TrainKernelPipelineOptions : mlir::PassPipelineOptions<TrainKernelPipelineOptions> {
  TrainStepOptionSet step{*this};
  KernelOptionSet kernels{*this};
};
void buildTrainKernelPipeline(mlir::OpPassManager &pm,
                              const TrainKernelPipelineOptions &options);

/// Registers the four pipelines (qdsl-opt).
void registerQuadraPipelines();

//===----------------------------------------------------------------------===//
// Running them from qdsl
//===----------------------------------------------------------------------===//

/// Runs the kernel pipeline on `module`.
mlir::LogicalResult formKernels(mlir::ModuleOp module, llvm::StringRef target,
                                bool expandQDWConv = false);

/// Fixes every choice of `module` to its candidate in `picks` (one per
/// choice, in order) or, with `seed` >= 0, to candidates drawn from it
/// (`qdsl --choices`).
mlir::LogicalResult fixChoices(mlir::ModuleOp module, llvm::ArrayRef<int64_t> picks,
                               int64_t seed = -1);

/// Runs --quadra-supernet on `module`.
mlir::LogicalResult makeSupernet(mlir::ModuleOp module);

/// A copy of `module` with each choice fixed to its candidate in `picks`
/// (none: the module has no choices) and its kernels formed for `target`:
/// the architecture pipeline on a clone.
mlir::FailureOr<mlir::OwningOpRef<mlir::ModuleOp>>
formArchitecture(mlir::ModuleOp module, llvm::ArrayRef<int64_t> picks, llvm::StringRef target);

struct TrainingStep {
  mlir::OwningOpRef<mlir::ModuleOp> module;
  /// `<model>_train_step` in `module`, next to its copy of the model.
  mlir::func::FuncOp step;
};

/// Builds `model`'s training step in a module of its own (so the other
/// models and search spaces of its file are left alone): the train-step
/// pipeline on a clone of the model. Diagnostics go to the model's context.
mlir::FailureOr<TrainingStep> buildTrainingStep(mlir::func::FuncOp model,
                                                MemoryPolicy policy = kDefaultMemoryPolicy,
                                                double labelSmoothing = 0.0);

} // namespace qdsl::quadra

#endif // QDSL_PASSES_PIPELINES_H
