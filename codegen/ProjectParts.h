//===- ProjectParts.h - what the project writers share ----------*- C++ -*-===//
//
// Inside codegen/ only: the parts ProjectWriter.cpp puts together into a
// project. ProjectFiles.cpp: the files a project ships (compiled into qdsl)
// and the names of compiled kernels; ProjectPlan.cpp: the plan of a model's
// kernels and the tables both back ends' model_kernels.cpp define;
// HalideProject.cpp and CudaProject.cpp: each back end's model_kernels.cpp
// and CMakeLists.txt (filled in from codegen/templates/, ProjectTemplate.h).
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_CODEGEN_PROJECTPARTS_H
#define QDSL_CODEGEN_PROJECTPARTS_H

#include "codegen/KernelCalls.h"
#include "codegen/ProjectWriter.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/raw_ostream.h"

#include <optional>
#include <set>
#include <string>
#include <vector>

namespace qdsl::codegen::project {

// --- The shipped files (ProjectFiles.cpp). They come from the folders
// whose code runs in (or builds) a generated project; each keeps its place
// there:
//   codegen/halide/X   -> generators/X   (the Halide generators)
//   codegen/project/X  -> X              (model library, predict, train)
//   codegen/cuda/X     -> cuda/X         (the CUDA kernels and model library)
//   runtime/shipped/X  -> runtime/shipped/X
inline constexpr llvm::StringLiteral kGeneratorFolder = "codegen/halide/";

struct ShippedFile {
  llvm::StringRef path, contents;
};
/// Every file compiled into qdsl for its projects, by repository path.
std::vector<ShippedFile> shippedFiles();
/// The contents of `repoPath`; empty when qdsl ships no such file.
llvm::StringRef embeddedFile(llvm::StringRef repoPath);
/// Where a repository file goes in a generated project.
std::string projectPath(llvm::StringRef repoPath);
/// One generator per file, named after it.
std::string generatorSource(llvm::StringRef generator);
/// The Halide generator of a call: describeKernel() chose an implementation
/// the target's back end has.
llvm::StringRef halideGenerator(const KernelCall &call);
/// A generator source and every project header it includes, directly or
/// not: what its object code depends on besides its parameters.
std::vector<std::string> generatorFiles(llvm::StringRef generator);
/// The files only a project that trains needs.
std::set<std::string> trainingOnlyFiles();
/// 16 hex digits of the SHA-256 of `text`.
std::string hexDigest(llvm::StringRef text);
/// The compiled function of `call`: named after a hash of everything that
/// determines its object code, so that equal names mean equal code in any
/// project and the kernel cache (qdsl_kernels.cmake) can share it.
std::string kernelFunctionName(const KernelCall &call, const Target &target,
                               llvm::StringRef autoscheduler);
/// Writes `path` unless it already holds `text`: recompiling a project
/// leaves unchanged files alone, so its build redoes only what changed.
bool writeFile(const std::string &path, const std::string &text, std::string &error);

// --- The plan of a project's kernels (ProjectPlan.cpp).
/// The supernet path a kernel belongs to (quadra.path): it runs when
/// candidate `candidate` of search layer `layer` is on the current path
/// (kind 0), or is recomputed for its gate gradient (kind 1).
struct KernelPath {
  int64_t layer = -1, candidate = -1, kind = 0;
  bool any() const { return layer >= 0; }
  bool operator!=(const KernelPath &o) const {
    return layer != o.layer || candidate != o.candidate || kind != o.kind;
  }
};

KernelPath pathOf(mlir::Operation *op);

/// The kernels of one function (the model, or its training step) in order.
struct FunctionPlan {
  mlir::func::FuncOp function;
  std::vector<KernelCall> calls;
  std::vector<std::string> library;  // per call
  /// Per call: its supernet path, and per result whether something off
  /// that path reads it (so a skipped kernel must leave zeros there).
  std::vector<KernelPath> paths;
  std::vector<std::vector<bool>> escaping;
  /// Activation ids (runtime/shipped/Contract.h: the images argument, the
  /// model's output, the gradients); the labels of a training step have
  /// none (View::Labels).
  llvm::DenseMap<mlir::Value, int> ids;
  std::vector<mlir::Value> returned;
};

/// A project: the model's kernels, its training step's if compiled with
/// --train, and the compiled functions they share by configuration.
struct Plan {
  FunctionPlan forward;
  std::optional<FunctionPlan> train;
  std::vector<const KernelCall *> libraries;  // first call of each library
};

/// The kernels of `function` (the model, or with `isTrainStep` its training
/// step), each named after its configuration in `byConfiguration`.
mlir::LogicalResult planFunction(mlir::func::FuncOp function, bool isTrainStep,
                                 const Target &target, llvm::StringRef autoscheduler,
                                 llvm::StringMap<std::string> &byConfiguration,
                                 FunctionPlan &p);
/// The plan of `model` and, when given, its training step.
mlir::FailureOr<Plan> plan(mlir::func::FuncOp model, mlir::func::FuncOp trainStep,
                           const Target &target, llvm::StringRef autoscheduler);

/// `{28, 28, 1}`.
std::string shapeList(llvm::ArrayRef<int64_t> shape);
/// One example's shape: the type without its leading (batch) dimension.
std::vector<int64_t> exampleShape(mlir::Type type);
/// `{28, 28, 1}` for an activation (one example), the whole shape otherwise.
std::string viewShape(mlir::Value v);
/// The tables of qdsl_model_tables.h both back ends' model_kernels.cpp
/// define: the model's name and shapes, its weights, and its training
/// step's results (kSearchLayers is the Halide back end's alone to fill).
void emitModelTables(const Plan &p, const Target &target, const ProjectOptions &options,
                     llvm::raw_ostream &os);

// --- The Halide back end's project (HalideProject.cpp).
std::string halideKernelsSource(const Plan &p, const Target &target,
                                const ProjectOptions &options);
/// `generators`: the generator sources the kernels call.
std::string halideCmakeSource(const Plan &p, const Target &target, const ProjectOptions &options,
                              const std::vector<std::string> &generators);

// --- The cuda back end's project (CudaProject.cpp).
mlir::FailureOr<std::string> cudaKernelsSource(const Plan &p, const Target &target,
                                               const ProjectOptions &options);
std::string cudaCmakeSource(const Plan &p, const Target &target, const ProjectOptions &options);

} // namespace qdsl::codegen::project

#endif // QDSL_CODEGEN_PROJECTPARTS_H
