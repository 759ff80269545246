//===- Search.h - what qdsl compile --search and qdsl search share -*- C++ -*-===//
//
// The latency limits of a search from the command line: the library
// (codegen/latency/LatencyLimits.h) takes them as a struct and finds
// profiles through a finder; these build both from qdsl's flags.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_TOOLS_QDSL_SEARCH_H
#define QDSL_TOOLS_QDSL_SEARCH_H

#include "codegen/latency/LatencyLimits.h"

#include "llvm/Support/CommandLine.h"

#include <string>

namespace qdsl::tool {

extern llvm::cl::opt<std::string> latencyLimit;
extern llvm::cl::list<std::string> onlyDevices;

/// --latency-limit and --only.
cost::LimitOptions limitOptions();

/// Finds each device's profile as profileForDevice() does, with `given`
/// the --device profile (empty `file` when none).
cost::ProfileFinder profileFinder(const cost::DeviceProfile &given);

/// The limits of `space` under --latency-limit, --only and `given`.
mlir::FailureOr<std::vector<cost::SearchConstraint>>
searchConstraints(mlir::func::FuncOp space, const cost::DeviceProfile &given);

} // namespace qdsl::tool

#endif // QDSL_TOOLS_QDSL_SEARCH_H
