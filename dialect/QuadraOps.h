//===- QuadraOps.h - quadra operations --------------------------*- C++ -*-===//

#ifndef QDSL_DIALECT_QUADRAOPS_H
#define QDSL_DIALECT_QUADRAOPS_H

#include "dialect/QuadraDialect.h"

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
/// Attributes of the training step --quadra-autodiff builds, shared by the
/// passes and tools that read it (docs/TRAINING.md):
/// on the step function, the weight names of its gradient results, the
/// model it was built from and the memory policy applied to it;
inline constexpr llvm::StringLiteral kGradientsAttr = "quadra.gradients";
inline constexpr llvm::StringLiteral kTrainStepOfAttr = "quadra.train_step_of";
inline constexpr llvm::StringLiteral kMemoryPolicyAttr = "quadra.memory_policy";
/// on an op of its backward pass, the position of the forward op it serves
/// (see passes/MemoryPlan.h, forwardOps), and on a value the backward pass
/// computes again instead of keeping it.
inline constexpr llvm::StringLiteral kBackwardOfAttr = "quadra.backward_of";
inline constexpr llvm::StringLiteral kRecomputeAttr = "quadra.recompute";
} // namespace qdsl::quadra

#include "dialect/QuadraEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dialect/QuadraAttributes.h.inc"

#include "dialect/QuadraInterfaces.h.inc"

#define GET_OP_CLASSES
#include "dialect/QuadraOps.h.inc"

#endif // QDSL_DIALECT_QUADRAOPS_H
