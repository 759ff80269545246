//===- Statistics.cpp - the tests qdsl search reports ---------------------===//

#include "tools/driver/Statistics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace qdsl::driver {

double mean(llvm::ArrayRef<double> x) {
  if (x.empty())
    return 0;
  double sum = 0;
  for (double v : x)
    sum += v;
  return sum / double(x.size());
}

double median(llvm::ArrayRef<double> x) {
  if (x.empty())
    return 0;
  std::vector<double> sorted(x.begin(), x.end());
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  return (sorted[(n - 1) / 2] + sorted[n / 2]) / 2;
}

double standardDeviation(llvm::ArrayRef<double> x) {
  if (x.size() < 2)
    return 0;
  double m = mean(x), sum = 0;
  for (double v : x)
    sum += (v - m) * (v - m);
  return std::sqrt(sum / double(x.size() - 1));
}

namespace {

/// The continued fraction of the regularised incomplete beta function
/// I_x(a, b), evaluated by the modified Lentz method; converges fast for
/// x < (a + 1) / (a + b + 2).
double betaContinuedFraction(double a, double b, double x) {
  const double tiny = 1e-300;
  double c = 1, d = 1 - (a + b) * x / (a + 1);
  d = 1 / (std::fabs(d) < tiny ? tiny : d);
  double h = d;
  for (int m = 1; m <= 10000; ++m) {
    // The even and the odd step of the fraction.
    for (int odd = 0; odd < 2; ++odd) {
      double numerator =
          odd ? -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
              : m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
      d = 1 + numerator * d;
      d = 1 / (std::fabs(d) < tiny ? tiny : d);
      c = 1 + numerator / c;
      c = std::fabs(c) < tiny ? tiny : c;
      h *= d * c;
      if (odd && std::fabs(d * c - 1) < 1e-15)
        return h;
    }
  }
  return h;
}

double regularisedIncompleteBeta(double a, double b, double x) {
  if (x <= 0)
    return 0;
  if (x >= 1)
    return 1;
  double front = std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) +
                          a * std::log(x) + b * std::log1p(-x));
  if (x < (a + 1) / (a + b + 2))
    return front * betaContinuedFraction(a, b, x) / a;
  return 1 - front * betaContinuedFraction(b, a, 1 - x) / b;
}

} // namespace

double studentTDistribution(double t, double df) {
  if (std::isnan(t) || !(df > 0))
    return std::numeric_limits<double>::quiet_NaN();
  if (std::isinf(t))
    return t > 0 ? 1 : 0;
  // P(|T| > |t|) = I_{df/(df+t²)}(df/2, 1/2).
  double tail = regularisedIncompleteBeta(df / 2, 0.5, df / (df + t * t)) / 2;
  return t > 0 ? 1 - tail : tail;
}

TTest welchTest(llvm::ArrayRef<double> a, llvm::ArrayRef<double> b) {
  TTest out;
  const double na = double(a.size()), nb = double(b.size());
  if (a.empty() || b.size() < 2) {
    out.kind = "none";
    return out;
  }
  const double sb = standardDeviation(b);
  double standardError = 0;
  if (a.size() == 1) {
    out.kind = "one-sample";
    out.df = nb - 1;
    standardError = sb / std::sqrt(nb);
  } else {
    const double va = std::pow(standardDeviation(a), 2) / na, vb = sb * sb / nb;
    standardError = std::sqrt(va + vb);
    // Welch–Satterthwaite.
    out.df = (va + vb) * (va + vb) / (va * va / (na - 1) + vb * vb / (nb - 1));
  }
  if (!(standardError > 0))
    return out;
  out.t = (mean(a) - mean(b)) / standardError;
  out.p = 2 * studentTDistribution(-std::fabs(out.t), out.df);
  return out;
}

double kendallTau(llvm::ArrayRef<double> x, llvm::ArrayRef<double> y) {
  double concordant = 0, discordant = 0, tiesX = 0, tiesY = 0;
  for (size_t i = 0; i < x.size(); ++i)
    for (size_t j = i + 1; j < x.size(); ++j) {
      double dx = x[i] - x[j], dy = y[i] - y[j];
      if (dx == 0 && dy == 0)
        continue;
      if (dx == 0)
        ++tiesX;
      else if (dy == 0)
        ++tiesY;
      else if ((dx > 0) == (dy > 0))
        ++concordant;
      else
        ++discordant;
    }
  double denominator =
      std::sqrt((concordant + discordant + tiesX) * (concordant + discordant + tiesY));
  return denominator > 0 ? (concordant - discordant) / denominator : 0;
}

} // namespace qdsl::driver
