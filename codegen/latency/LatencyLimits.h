//===- LatencyLimits.h - a model's latency limits and their profiles -*- C++ -*-===//
//
// A model or search space declares latency limits (`constraint
// latency("D") <= T ms`), and the command line may replace or narrow them
// (--latency-limit, --only). This is what `qdsl estimate` checks and what
// `qdsl compile --search` and `qdsl search` search under: each limit with the
// device profile that predicts it. Options come as a struct and profiles
// through a finder, so that nothing here reads the command line or prints.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_CODEGEN_LATENCY_LATENCYLIMITS_H
#define QDSL_CODEGEN_LATENCY_LATENCYLIMITS_H

#include "codegen/latency/CostModel.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/StringRef.h"

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace qdsl::cost {

/// The latency limits `model` declares (quadra.latency_limits_ms), in ms by
/// device, sorted by device.
std::vector<std::pair<std::string, double>> latencyLimits(mlir::func::FuncOp model);

/// "2.5ms", "800us", "1s" in milliseconds; false with `error` naming the
/// flag (--latency-limit).
bool parseLatencyLimit(llvm::StringRef text, double &ms, std::string &error);

/// The profile that predicts `device`: one the caller holds, or one read
/// into `found`. Null with `error` when there is none.
using ProfileFinder = std::function<const DeviceProfile *(
    const std::string &device, DeviceProfile &found, std::string &error)>;

/// A latency limit a search honours, with the profile that predicts it.
struct SearchConstraint {
  std::string device;
  double limitMs = 0;
  DeviceProfile profile;
};

/// How the command line changes a space's limits.
struct LimitOptions {
  /// --latency-limit: replaces the limit of `given`'s device (adding one
  /// when the space has none for it); with no `given` profile, the limit
  /// of a space with exactly one.
  std::optional<std::string> latencyLimit;
  /// --only: these devices' limits alone, in this order.
  std::vector<std::string> onlyDevices;
};

/// The limits of `space` as `options` change them, each with its profile:
/// `given` (the --device profile; empty `file` when none) when it stands
/// for the device, else `find`'s. Errors on `space`; a `given` profile that
/// no limit takes is an error too.
mlir::FailureOr<std::vector<SearchConstraint>>
searchConstraints(mlir::func::FuncOp space, const DeviceProfile &given,
                  const LimitOptions &options, const ProfileFinder &find);

/// One declared limit of a model or space, checked.
struct ConstraintCheck {
  std::string device, profileFile;
  DeviceProfile profile;
  double limitMs = 0;
  /// A model: its predicted latency. A space: its fastest and slowest
  /// architecture's.
  double predictedMs = 0, fastestMs = 0, slowestMs = 0;
  bool met = false;
};

/// Checks every latency limit of `model` in `module` (not yet formed) at
/// `batch`: a model or fixed architecture meets a limit or not; a space's
/// fastest architecture can meet it or cannot. Errors on `model`.
mlir::FailureOr<std::vector<ConstraintCheck>>
checkConstraints(mlir::ModuleOp module, mlir::func::FuncOp model, bool isSpace,
                 int64_t batch, const ProfileFinder &find);

} // namespace qdsl::cost

#endif // QDSL_CODEGEN_LATENCY_LATENCYLIMITS_H
