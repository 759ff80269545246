//===- LatencyLimits.cpp - a model's latency limits and their profiles ----===//

#include "codegen/latency/LatencyLimits.h"

#include "codegen/latency/ArchitectureDerivation.h"
#include "codegen/latency/Estimate.h"
#include "dialect/QuadraOps.h"
#include "passes/Pipelines.h"

#include "llvm/Support/Path.h"

#include <algorithm>
#include <cmath>

using namespace llvm;

namespace qdsl::cost {

std::vector<std::pair<std::string, double>> latencyLimits(mlir::func::FuncOp model) {
  std::vector<std::pair<std::string, double>> limits;
  if (auto dict = model->getAttrOfType<mlir::DictionaryAttr>(quadra::kLatencyLimitsAttr))
    for (mlir::NamedAttribute limit : dict)
      if (auto ms = dyn_cast<mlir::FloatAttr>(limit.getValue()))
        limits.emplace_back(limit.getName().str(), ms.getValueAsDouble());
  return limits;
}

bool parseLatencyLimit(StringRef text, double &ms, std::string &error) {
  StringRef number = text.trim();
  double scale = 0;
  for (auto [unit, factor] : {std::pair<StringRef, double>{"ms", 1.0}, {"us", 1e-3}, {"s", 1e3}})
    if (number.consume_back(unit)) {
      scale = factor;
      break;
    }
  double value = 0;
  if (scale == 0 || number.trim().getAsDouble(value) || !std::isfinite(value) || !(value > 0) ||
      value * scale > 1e9) {
    error = "--latency-limit expects a positive time with its unit (2.5ms, 800us, 1s), got '" +
            text.str() + "'";
    return false;
  }
  ms = value * scale;
  return true;
}

namespace {

std::string deviceList(const std::vector<SearchConstraint> &constraints) {
  std::string list;
  for (const SearchConstraint &c : constraints)
    list += (list.empty() ? "" : ", ") + c.device;
  return list;
}

/// --latency-limit: the limit of `given`'s device (or of the space's only
/// one) replaced, or added.
mlir::LogicalResult applyLatencyLimit(mlir::func::FuncOp space, const DeviceProfile &given,
                                      const std::string &text,
                                      std::vector<SearchConstraint> &constraints) {
  double ms = 0;
  std::string error;
  if (!parseLatencyLimit(text, ms, error))
    return space.emitError(error);
  std::string device;
  if (!given.file.empty()) {
    device = given.device.name;
    for (const SearchConstraint &c : constraints)
      if (c.device == sys::path::stem(given.file))
        device = c.device;
  } else if (constraints.size() == 1) {
    device = constraints.front().device;
  } else {
    return space.emitError("--latency-limit needs --device PROFILE.json to say which device it "
                           "limits: '")
           << space.getSymName() << "' has " << constraints.size() << " latency limits";
  }
  auto it = llvm::find_if(constraints,
                          [&](const SearchConstraint &c) { return c.device == device; });
  if (it == constraints.end())
    constraints.push_back({device, ms, {}});
  else
    it->limitMs = ms;
  return mlir::success();
}

/// --only: the named devices' limits, in that order.
mlir::LogicalResult keepOnly(mlir::func::FuncOp space, ArrayRef<std::string> devices,
                             std::vector<SearchConstraint> &constraints) {
  std::vector<SearchConstraint> kept;
  for (const std::string &device : devices) {
    // Twice would put the limit twice into the search's loss.
    if (llvm::count(devices, device) > 1)
      return space.emitError("--only ")
             << device << " is given twice; name each device once";
    auto it = llvm::find_if(constraints,
                            [&](const SearchConstraint &c) { return c.device == device; });
    if (it == constraints.end()) {
      std::string known = deviceList(constraints);
      return space.emitError("--only ")
             << device << ": '" << space.getSymName()
             << "' has no latency limit for that device (it has: "
             << (known.empty() ? "none" : known) << ")";
    }
    kept.push_back(*it);
  }
  constraints = std::move(kept);
  return mlir::success();
}

} // namespace

mlir::FailureOr<std::vector<SearchConstraint>>
searchConstraints(mlir::func::FuncOp space, const DeviceProfile &given,
                  const LimitOptions &options, const ProfileFinder &find) {
  std::vector<SearchConstraint> constraints;
  for (const auto &[device, limitMs] : latencyLimits(space))
    constraints.push_back({device, limitMs, {}});
  if (options.latencyLimit &&
      failed(applyLatencyLimit(space, given, *options.latencyLimit, constraints)))
    return mlir::failure();
  if (!options.onlyDevices.empty() && failed(keepOnly(space, options.onlyDevices, constraints)))
    return mlir::failure();
  if (constraints.empty()) {
    space.emitError("'") << space.getSymName()
                         << "' has no latency limit to search for: declare one (constraint "
                            "latency(\"DEVICE\") <= T ms) or give --latency-limit with --device";
    return mlir::failure();
  }
  bool givenUsed = false;
  for (SearchConstraint &c : constraints) {
    std::string error;
    const DeviceProfile *profile = find(c.device, c.profile, error);
    if (!profile) {
      space.emitError("no latency model for the limit on '") << c.device << "': " << error;
      return mlir::failure();
    }
    if (profile == &given) {
      c.profile = given;
      givenUsed = true;
    }
  }
  // A --device profile that no limit takes would leave every limit on
  // another profile while the user believes theirs is used.
  if (!given.file.empty() && !givenUsed) {
    space.emitError("--device '")
        << given.file << "' is the profile of no latency limit of '" << space.getSymName()
        << "' (limits on " << deviceList(constraints)
        << "): a profile stands for the device it names ('" << given.device.name
        << "') or its file's name ('" << sys::path::stem(given.file)
        << "'); name the file after the device (e.g. " << constraints.front().device
        << ".json) or give --latency-limit for its device";
    return mlir::failure();
  }
  return constraints;
}

mlir::FailureOr<std::vector<ConstraintCheck>>
checkConstraints(mlir::ModuleOp module, mlir::func::FuncOp model, bool isSpace,
                 int64_t batch, const ProfileFinder &find) {
  std::vector<ConstraintCheck> checks;
  for (const auto &[device, limitMs] : latencyLimits(model)) {
    DeviceProfile found;
    std::string error;
    const DeviceProfile *profile = find(device, found, error);
    if (!profile) {
      model.emitError("cannot check the latency limit for '") << device << "': " << error;
      return mlir::failure();
    }
    ConstraintCheck check;
    check.device = device;
    check.limitMs = limitMs;
    check.profileFile = profile->file;
    check.profile = *profile;
    if (isSpace) {
      mlir::FailureOr<SpaceLatency> space = estimateSpace(module, model, *profile, batch);
      if (failed(space))
        return mlir::failure();
      auto [fastest, slowest] = latencyRange(*space);
      check.fastestMs = fastest * 1e3;
      check.slowestMs = slowest * 1e3;
      check.met = check.fastestMs <= limitMs;
    } else {
      const codegen::Target *target = profileTarget(*profile, model);
      if (!target)
        return mlir::failure();
      mlir::FailureOr<mlir::OwningOpRef<mlir::ModuleOp>> formed =
          quadra::formArchitecture(module, {}, target->name);
      if (failed(formed))
        return mlir::failure();
      auto copy = (*formed)->lookupSymbol<mlir::func::FuncOp>(model.getSymName());
      mlir::FailureOr<ModelLatency> latency = estimateModel(copy, *target, *profile, batch);
      if (failed(latency))
        return mlir::failure();
      check.predictedMs = latency->total * 1e3;
      check.met = check.predictedMs <= limitMs;
    }
    checks.push_back(check);
  }
  return checks;
}

} // namespace qdsl::cost
