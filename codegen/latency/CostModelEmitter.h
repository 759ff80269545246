//===- CostModelEmitter.h - a search space's latency as C++ -----*- C++ -*-===//
//
// `qdsl compile SPACE.qd --emit=cost-model --device P` writes C++ that the
// NAS training program compiles in: the expected latency of the space as a
// function of its choice probabilities,
//
//   E[LAT](p) = fixed + Σ_l Σ_c p_lc · LAT_lc,
//
// its gradient ∂E/∂p_lc = LAT_lc, and the same through a softmax of
// architecture logits α (∂E/∂α_lj = p_lj·(LAT_lj − Σ_c p_lc·LAT_lc)).
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_CODEGEN_LATENCY_COSTMODELEMITTER_H
#define QDSL_CODEGEN_LATENCY_COSTMODELEMITTER_H

#include <string>
#include <vector>

namespace qdsl::codegen {

struct CostModelSource {
  std::string sourceFile;   // the .qd file, for the header
  std::string space;        // the space's name
  std::string device;       // the profile's device name
  /// Appended to the namespace (qdsl_latency_<space>_<suffix>) so that one
  /// program can hold the models of several devices.
  std::string suffix;
  bool calibrated = false;
  long long batch = 1;
  double fixedSeconds = 0;
  struct Layer {
    std::string name;
    std::vector<std::string> candidates;
    std::vector<double> seconds;
  };
  std::vector<Layer> layers;
};

/// The C++ source (one self-contained header-style file).
std::string emitCostModel(const CostModelSource &model);

} // namespace qdsl::codegen

#endif // QDSL_CODEGEN_LATENCY_COSTMODELEMITTER_H
