//===- SearchConstraintsEmitter.h - a supernet's latency limits -*- C++ -*-===//
//
// search_constraints.h of a supernet project (`qdsl compile SPACE --search`):
// the latency model of every limit the search honours (CostModelEmitter.h,
// one namespace per device) and a table the generated `search` program
// reads: device, limit, whether its profile was measured, and E[LAT] of the
// architecture logits with its gradient.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_CODEGEN_LATENCY_SEARCHCONSTRAINTSEMITTER_H
#define QDSL_CODEGEN_LATENCY_SEARCHCONSTRAINTSEMITTER_H

#include "codegen/latency/LatencyLimits.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"

#include <string>
#include <vector>

namespace qdsl::codegen {

/// The header's text for the space `space` of `module` (not yet formed),
/// read from `sourceName`, at batch 1.
mlir::FailureOr<std::string>
emitSearchConstraints(mlir::ModuleOp module, mlir::func::FuncOp space,
                      const std::vector<cost::SearchConstraint> &constraints,
                      const std::string &sourceName);

} // namespace qdsl::codegen

#endif // QDSL_CODEGEN_LATENCY_SEARCHCONSTRAINTSEMITTER_H
