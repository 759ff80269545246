//===- Search.h - what qdsl compile --search and qdsl search share -*- C++ -*-===//

#ifndef QDSL_TOOLS_QDSL_SEARCH_H
#define QDSL_TOOLS_QDSL_SEARCH_H

#include "codegen/latency/CostModel.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/StringRef.h"

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

} // namespace qdsl::tool

#endif // QDSL_TOOLS_QDSL_SEARCH_H
