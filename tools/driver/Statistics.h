//===- Statistics.h - the tests qdsl search reports -------------*- C++ -*-===//
//
// What `qdsl search` needs to say whether a searched architecture beats
// random ones and whether the supernet ranks architectures as training them
// alone does: mean and standard deviation, Welch's unequal-variance t test
// (one-sample when one side has a single value), Student's t distribution,
// and Kendall's rank correlation.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_TOOLS_DRIVER_STATISTICS_H
#define QDSL_TOOLS_DRIVER_STATISTICS_H

#include "llvm/ADT/ArrayRef.h"

namespace qdsl::driver {

double mean(llvm::ArrayRef<double> x);
/// The middle value (the mean of the two middle ones for an even count); 0
/// for none.
double median(llvm::ArrayRef<double> x);
/// The sample standard deviation (n − 1); 0 for fewer than two values.
double standardDeviation(llvm::ArrayRef<double> x);

/// P(T ≤ t) for Student's t with `df` > 0 degrees of freedom (df need not
/// be whole: Welch's is not).
double studentTDistribution(double t, double df);

struct TTest {
  double t = 0, df = 0;
  /// Two-sided p-value; 1 when the test is undefined (no spread at all).
  double p = 1;
  /// "welch", "one-sample" (when `a` has a single value: the others'
  /// mean against it) or "none" (fewer than two values of `b`: no test).
  const char *kind = "welch";
};

/// Whether the means of `a` and `b` differ: Welch's test with both sides of
/// at least two values; with `a` a single value, the one-sample t test of
/// `b` against it. t > 0 when a's mean is above b's.
TTest welchTest(llvm::ArrayRef<double> a, llvm::ArrayRef<double> b);

/// Kendall's τ-b of the pairs (x_i, y_i): +1 when they rank alike, −1 when
/// reversed; ties in either count as neither (the τ-b correction).
double kendallTau(llvm::ArrayRef<double> x, llvm::ArrayRef<double> y);

} // namespace qdsl::driver

#endif // QDSL_TOOLS_DRIVER_STATISTICS_H
