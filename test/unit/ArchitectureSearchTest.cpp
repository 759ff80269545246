//===- ArchitectureSearchTest.cpp - logits, gates and the latency loss ----===//
//
// runtime/shipped/ArchitectureSearch: the binary-gate estimator against the
// exact gradient where it is exact (a loss linear in the gates), the
// two-path renormalisation, the rescaling that keeps the other candidates'
// probabilities, sampling frequencies, and both latency terms against
// finite differences.
//
//===----------------------------------------------------------------------===//

#include "runtime/shipped/ArchitectureSearch.h"
#include "runtime/shipped/ArenaPlanner.h"

#include <cmath>
#include <numeric>

#include <gtest/gtest.h>

using namespace qdsl::rt;

namespace {

// E_g[L] for L(g) = Σ_j g_j·w_j with one-hot g drawn from softmax(α):
// Σ_j p_j·w_j. Its gradient in α is what the estimator must give when
// every candidate is involved.
double expectedLoss(const std::vector<double> &alpha, const std::vector<double> &w,
                    const std::vector<int> &involved) {
  std::vector<double> logits;
  for (int i : involved)
    logits.push_back(alpha[i]);
  std::vector<double> p = softmax(logits);
  double sum = 0;
  for (size_t k = 0; k < involved.size(); ++k)
    sum += p[k] * w[involved[k]];
  return sum;
}

TEST(ArchitectureSearch, BinaryGateGradientIsTheGradientOfTheExpectedLoss) {
  const std::vector<double> alpha = {0.3, -1.2, 0.8, 0.1}, w = {2.0, -0.5, 1.5, 4.0};
  for (const std::vector<int> &involved :
       {std::vector<int>{0, 1, 2, 3}, std::vector<int>{2, 0}, std::vector<int>{1, 3}}) {
    std::vector<double> g = binaryGateGradient(alpha, involved, w);
    for (size_t i = 0; i < alpha.size(); ++i) {
      std::vector<double> up = alpha, down = alpha;
      up[i] += 1e-6;
      down[i] -= 1e-6;
      double numeric = (expectedLoss(up, w, involved) - expectedLoss(down, w, involved)) / 2e-6;
      EXPECT_NEAR(g[i], numeric, 1e-8) << "candidate " << i;
    }
  }
}

TEST(ArchitectureSearch, RescalingKeepsTheOtherCandidatesProbabilities) {
  std::vector<double> before = {0.5, -0.2, 1.0, 0.0}, alpha = before;
  alpha[1] += 0.7;  // an update of the sampled pair {1, 3}
  alpha[3] -= 0.2;
  keepOthersProbabilities(alpha, before, {1, 3});
  std::vector<double> p0 = softmax(before), p1 = softmax(alpha);
  EXPECT_NEAR(p0[0], p1[0], 1e-12);
  EXPECT_NEAR(p0[2], p1[2], 1e-12);
  EXPECT_NEAR(p0[1] + p0[3], p1[1] + p1[3], 1e-12);
  EXPECT_GT(p1[1] / p1[3], p0[1] / p0[3]);
}

TEST(ArchitectureSearch, SamplingFollowsTheProbabilities) {
  std::mt19937_64 rng(3);
  const std::vector<double> p = {0.1, 0.6, 0.3};
  std::vector<int> counts(3), pairs(9);
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    ++counts[sampleIndex(p, rng)];
    auto [a, b] = samplePair(p, rng);
    ASSERT_NE(a, b);
    ++pairs[a * 3 + b];
  }
  for (int c = 0; c < 3; ++c)
    EXPECT_NEAR(counts[c] / double(n), p[c], 0.005);
  // P(first = 1, second = 2) = 0.6 · 0.3 / 0.4.
  EXPECT_NEAR(pairs[1 * 3 + 2] / double(n), 0.6 * 0.3 / 0.4, 0.005);
  std::vector<double> certain = {0.0, 1.0};
  auto [a, b] = samplePair(certain, rng);
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 0);
}

TEST(ArchitectureSearch, LatencyTermsAndTheirDerivatives) {
  const double ce = 1.3, limit = 2e-3;
  for (LatencyLoss form : {LatencyLoss::Additive, LatencyLoss::Multiplicative})
    for (double e : {1.5e-3, 2.5e-3, 4e-3}) {
      SCOPED_TRACE(std::string(latencyLossName(form)) + " at " + std::to_string(e));
      LatencyTerm t = latencyTerm(form, ce, e, limit, 0.6);
      auto at = [&](double c, double x) { return latencyTerm(form, c, x, limit, 0.6).loss; };
      EXPECT_NEAR(t.dLossdE, (at(ce, e * (1 + 1e-7)) - at(ce, e * (1 - 1e-7))) / (2e-7 * e),
                  1e-4 * std::max(1.0, std::fabs(t.dLossdE)));
      EXPECT_NEAR(t.dLossdCE, (at(ce + 1e-7, e) - at(ce - 1e-7, e)) / 2e-7, 1e-6);
    }
  // Additive: nothing under the limit, λ·(E/T − 1) over it.
  EXPECT_DOUBLE_EQ(latencyTerm(LatencyLoss::Additive, ce, 1e-3, limit, 2).loss, ce);
  EXPECT_NEAR(latencyTerm(LatencyLoss::Additive, ce, 3e-3, limit, 2).loss, ce + 1.0, 1e-12);
  // Multiplicative: above 1 over the limit, below under it.
  EXPECT_GT(latencyTerm(LatencyLoss::Multiplicative, ce, 3e-3, limit, 0.6).loss, ce);
  EXPECT_LT(latencyTerm(LatencyLoss::Multiplicative, ce, 1e-3, limit, 0.6).loss, ce);
}

TEST(ArchitectureSearch, LogitAdamHasNoMomentumAndUpdatesOnlyTheMask) {
  LogitAdam adam(0.1);
  std::vector<double> alpha = {0, 0, 0};
  adam.step(0, alpha, {1.0, -2.0, 3.0}, {true, true, false});
  // First Adam step: lr · sign(g).
  EXPECT_NEAR(alpha[0], -0.1, 1e-6);
  EXPECT_NEAR(alpha[1], 0.1, 1e-6);
  EXPECT_EQ(alpha[2], 0.0);
  // β1 = 0: a reversed gradient moves back at once.
  adam.step(0, alpha, {-1.0, 0, 0}, {true, false, false});
  EXPECT_GT(alpha[0], -0.1);
}

TEST(ArenaPlanner, ExclusiveBuffersShareMemory) {
  // Two candidates' buffers live at the same time but never run together.
  std::vector<ArenaBuffer> buffers(3);
  buffers[0] = {1024, 0, 5, 0, 0, 0};
  buffers[1] = {1024, 0, 5, 0, 0, 1};
  buffers[2] = {1024, 0, 5, 0, -1, -1};
  EXPECT_EQ(placeBuffers(buffers), 2048u);
  EXPECT_EQ(buffers[0].offset, buffers[1].offset);
  EXPECT_NE(buffers[2].offset, buffers[0].offset);
}

} // namespace
