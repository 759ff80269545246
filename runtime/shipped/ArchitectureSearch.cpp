//===- ArchitectureSearch.cpp - architecture logits, gates, latency loss --===//

#include "ArchitectureSearch.h"

#include <algorithm>
#include <cmath>

namespace qdsl::rt {

std::vector<double> softmax(const std::vector<double> &logits) {
  std::vector<double> p(logits.size());
  if (logits.empty())
    return p;
  double top = *std::max_element(logits.begin(), logits.end()), sum = 0;
  for (size_t i = 0; i < logits.size(); ++i)
    sum += p[i] = std::exp(logits[i] - top);
  for (double &x : p)
    x /= sum;
  return p;
}

int sampleIndex(const std::vector<double> &p, std::mt19937_64 &rng) {
  double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng), sum = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    sum += p[i];
    if (u < sum)
      return static_cast<int>(i);
  }
  // Rounding left u above the last partial sum.
  for (size_t i = p.size(); i-- > 0;)
    if (p[i] > 0)
      return static_cast<int>(i);
  return 0;
}

std::pair<int, int> samplePair(const std::vector<double> &p, std::mt19937_64 &rng) {
  int first = sampleIndex(p, rng);
  if (p.size() < 2)
    return {first, first};
  std::vector<double> rest = p;
  double left = 1.0 - rest[static_cast<size_t>(first)];
  rest[static_cast<size_t>(first)] = 0;
  if (!(left > 0)) {
    // Every other candidate has probability 0: any of them, uniformly.
    int other = std::uniform_int_distribution<int>(0, static_cast<int>(p.size()) - 2)(rng);
    return {first, other >= first ? other + 1 : other};
  }
  for (double &x : rest)
    x /= left;
  return {first, sampleIndex(rest, rng)};
}

std::vector<double> binaryGateGradient(const std::vector<double> &alpha,
                                       const std::vector<int> &involved,
                                       const std::vector<double> &gateGradient) {
  std::vector<double> logits, gradient(alpha.size(), 0.0);
  for (int i : involved)
    logits.push_back(alpha[static_cast<size_t>(i)]);
  std::vector<double> p = softmax(logits);
  for (size_t a = 0; a < involved.size(); ++a) {
    double sum = 0;
    for (size_t b = 0; b < involved.size(); ++b)
      sum += gateGradient[static_cast<size_t>(involved[b])] * p[b] *
             ((a == b ? 1.0 : 0.0) - p[a]);
    gradient[static_cast<size_t>(involved[a])] = sum;
  }
  return gradient;
}

void keepOthersProbabilities(std::vector<double> &alpha, const std::vector<double> &before,
                             const std::vector<int> &involved) {
  if (involved.empty())
    return;
  // log Σ exp(before) − log Σ exp(after), computed stably.
  auto logSumExp = [&](const std::vector<double> &x) {
    double top = -INFINITY;
    for (int i : involved)
      top = std::max(top, x[static_cast<size_t>(i)]);
    double sum = 0;
    for (int i : involved)
      sum += std::exp(x[static_cast<size_t>(i)] - top);
    return top + std::log(sum);
  };
  double shift = logSumExp(before) - logSumExp(alpha);
  for (int i : involved)
    alpha[static_cast<size_t>(i)] += shift;
}

void LogitAdam::step(size_t layer, std::vector<double> &alpha, const std::vector<double> &gradient,
                     const std::vector<bool> &mask) {
  if (m.size() <= layer) {
    m.resize(layer + 1);
    v.resize(layer + 1);
    count.resize(layer + 1);
  }
  if (m[layer].size() != alpha.size()) {
    m[layer].assign(alpha.size(), 0.0);
    v[layer].assign(alpha.size(), 0.0);
    count[layer].assign(alpha.size(), 0);
  }
  for (size_t i = 0; i < alpha.size(); ++i) {
    if (!mask.empty() && !mask[i])
      continue;
    int64_t t = ++count[layer][i];
    m[layer][i] = beta1 * m[layer][i] + (1 - beta1) * gradient[i];
    v[layer][i] = beta2 * v[layer][i] + (1 - beta2) * gradient[i] * gradient[i];
    double mHat = m[layer][i] / (1 - std::pow(beta1, double(t)));
    double vHat = v[layer][i] / (1 - std::pow(beta2, double(t)));
    alpha[i] -= lr * mHat / (std::sqrt(vHat) + epsilon);
  }
}

LatencyTerm latencyTerm(LatencyLoss form, double ce, double expected, double limit,
                        double weight) {
  LatencyTerm t;
  if (form == LatencyLoss::Additive) {
    double over = expected / limit - 1.0;
    t.loss = ce + (over > 0 ? weight * over : 0.0);
    t.dLossdCE = 1.0;
    t.dLossdE = over > 0 ? weight / limit : 0.0;
    return t;
  }
  // In microseconds, so that the logarithms of sub-millisecond latencies
  // stay positive.
  double e = std::max(expected * 1e6, 1.0 + 1e-9), T = std::max(limit * 1e6, 1.0 + 1e-9);
  double ratio = std::log(e) / std::log(T);
  double factor = std::pow(ratio, weight);
  t.loss = ce * factor;
  t.dLossdCE = factor;
  // d/dE of (log e / log T)^β, e = E·1e6.
  t.dLossdE = ce * weight * std::pow(ratio, weight - 1.0) / (std::log(T) * expected);
  return t;
}

const char *latencyLossName(LatencyLoss form) {
  return form == LatencyLoss::Additive ? "additive" : "multiplicative";
}

bool parseLatencyLoss(const std::string &name, LatencyLoss &form) {
  if (name == "additive")
    form = LatencyLoss::Additive;
  else if (name == "multiplicative")
    form = LatencyLoss::Multiplicative;
  else
    return false;
  return true;
}

} // namespace qdsl::rt
