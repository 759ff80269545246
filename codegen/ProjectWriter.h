//===- ProjectWriter.h - a self-contained CMake project per model -*- C++ -*-===//
//
// `qdsl compile model.qd --target=T -o DIR` writes DIR as a CMake project
// that builds, with nothing but Halide 14 and nlohmann-json from Debian:
// the Halide generators the model's kernels need, one compiled function per
// distinct kernel configuration, the model library (qdsl_model.h) and the
// `predict` tool. See docs/CODEGEN.md.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_CODEGEN_PROJECTWRITER_H
#define QDSL_CODEGEN_PROJECTWRITER_H

#include "codegen/Targets.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <string>

namespace qdsl::codegen {

struct ProjectOptions {
  /// The .qd file the model came from, for the generated files' headers.
  std::string source;
  /// Empty for qdsl's own schedules, else a Halide autoscheduler
  /// (Mullapudi2016, Li2018, Adams2019).
  std::string autoscheduler;
  /// For a training project: how its step was built (memory policy, label
  /// smoothing), recorded in the checkpoints it writes.
  std::string trainingSetup;
  /// Directory of the per-user cache of compiled kernels; empty: none.
  std::string kernelCache;
};

/// The default kernel cache: $QDSL_KERNEL_CACHE if set (empty disables it),
/// else $XDG_CACHE_HOME/qdsl/kernels, else ~/.cache/qdsl/kernels.
std::string defaultKernelCache();

/// Writes the project for `model`, whose body must already be formed into
/// kernels for `target`; with `trainStep` (its training step, formed into
/// kernels too) also the `train` program. Errors are emitted on the
/// function at fault and fail.
mlir::LogicalResult writeProject(mlir::func::FuncOp model,
                                 mlir::func::FuncOp trainStep,
                                 const Target &target,
                                 const std::string &directory,
                                 const ProjectOptions &options);

/// The generated lines that call each kernel (for `--emit=kernels`): one
/// entry per kernel with its configuration.
struct KernelListing {
  std::string name, family, configuration, library;
  std::string inputs, output;
  uint64_t macs = 0;
};
mlir::FailureOr<std::vector<KernelListing>>
listKernels(mlir::func::FuncOp function, const Target &target);

} // namespace qdsl::codegen

#endif // QDSL_CODEGEN_PROJECTWRITER_H
