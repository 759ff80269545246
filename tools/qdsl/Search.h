//===- Search.h - what qdsl compile --search and qdsl search share -*- C++ -*-===//

#ifndef QDSL_TOOLS_QDSL_SEARCH_H
#define QDSL_TOOLS_QDSL_SEARCH_H

#include "codegen/latency/CostModel.h"
#include "codegen/latency/Estimate.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <string>
#include <vector>

namespace qdsl::tool {

extern llvm::cl::opt<std::string> latencyLimit;
extern llvm::cl::list<std::string> onlyDevices;

/// "2.5ms", "800us", "1s" in milliseconds; false with `error` naming the
/// flag.
bool parseLatencyLimit(llvm::StringRef text, double &ms, std::string &error);

/// A latency limit a search honours, with the profile that predicts it.
struct SearchConstraint {
  std::string device;
  double limitMs = 0;
  cost::DeviceProfile profile;
};

/// The limits of `space` (its constraints), with --latency-limit replacing
/// the limit of --device's device (`given`; adding it if the space has
/// none for it), each with its profile. Errors on `space`.
mlir::FailureOr<std::vector<SearchConstraint>>
searchConstraints(mlir::func::FuncOp space, const cost::DeviceProfile &given);

/// search_constraints.h of a supernet project: the latency model of every
/// constraint (codegen/latency/CostModelEmitter), in a table the search
/// program reads.
mlir::FailureOr<std::string>
searchConstraintsHeader(mlir::ModuleOp module, mlir::func::FuncOp space,
                        const std::vector<SearchConstraint> &constraints,
                        const std::string &sourceName);

/// Which latency limits hold back one choice layer of an architecture. A
/// limit holds a layer when some candidate of that layer, taken there alone
/// (every other layer as it is), would take the architecture over the
/// limit: that candidate is ruled out by the limit. A layer no limit holds
/// could take any of its candidates.
struct LayerHold {
  std::string layer;
  int64_t pick = 0;
  /// Per limit, in the order given: the candidates it rules out (none for
  /// a limit the architecture does not meet: nothing is held there).
  std::vector<std::vector<int64_t>> ruledOut;
};

struct LayerHolds {
  std::vector<LayerHold> layers;
  /// Per limit: whether the architecture meets it.
  std::vector<bool> met;
};

/// The holds of every layer of `picks`, by the additive per-candidate model
/// of the space on each device (`spaces[d]`, limit `limitsMs[d]`): the same
/// model the search derives with.
LayerHolds limitsHoldingLayers(const std::vector<cost::SpaceLatency> &spaces,
                               llvm::ArrayRef<double> limitsMs, llvm::ArrayRef<int64_t> picks);

/// One line per layer: "stages.0.0 = k: held by D (...)" or "free".
void printLayerHolds(const LayerHolds &holds, const cost::SpaceLatency &names,
                     llvm::ArrayRef<std::string> devices, llvm::raw_ostream &os);

/// [{"layer", "pick", "candidate", "held_by": {device: [ruled-out candidates]}}];
/// limits not met are left out.
llvm::json::Array layerHoldsToJSON(const LayerHolds &holds,
                                   const cost::SpaceLatency &names,
                                   llvm::ArrayRef<std::string> devices);

} // namespace qdsl::tool

#endif // QDSL_TOOLS_QDSL_SEARCH_H
