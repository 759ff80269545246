//===- KernelFamilies.h - every kernel family and who implements it -*- C++ -*-===//
//
// A kernel family is what --quadra-form-kernels names a kernel after: a
// fusion rule's family (codegen/Targets.cpp), an op that no rule covers (its
// name without "quadra."), or `qdwconv_grad` (the backward pass of a
// qdwconv, grouped by FormKernels itself). This table is the one place that
// maps a family to its implementation in each back end: a column per back
// end, Halide (generator and parameter describer) and CUDA (the kernel of
// codegen/cuda/ that runs it). The latency model fits one predictor per
// family.
//
// A describer reads a kernel's ops into a call: which implementation, its
// parameters (channels, window, what is fused) and its tensors in order.
// That description does not depend on the back end, so the CUDA column
// reuses the Halide column's describers; each back end reads the views it
// needs from it (the CUDA one ignores the Halide weight panels).
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_CODEGEN_KERNELFAMILIES_H
#define QDSL_CODEGEN_KERNELFAMILIES_H

#include "codegen/HalideKernels.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"

#include <string>
#include <vector>

namespace qdsl::codegen {

struct KernelFamily {
  std::string name;
  /// What a kernel of the family computes, in the dialect's op names.
  std::string computes;

  /// The Halide back end (x86-64-avx2, arm64-a76, opencl).
  struct Halide {
    /// The generators (codegen/halide/<name>_generator.cpp) the describer
    /// may call; the first is the usual one.
    std::vector<std::string> generators;
    halide::Describer describe = nullptr;
  } halide;

  /// The CUDA back end (cuda): the functions of codegen/cuda/qdsl_cuda.h,
  /// named as the describer's generator, that run the family; empty when
  /// the family has no CUDA kernel yet (the backward pass).
  struct Cuda {
    std::vector<std::string> kernels;
    halide::Describer describe = nullptr;
  } cuda;
};

/// Every family, forward families first.
llvm::ArrayRef<KernelFamily> allKernelFamilies();
/// Null when no back end knows `name`.
const KernelFamily *lookupKernelFamily(llvm::StringRef name);

} // namespace qdsl::codegen

#endif // QDSL_CODEGEN_KERNELFAMILIES_H
