//===- ModelStatistics.h - parameters, MACs and memory of a model -*- C++ -*-===//
//
// Counts what a model costs, layer by layer. A layer is the first part of an
// op's name location (`stages.2.5` in `stages.2.5/QuadraConv`), as the front
// end names them; ops without a name count as layers of their own.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_PASSES_ANALYSIS_MODELSTATISTICS_H
#define QDSL_PASSES_ANALYSIS_MODELSTATISTICS_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <string>
#include <vector>

namespace qdsl::quadra {

struct LayerStatistics {
  std::string name;
  /// Shape of the layer's last result, batch substituted.
  std::string output;
  uint64_t params = 0;
  uint64_t macs = 0;
  /// Bytes of every tensor the layer's ops produce in a forward pass.
  uint64_t activationBytes = 0;
};

/// One searchable layer of a search space and the cost of each candidate.
struct ChoiceStatistics {
  std::string layer;
  std::vector<LayerStatistics> candidates;
};

struct ModelStatistics {
  std::string model;
  int64_t batch = 1;
  std::string input;
  std::string output;
  /// Layers in program order; a searchable layer appears as one row per
  /// candidate, named `layer[candidate]`.
  std::vector<LayerStatistics> layers;
  std::vector<ChoiceStatistics> choices;
  /// Totals over every row: for a search space, the whole supernet.
  uint64_t params = 0;
  uint64_t macs = 0;
  uint64_t activationBytes = 0;
  /// Largest sum of live activations at any point of a forward pass in
  /// program order (inputs included, weights not), for the costliest path.
  uint64_t peakActivationBytes = 0;
  /// Cheapest and costliest path through a search space (equal to the
  /// totals for a model without choices).
  uint64_t paramsMin = 0, paramsMax = 0, macsMin = 0, macsMax = 0;
};

/// Fails, with an error at the offending op, when a shape other than the
/// batch is dynamic or a count overflows 64 bits.
mlir::FailureOr<ModelStatistics> computeModelStatistics(mlir::func::FuncOp func,
                                                        int64_t batch);

void printModelStatistics(const ModelStatistics &stats, llvm::raw_ostream &os);

llvm::json::Object modelStatisticsToJSON(const ModelStatistics &stats);

/// `23.63 M`, `4.12 G`: a count for people.
std::string formatCount(uint64_t count);
/// `12.3 MiB`: a byte count for people.
std::string formatBytes(uint64_t bytes);

} // namespace qdsl::quadra

#endif // QDSL_PASSES_ANALYSIS_MODELSTATISTICS_H
