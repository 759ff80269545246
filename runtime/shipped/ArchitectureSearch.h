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
/// β2 = 0.999); each logit's bias correction counts its own updates.
class LogitAdam {
public:
  LogitAdam(double lr = 1e-3, double beta1 = 0.0, double beta2 = 0.999, double epsilon = 1e-8)
      : lr(lr), beta1(beta1), beta2(beta2), epsilon(epsilon) {}
  /// Updates `alpha` (one layer, index `layer`) by `gradient`, only where
  /// `mask` is set (empty: everywhere).
  void step(size_t layer, std::vector<double> &alpha, const std::vector<double> &gradient,
            const std::vector<bool> &mask = {});

  /// The state (moments and update counts per layer), for a checkpoint.
  struct State {
    std::vector<std::vector<double>> m, v;
    std::vector<std::vector<int64_t>> count;
  };
  State state() const { return {m, v, count}; }
  void setState(State s) {
    m = std::move(s.m);
    v = std::move(s.v);
    count = std::move(s.count);
  }

private:
  double lr, beta1, beta2, epsilon;
  std::vector<std::vector<double>> m, v;
  std::vector<std::vector<int64_t>> count;
};

/// How latency enters the loss, with T the limit and E the expected latency.
/// Both depend on E/T alone, so on no unit of time.
enum class LatencyLoss {
  /// CE + λ·max(0, E/T − 1)
  Additive,
  /// CE·(E/T)^β (MnasNet's reward as a loss; ProxylessNAS's log E / log T
  /// changes strength with the unit of time).
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

/// One device's additive latency model, as qdsl writes it for the search
/// (search_constraints.h): E[LAT] = fixed + Σ_l Σ_c p_lc·seconds[l][c]; and
/// the limit on it (seconds).
struct DeviceLatency {
  std::string device;
  double fixed = 0, limit = 0;
  std::vector<std::vector<double>> seconds;
};

/// Per layer, per candidate.
using LayerValues = std::vector<std::vector<double>>;

/// E[LAT] with p_l = softmax(alpha[l]). With `gradient`, also its
/// derivative in the logits of the `involved` candidates of each layer
/// (empty: every candidate), the others held: with P the involved
/// candidates' total probability and L̄ their latency averaged by it,
/// ∂E/∂α_i = p_i·(L_i − L̄) for involved i, 0 otherwise. It sums to 0 over
/// the involved, so a step on it moves no other candidate's probability
/// (ProxylessNAS's two-path mode); with every candidate involved it is the
/// full softmax gradient.
double expectedLatency(const DeviceLatency &device, const LayerValues &alpha,
                       const std::vector<std::vector<int>> &involved = {},
                       LayerValues *gradient = nullptr);

/// What an architecture step measured: the cross-entropy on the validation
/// batch, and per layer the candidates involved (the sampled pair, or all
/// with --gates all) with ∂CE/∂g of each (0 for the others).
struct GateMeasurement {
  double ce = 0;
  std::vector<std::vector<int>> involved;
  LayerValues gateGradient;
};

/// The rest of an architecture step: the loss with every device's latency
/// term, each involved logit's gradient (the binary-gate estimator scaled
/// by ∂loss/∂CE, plus the latency terms' through expectedLatency), Adam on
/// the involved logits alone, and the shift that keeps the others'
/// probabilities. Returns the loss.
double updateArchitecture(LayerValues &alpha, const GateMeasurement &measured,
                          const std::vector<DeviceLatency> &devices, LatencyLoss form,
                          double weight, LogitAdam &adam);

/// "additive" / "multiplicative".
const char *latencyLossName(LatencyLoss form);
bool parseLatencyLoss(const std::string &name, LatencyLoss &form);

} // namespace qdsl::rt

#endif // QDSL_RUNTIME_SHIPPED_ARCHITECTURESEARCH_H
