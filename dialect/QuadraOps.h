//===- QuadraOps.h - quadra operations --------------------------*- C++ -*-===//

#ifndef QDSL_DIALECT_QUADRAOPS_H
#define QDSL_DIALECT_QUADRAOPS_H

#include "dialect/QuadraDialect.h"
#include "runtime/shipped/Contract.h"

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ControlFlowInterfaces.h"

#include <string>

namespace qdsl::quadra {
/// The shortest decimal that reads back as `value`, with a '.' so that
/// MLIR's lexer takes it as a float: 1.0e-06, 0.02.
std::string formatFloat(double value);
} // namespace qdsl::quadra

namespace mlir {
class Location;
}

namespace qdsl::quadra {
/// The first name in a location tree ("stages.2.5/QuadraConv"), looking
/// through fused and call-site locations; empty when there is none.
std::string getLocationName(mlir::Location loc);
/// The layer part of that name, before the '/' ("stages.2.5").
std::string getLayerName(mlir::Location loc);
} // namespace qdsl::quadra

namespace qdsl::quadra {
/// The names of the quadra.* attributes (runtime/shipped/Contract.h): a
/// function's kind and latency limits, and those of the training step
/// --quadra-autodiff builds (docs/TRAINING.md).
using contract::kBackwardOfAttr;
using contract::kGradientsAttr;
using contract::kKindAttr;
using contract::kLatencyLimitsAttr;
using contract::kMemoryPolicyAttr;
using contract::kGateAttr;
using contract::kPathAttr;
using contract::kPicksAttr;
using contract::kSupernetAttr;
using contract::kRecomputeAttr;
using contract::kTrainStepOfAttr;
} // namespace qdsl::quadra

#include "dialect/QuadraEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dialect/QuadraAttributes.h.inc"

#include "dialect/QuadraInterfaces.h.inc"

#define GET_OP_CLASSES
#include "dialect/QuadraOps.h.inc"

#endif // QDSL_DIALECT_QUADRAOPS_H
