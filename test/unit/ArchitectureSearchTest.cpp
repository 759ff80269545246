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

#include <algorithm>
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

TEST(ArchitectureSearch, TheLatencyLossHasNoUnitOfTime) {
  // The same latencies in seconds and in microseconds: the same loss, and
  // ∂L/∂E scaled by the unit alone.
  for (LatencyLoss form : {LatencyLoss::Additive, LatencyLoss::Multiplicative})
    for (double e : {0.2e-3, 0.9e-3, 3e-3}) {
      SCOPED_TRACE(std::string(latencyLossName(form)) + " at " + std::to_string(e));
      LatencyTerm seconds = latencyTerm(form, 1.1, e, 1e-3, 0.6);
      LatencyTerm micro = latencyTerm(form, 1.1, e * 1e6, 1e3, 0.6);
      EXPECT_NEAR(seconds.loss, micro.loss, 1e-12);
      EXPECT_NEAR(seconds.dLossdCE, micro.dLossdCE, 1e-12);
      EXPECT_NEAR(seconds.dLossdE * 1e-6, micro.dLossdE, 1e-9 * std::fabs(micro.dLossdE) + 1e-15);
    }
}

// Three layers' latency on one device, and logits that spread over them.
DeviceLatency exampleDevice(double limit) {
  DeviceLatency d;
  d.device = "host";
  d.fixed = 1e-4;
  d.limit = limit;
  d.seconds = {{1e-4, 3e-4, 0, 2e-4, 5e-4}, {2e-4, 1e-4, 4e-4}, {3e-4, 0, 1e-4, 6e-4}};
  return d;
}

LayerValues exampleLogits() { return {{0.2, -0.4, 0.9, 0.0, 0.3}, {0.5, 0.1, -0.7}, {0, 0.4, -0.2, 0.6}}; }

// E[LAT] with the candidates outside `involved` held at their probabilities
// and the involved ones renormalised among themselves.
double latencyWithOthersHeld(const DeviceLatency &device, const LayerValues &start,
                             const LayerValues &alpha, const std::vector<std::vector<int>> &involved) {
  double e = device.fixed;
  for (size_t l = 0; l < alpha.size(); ++l) {
    std::vector<double> held = softmax(start[l]), logits;
    double mass = 0;
    for (int c : involved[l]) {
      mass += held[c];
      logits.push_back(alpha[l][c]);
    }
    std::vector<double> within = softmax(logits);
    for (size_t k = 0; k < involved[l].size(); ++k)
      held[involved[l][k]] = mass * within[k];
    for (size_t c = 0; c < held.size(); ++c)
      e += held[c] * device.seconds[l][c];
  }
  return e;
}

TEST(ArchitectureSearch, TheLatencyGradientMovesOnlyTheInvolvedCandidates) {
  const DeviceLatency device = exampleDevice(1e-3);
  const LayerValues alpha = exampleLogits();
  const std::vector<std::vector<int>> pairs = {{3, 1}, {0, 2}, {0, 1, 2, 3}};
  LayerValues gradient;
  const double e = expectedLatency(device, alpha, pairs, &gradient);
  EXPECT_NEAR(e, latencyWithOthersHeld(device, alpha, alpha, pairs), 1e-15);
  for (size_t l = 0; l < alpha.size(); ++l)
    for (size_t c = 0; c < alpha[l].size(); ++c) {
      LayerValues up = alpha, down = alpha;
      up[l][c] += 1e-6;
      down[l][c] -= 1e-6;
      double numeric = (latencyWithOthersHeld(device, alpha, up, pairs) -
                        latencyWithOthersHeld(device, alpha, down, pairs)) / 2e-6;
      EXPECT_NEAR(gradient[l][c], numeric, 1e-12) << "layer " << l << " candidate " << c;
    }
}

TEST(ArchitectureSearch, AnArchitectureStepLeavesTheUnsampledCandidatesProbabilities) {
  // The latency term is active (over the limit on one device, and in the
  // multiplicative loss always): it must not move the candidates outside
  // the sampled pair either, nor must Adam.
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal;
  for (LatencyLoss form : {LatencyLoss::Additive, LatencyLoss::Multiplicative}) {
    SCOPED_TRACE(latencyLossName(form));
    LayerValues alpha = exampleLogits();
    LogitAdam adam(0.05);
    const std::vector<DeviceLatency> devices = {exampleDevice(0.4e-3), exampleDevice(2e-3)};
    for (int step = 0; step < 20; ++step) {
      GateMeasurement measured;
      measured.ce = 1.7;
      for (const std::vector<double> &layer : alpha) {
        auto [a, b] = samplePair(softmax(layer), rng);
        measured.involved.push_back({a, b});
        std::vector<double> gates(layer.size(), 0.0);
        gates[a] = normal(rng);
        gates[b] = normal(rng);
        measured.gateGradient.push_back(gates);
      }
      LayerValues before = alpha;
      updateArchitecture(alpha, measured, devices, form, 0.6, adam);
      for (size_t l = 0; l < alpha.size(); ++l) {
        std::vector<double> p0 = softmax(before[l]), p1 = softmax(alpha[l]);
        double moved = 0;
        for (size_t c = 0; c < p0.size(); ++c) {
          const std::vector<int> &pair = measured.involved[l];
          if (std::find(pair.begin(), pair.end(), int(c)) == pair.end())
            EXPECT_NEAR(p1[c], p0[c], 1e-12) << "step " << step << " layer " << l << " candidate " << c;
          else
            moved += std::fabs(p1[c] - p0[c]);
        }
        EXPECT_GT(moved, 0) << "step " << step << " layer " << l;
      }
    }
  }
}

TEST(ArchitectureSearch, WithEveryGateTheStepIsTheFullSoftmaxGradient) {
  // --gates all: every candidate involved, CE linear in the gates; one Adam
  // step from fresh moments moves each logit by lr·sign of the exact
  // gradient of CE + λ·(E/T − 1).
  const DeviceLatency device = exampleDevice(0.3e-3);
  LayerValues alpha = exampleLogits();
  const LayerValues w = {{0.3, -1, 2, 0.5, 0.1}, {1, -1, 0.2}, {-0.4, 0.8, 0, 1.5}};
  GateMeasurement measured;
  measured.ce = 1.0;
  measured.gateGradient = w;
  for (const std::vector<double> &layer : alpha) {
    std::vector<int> all(layer.size());
    std::iota(all.begin(), all.end(), 0);
    measured.involved.push_back(all);
  }
  auto loss = [&](const LayerValues &a) {
    double ce = 0;
    for (size_t l = 0; l < a.size(); ++l) {
      std::vector<double> p = softmax(a[l]);
      for (size_t c = 0; c < p.size(); ++c)
        ce += p[c] * w[l][c];
    }
    return ce + 2.0 * std::max(0.0, expectedLatency(device, a) / device.limit - 1);
  };
  LogitAdam adam(1e-3);
  LayerValues after = alpha;
  updateArchitecture(after, measured, {device}, LatencyLoss::Additive, 2.0, adam);
  for (size_t l = 0; l < alpha.size(); ++l) {
    // The shift that keeps Σ exp(α) moves every logit alike: compare
    // differences from candidate 0.
    std::vector<double> step(alpha[l].size());
    for (size_t c = 0; c < alpha[l].size(); ++c) {
      LayerValues up = alpha, down = alpha;
      up[l][c] += 1e-6;
      down[l][c] -= 1e-6;
      double numeric = (loss(up) - loss(down)) / 2e-6;
      step[c] = numeric > 0 ? -1e-3 : 1e-3;
    }
    for (size_t c = 1; c < alpha[l].size(); ++c)
      EXPECT_NEAR((after[l][c] - alpha[l][c]) - (after[l][0] - alpha[l][0]), step[c] - step[0],
                  1e-8)
          << "layer " << l << " candidate " << c;
  }
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
