//===- KernelFamilies.h - every kernel family and who implements it -*- C++ -*-===//
//
// A kernel family is what --quadra-form-kernels names a kernel after: a
// fusion rule's family (codegen/Targets.cpp), an op that no rule covers (its
// name without "quadra."), or `qdwconv_grad` (the backward pass of a
// qdwconv, grouped by FormKernels itself). This table is the one place that
// says how each family runs on each back end, and the latency model fits one
// predictor per family.
//
// A family's describer (codegen/KernelCalls.cpp) reads a kernel's ops into a
// call of one kernel implementation: which one, its parameters (channels,
// window, what is fused) and its tensors with their roles. That description
// does not depend on the back end. An implementation, in turn, is a Halide
// generator and a CUDA function of the same name; the implementation table
// holds what each back end's writer needs to call it (the generator's file,
// the CUDA function's parameter and tensor structs).
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_CODEGEN_KERNELFAMILIES_H
#define QDSL_CODEGEN_KERNELFAMILIES_H

#include "codegen/KernelCalls.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"

#include <string>
#include <vector>

namespace qdsl::codegen {

/// One kernel implementation, named as it is in both back ends.
struct KernelImplementation {
  std::string name;
  /// The Halide back end (x86-64-avx2, x86-64-avx512, arm64-a76, opencl): the generator
  /// codegen/halide/<halideGenerator>_generator.cpp; empty when none.
  std::string halideGenerator;
  /// The CUDA back end (cuda): qdsl_cuda::<name> of codegen/cuda/qdsl_cuda.h
  /// with these parameter and tensor structs; empty when none.
  std::string cudaParams, cudaTensors;
  /// Sizes a Halide generator reads from its buffers but the CUDA struct
  /// takes as parameters: the rows of one example (`rows_per_example`), the
  /// pixels of one example's map (`pixels`).
  bool cudaTakesRowsPerExample = false, cudaTakesPixels = false;
};

struct KernelFamily {
  std::string name;
  /// What a kernel of the family computes, in the dialect's op names.
  std::string computes;
  /// The implementations the describer may choose; the first is the usual
  /// one.
  std::vector<std::string> implementations;
  KernelDescriber describe = nullptr;
  /// A fused family's parts: the family of each kernel it replaces and how
  /// many of its ops, in order, that kernel would hold (the cost model
  /// predicts a kernel from its parts where a profile has no fit of the
  /// fused family). Empty for the others.
  std::vector<std::pair<std::string, int>> parts = {};
};

/// Every family, forward families first.
llvm::ArrayRef<KernelFamily> allKernelFamilies();
/// Null when no back end knows `name`.
const KernelFamily *lookupKernelFamily(llvm::StringRef name);

/// Every implementation.
llvm::ArrayRef<KernelImplementation> allKernelImplementations();
/// Null for an unknown name.
const KernelImplementation *lookupKernelImplementation(llvm::StringRef name);

/// Whether `backend` has every implementation `family` may choose.
bool implementsFamily(Backend backend, const KernelFamily &family);
/// Whether `backend` has `implementation`.
bool hasImplementation(Backend backend, const KernelImplementation &implementation);

} // namespace qdsl::codegen

#endif // QDSL_CODEGEN_KERNELFAMILIES_H
