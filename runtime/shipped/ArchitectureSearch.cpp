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
  const double ratio = expected / limit;
  if (form == LatencyLoss::Additive) {
    double over = ratio - 1.0;
    t.loss = ce + (over > 0 ? weight * over : 0.0);
    t.dLossdCE = 1.0;
    t.dLossdE = over > 0 ? weight / limit : 0.0;
    return t;
  }
  if (!(ratio > 0)) {
    // No latency model gives 0 s; hold the term instead of dividing by it.
    t.loss = ce;
    return t;
  }
  double factor = std::pow(ratio, weight);
  t.loss = ce * factor;
  t.dLossdCE = factor;
  t.dLossdE = ce * weight * factor / expected;
  return t;
}

double expectedLatency(const DeviceLatency &device, const LayerValues &alpha,
                       const std::vector<std::vector<int>> &involved, LayerValues *gradient) {
  double e = device.fixed;
  if (gradient)
    gradient->assign(alpha.size(), {});
  for (size_t l = 0; l < alpha.size(); ++l) {
    const std::vector<double> p = softmax(alpha[l]);
    const std::vector<double> &seconds = device.seconds[l];
    for (size_t c = 0; c < p.size(); ++c)
      e += p[c] * seconds[c];
    if (!gradient)
      continue;
    std::vector<int> all(p.size());
    for (size_t c = 0; c < p.size(); ++c)
      all[c] = static_cast<int>(c);
    const std::vector<int> &moving =
        involved.empty() || involved[l].empty() ? all : involved[l];
    double mass = 0, weighted = 0;
    for (int c : moving) {
      mass += p[c];
      weighted += p[c] * seconds[c];
    }
    const double mean = mass > 0 ? weighted / mass : 0;
    std::vector<double> &g = (*gradient)[l];
    g.assign(p.size(), 0.0);
    for (int c : moving)
      g[c] = p[c] * (seconds[c] - mean);
  }
  return e;
}

double updateArchitecture(LayerValues &alpha, const GateMeasurement &measured,
                          const std::vector<DeviceLatency> &devices, LatencyLoss form,
                          double weight, LogitAdam &adam) {
  // Additive: CE + Σ_d penalty_d. Multiplicative: CE·Π_d f_d, so
  // ∂L/∂E_d = CE·f_d'(E_d)·Π_{d'≠d} f_d'.
  const double ce = measured.ce;
  double loss = ce, dLossdCE = 1.0;
  std::vector<LatencyTerm> terms;
  std::vector<LayerValues> latencyGradients(devices.size());
  for (size_t d = 0; d < devices.size(); ++d) {
    double e = expectedLatency(devices[d], alpha, measured.involved, &latencyGradients[d]);
    terms.push_back(latencyTerm(form, ce, e, devices[d].limit, weight));
    if (form == LatencyLoss::Additive) {
      loss += terms.back().loss - ce;
    } else {
      loss *= terms.back().dLossdCE;
      dLossdCE *= terms.back().dLossdCE;
    }
  }
  std::vector<double> scale(devices.size());
  for (size_t d = 0; d < devices.size(); ++d) {
    scale[d] = terms[d].dLossdE;
    if (form == LatencyLoss::Multiplicative && terms[d].dLossdCE > 0)
      scale[d] *= dLossdCE / terms[d].dLossdCE;
  }
  for (size_t l = 0; l < alpha.size(); ++l) {
    const std::vector<int> &involved = measured.involved[l];
    std::vector<double> gradient =
        binaryGateGradient(alpha[l], involved, measured.gateGradient[l]);
    std::vector<bool> mask(alpha[l].size(), false);
    for (int c : involved)
      mask[c] = true;
    for (size_t c = 0; c < gradient.size(); ++c) {
      gradient[c] *= dLossdCE;
      for (size_t d = 0; d < devices.size(); ++d)
        gradient[c] += scale[d] * latencyGradients[d][l][c];
    }
    const std::vector<double> before = alpha[l];
    adam.step(l, alpha[l], gradient, mask);
    keepOthersProbabilities(alpha[l], before, involved);
  }
  return loss;
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
