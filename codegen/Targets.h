//===- Targets.h - what qdsl knows about each code generation target -*- C++ -*-===//
//
// A target names the Halide target string its kernels are compiled for and
// the table of fusion rules that decides which ops become one kernel. The
// rules are data: kernel formation (passes/FormKernels.cpp) reads them and
// names each kernel after its rule's family; code generation and the
// latency model take the family from the kernel and look it up in
// codegen/KernelFamilies.cpp, so they never work out again which ops a
// kernel holds. This file and the family names are all of codegen/ that
// passes/ may use.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_CODEGEN_TARGETS_H
#define QDSL_CODEGEN_TARGETS_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"

#include <string>
#include <vector>

namespace qdsl::codegen {

/// A chain of ops, each the only user of the previous one's result, that
/// becomes one kernel. A chain ending in `quadra.add` takes the add's other
/// operand (the residual) as an extra kernel input.
struct FusionRule {
  /// The kernel family (an entry of codegen/KernelFamilies.cpp, which maps
  /// it to each back end's generator).
  std::string family;
  /// Op names in dataflow order, e.g. {"quadra.layernorm", "quadra.linear"}.
  std::vector<std::string> chain;
  /// Positions in `chain` of ops whose result the backward pass of a
  /// training step may also read: the kernel then returns it too, after
  /// the last op's result, in this order. Every other op must be the only
  /// user of the one before it.
  std::vector<int> sideOutputs = {};
};

/// Which code generator implements a target's kernels: a column of the
/// kernel family table (codegen/KernelFamilies.cpp).
enum class Backend { Halide, Cuda };

struct Target {
  /// qdsl's name: x86-64-avx2, x86-64-avx512, arm64-a76, opencl, cuda.
  std::string name;
  /// Halide target string (never `host`); empty for the CUDA back end.
  std::string halideTarget;
  /// Whether kernels run on this machine (the ARM target's are built here
  /// and its programs cross-compiled: they run on ARM or under qemu).
  bool runnableHere;
  /// Whether generated code uses Halide's GPU schedules.
  bool gpu;
  /// Floats in one vector register (register blocks are sized by it).
  int vectorFloats;
  /// Tried in order, first match wins; ops no rule covers become kernels of
  /// their own, of family = the op's name without "quadra.".
  std::vector<FusionRule> rules;
  Backend backend = Backend::Halide;
  /// For a target this machine does not run: CMAKE_SYSTEM_PROCESSOR of its
  /// machine and the prefix of the cross tools that build its programs
  /// (codegen/project/qdsl_cross.cmake); empty when none are built.
  std::string crossProcessor = {};
  std::string crossToolPrefix = {};
  /// CPU features the kernels' instructions need (the names of GCC's and
  /// LLVM's host feature tests, e.g. "avx512f"): qdsl refuses to time the
  /// target on a CPU without one, and its generated programs refuse to run
  /// there, instead of stopping on an illegal instruction. Empty: nothing
  /// to check here (a cross target, or code that runs on a GPU).
  std::vector<std::string> cpuFeatures = {};
};

/// The first of `target`'s cpuFeatures this machine's CPU lacks; "" when it
/// has them all (or the target names none).
std::string missingCpuFeature(const Target &target);

/// Why `target`'s kernels cannot be timed on this machine ("target T does
/// not run on this machine", or the CPU feature it lacks); "" when they can.
std::string whyNotTimedHere(const Target &target);

/// The GPU architectures a CUDA project is built for when --cuda-arch names
/// none (CMAKE_CUDA_ARCHITECTURES): A100 and H100/H200.
inline constexpr char kDefaultCudaArchitectures[] = "80;90";
/// The oldest GPU architecture nvcc 13 builds for (Turing, sm_75).
inline constexpr unsigned kOldestCudaArchitecture = 75;

/// The target when none is named: one every x86-64 machine of the last
/// decade runs (x86-64-avx512 is the faster choice where the CPU has it).
inline constexpr char kDefaultTarget[] = "x86-64-avx2";

/// Not a target of its own: names the x86 target with the widest vectors
/// this machine's CPU runs (lookupTarget resolves it; none off x86).
inline constexpr char kHostTarget[] = "host";

/// Every target, in the order `--target` lists them.
llvm::ArrayRef<Target> allTargets();
/// Null when `name` is not a target; "host" is the widest x86 target this
/// CPU runs.
const Target *lookupTarget(llvm::StringRef name);

} // namespace qdsl::codegen

#endif // QDSL_CODEGEN_TARGETS_H
