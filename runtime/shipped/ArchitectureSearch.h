//===- ArchitectureSearch.h - architecture logits, gates, latency loss -*- C++ -*-===//
//
// The arithmetic of a ProxylessNAS-style search (docs/NAS.md), for the
// `search` program of a supernet project: one logit α_lc per candidate c of
// each search layer l, p_l = softmax(α_l); binary gates sampled from p; the
// gradient of α from the gates' gradients (the BinaryConnect estimator of
// ProxylessNAS, restricted to the two sampled paths and renormalised over
// them); Adam for α; and the latency term of the loss, additive or
// multiplicative, from the expected latency E[LAT](α) of a device.
//
// Plain C++ (generated projects carry it).
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_RUNTIME_SHIPPED_ARCHITECTURESEARCH_H
#define QDSL_RUNTIME_SHIPPED_ARCHITECTURESEARCH_H

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace qdsl::rt {

/// softmax(logits), computed stably.
std::vector<double> softmax(const std::vector<double> &logits);

/// One index drawn with probabilities `p` (which sum to 1).
int sampleIndex(const std::vector<double> &p, std::mt19937_64 &rng);

/// Two different indices drawn from `p` without replacement (the first as
/// sampleIndex, the second from the rest renormalised); with one candidate,
/// both are 0.
std::pair<int, int> samplePair(const std::vector<double> &p, std::mt19937_64 &rng);

/// ProxylessNAS's estimator: with the probabilities renormalised over the
/// `involved` candidates, p̃_i = exp(α_i) / Σ_{j∈involved} exp(α_j),
///
///   ∂L/∂α_i = Σ_{j∈involved} ∂L/∂g_j · p̃_j · (δ_ij − p̃_i)   (i ∈ involved)
///
/// and 0 for the others. `gateGradient` has one entry per candidate.
std::vector<double> binaryGateGradient(const std::vector<double> &alpha,
                                       const std::vector<int> &involved,
                                       const std::vector<double> &gateGradient);

/// After an update of the `involved` logits, shifts them by one constant so
/// that Σ_{j∈involved} exp(α_j) is what it was (`before`): the candidates
/// that were not sampled keep their probabilities (ProxylessNAS).
void keepOthersProbabilities(std::vector<double> &alpha, const std::vector<double> &before,
                             const std::vector<int> &involved);

/// Adam for the architecture logits (ProxylessNAS: lr 1e-3, β1 = 0,
/// β2 = 0.999), with its own step count per layer.
class LogitAdam {
public:
  LogitAdam(double lr = 1e-3, double beta1 = 0.0, double beta2 = 0.999, double epsilon = 1e-8)
      : lr(lr), beta1(beta1), beta2(beta2), epsilon(epsilon) {}
  /// Updates `alpha` (one layer, index `layer`) by `gradient`, only where
  /// `mask` is set (empty: everywhere).
  void step(size_t layer, std::vector<double> &alpha, const std::vector<double> &gradient,
            const std::vector<bool> &mask = {});

private:
  double lr, beta1, beta2, epsilon;
  std::vector<std::vector<double>> m, v;
  std::vector<std::vector<int64_t>> count;
};

/// How latency enters the loss, with T the limit and E the expected latency.
enum class LatencyLoss {
  /// CE + λ·max(0, E/T − 1)
  Additive,
  /// CE·(log E / log T)^β (ProxylessNAS), E and T in microseconds.
  Multiplicative,
};

struct LatencyTerm {
  /// The loss with the term, and its derivatives by CE and by E.
  double loss = 0, dLossdCE = 1, dLossdE = 0;
};

/// The loss for cross-entropy `ce`, expected latency `expected` and limit
/// `limit` (seconds), with `weight` λ (additive) or β (multiplicative).
LatencyTerm latencyTerm(LatencyLoss form, double ce, double expected, double limit,
                        double weight);

/// "additive" / "multiplicative".
const char *latencyLossName(LatencyLoss form);
bool parseLatencyLoss(const std::string &name, LatencyLoss &form);

} // namespace qdsl::rt

#endif // QDSL_RUNTIME_SHIPPED_ARCHITECTURESEARCH_H
