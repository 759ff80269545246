//===- WeightInit.h - deterministic initial weights -------------*- C++ -*-===//
//
// The first values of a weight, from its initialiser and a seed. Each weight
// draws from its own stream, seeded by the model seed and the weight's name,
// so adding a layer does not change the others, and the generator is written
// out here (not std::normal_distribution) so that qdsl and every generated
// project produce the same numbers on any compiler.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_RUNTIME_SHIPPED_WEIGHTINIT_H
#define QDSL_RUNTIME_SHIPPED_WEIGHTINIT_H

#include "Tensor.h"

namespace qdsl::rt {

/// Mirrors the quadra dialect's InitKind.
enum class InitKind { Zeros, Ones, Constant, Normal, TruncNormal, Uniform };

struct InitSpec {
  InitKind kind = InitKind::Zeros;
  /// The constant, the standard deviation or the uniform bound.
  double value = 0;
};

/// A tensor of `shape` filled as `spec` says, for the weight called `name`.
/// trunc_normal redraws values beyond two standard deviations.
Tensor initializeTensor(const std::string &name, const std::vector<int64_t> &shape,
                        const InitSpec &spec, uint64_t seed);

} // namespace qdsl::rt

#endif // QDSL_RUNTIME_SHIPPED_WEIGHTINIT_H
