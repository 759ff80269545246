//===- EstimateCommand.cpp - qdsl estimate --------------------------------===//
//
// Predicted latency of a model on a device: one row per kernel (as formed
// for the profile's target) with its MACs, bytes, predicted time, the
// roofline bound and the predictor that gave it. A search space (choices
// not fixed with --choices) gets the latency of every candidate instead.

#include "Options.h"
#include "ProfileMeasurement.h"
#include "Search.h"
#include "Session.h"

#include "codegen/ProjectWriter.h"
#include "codegen/latency/DeviceProfile.h"
#include "codegen/latency/ArchitectureDerivation.h"
#include "codegen/latency/Estimate.h"
#include "codegen/latency/LatencyLimits.h"
#include "codegen/latency/ProfileLookup.h"
#include "dialect/QuadraOps.h"
#include "passes/Pipelines.h"

#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"

using namespace llvm;

namespace qdsl::tool {

namespace {

void printModel(const std::string &name, const cost::DeviceProfile &profile,
                const cost::ModelLatency &latency, raw_ostream &os) {
  size_t width = 6, familyWidth = 6;
  for (const cost::KernelSample &k : latency.kernels) {
    width = std::max(width, k.name.size());
    familyWidth = std::max(familyWidth, k.family.size());
  }
  os << name << " on " << profile.device.name << " ("
     << (profile.calibration ? "calibrated from '" + profile.calibration->base + "'"
         : profile.calibrated ? std::string("measured profile")
                              : std::string("uncalibrated: published figures only"))
     << ", target " << profile.device.target << "), batch " << batch << "\n";
  os << left_justify("kernel", width) << "  " << left_justify("family", familyWidth)
     << formatv("  {0,14}  {1,12}  {2,10}  {3,-7}  predictor\n", "MACs", "bytes", "ms",
                "bound");
  for (auto [k, seconds] : llvm::zip(latency.kernels, latency.seconds))
    os << left_justify(k.name, width) << "  " << left_justify(k.family, familyWidth)
       << formatv("  {0,14}  {1,12}  {2,10:f4}  {3,-7}  {4}\n", static_cast<uint64_t>(k.macs),
                  static_cast<uint64_t>(k.bytes), seconds * 1e3,
                  cost::isComputeBound(profile.device, k) ? "compute" : "memory",
                  cost::predictorUsed(profile, k));
  os << formatv("overhead per pass {0:f4} ms\n", latency.overhead * 1e3);
  os << formatv("total {0:f3} ms ({1} kernels)\n", latency.total * 1e3, latency.kernels.size());
}

json::Object modelToJSON(const std::string &name, const cost::DeviceProfile &profile,
                         const cost::ModelLatency &latency) {
  json::Array kernels;
  for (auto [k, seconds] : llvm::zip(latency.kernels, latency.seconds))
    kernels.push_back(json::Object{
        {"name", k.name},
        {"family", k.family},
        {"configuration", k.configuration},
        {"macs", k.macs},
        {"bytes", k.bytes},
        {"predicted_ms", seconds * 1e3},
        {"bound", cost::isComputeBound(profile.device, k) ? "compute" : "memory"},
        {"predictor", cost::predictorUsed(profile, k)}});
  return json::Object{{"model", name},
                      {"device", profile.device.name},
                      {"calibrated", profile.calibrated},
                      {"target", profile.device.target},
                      {"batch", static_cast<int64_t>(batch)},
                      {"kernels", std::move(kernels)},
                      {"overhead_ms", latency.overhead * 1e3},
                      {"total_ms", latency.total * 1e3}};
}

void printSpace(const cost::SpaceLatency &space, const cost::DeviceProfile &profile,
                raw_ostream &os) {
  os << space.space << " (search space) on " << profile.device.name << ", batch "
     << space.batch << ": latency of each candidate in ms\n";
  os << formatv("fixed layers {0:f3} ms\n", space.fixed * 1e3);
  double lo = space.fixed, hi = space.fixed, uniform = space.fixed;
  for (const cost::SpaceLatency::Layer &layer : space.layers) {
    os << "  " << layer.name << ":";
    for (auto [c, seconds] : llvm::zip(layer.candidates, layer.seconds))
      os << formatv("  {0} {1:f3}", c, seconds * 1e3);
    os << "\n";
    lo += *std::min_element(layer.seconds.begin(), layer.seconds.end());
    hi += *std::max_element(layer.seconds.begin(), layer.seconds.end());
    double sum = 0;
    for (double s : layer.seconds)
      sum += s;
    uniform += sum / static_cast<double>(layer.seconds.size());
  }
  os << formatv("fastest architecture {0:f3} ms, slowest {1:f3} ms, expected under "
                "uniform choices {2:f3} ms\n",
                lo * 1e3, hi * 1e3, uniform * 1e3);
}

json::Object spaceToJSON(const cost::SpaceLatency &space, const cost::DeviceProfile &profile) {
  json::Array layers;
  for (const cost::SpaceLatency::Layer &layer : space.layers) {
    json::Array candidates;
    for (auto [c, seconds] : llvm::zip(layer.candidates, layer.seconds))
      candidates.push_back(json::Object{{"candidate", c}, {"ms", seconds * 1e3}});
    layers.push_back(json::Object{{"layer", layer.name}, {"candidates", std::move(candidates)}});
  }
  return json::Object{{"space", space.space},        {"device", profile.device.name},
                      {"calibrated", profile.calibrated},
                      {"batch", space.batch},        {"fixed_ms", space.fixed * 1e3},
                      {"layers", std::move(layers)}};
}

/// Set by qdsl search while it loads the profiles it calibrates itself.
bool machineWarningsDeferred = false;

/// Warns when a profile measured on a machine like this one (its target
/// runs here) was measured on another machine, or does not say where: its
/// times hold for that machine. Profiles of other devices say in their
/// header whether they are calibrated.
void checkProfileMachine(const cost::DeviceProfile &profile) {
  if (machineWarningsDeferred)
    return;
  std::vector<std::string> differences = differencesFromThisMachine(profile);
  if (differences.empty())
    return;
  // A shipped profile has no file to name: --calibrate takes its device.
  StringRef base = profile.file;
  if (base.consume_front(cost::kShippedProfilePrefix))
    base = sys::path::stem(base);
  std::string remedy = "its times hold for the machine it was measured on (machines of one "
                       "class differ by up to 30%): `qdsl profile SPACE --calibrate " +
                       base.str() + " -o CALIBRATED.json` carries it over in about a minute";
  if (!profile.machine) {
    errs() << "qdsl: warning: device profile '" << profile.file << "' " << differences.front()
           << "; " << remedy << "\n";
    return;
  }
  errs() << "qdsl: warning: device profile '" << profile.file
         << "' was measured on a machine that differs from this one:\n";
  for (const std::string &d : differences)
    errs() << "  " << d << "\n";
  errs() << "  " << remedy << "\n";
}

} // namespace

std::vector<std::string> differencesFromThisMachine(const cost::DeviceProfile &profile,
                                                    unsigned threads) {
  const codegen::Target *target = codegen::lookupTarget(profile.device.target);
  if (!profile.calibrated || !target || !target->runnableHere)
    return {};
  // Its kernels would not run here at all: no speed comparison means anything.
  if (std::string feature = codegen::missingCpuFeature(*target); !feature.empty())
    return {"its target " + target->name + " needs the CPU feature " + feature +
            ", which this machine's CPU lacks"};
  if (!profile.machine)
    return {"does not say which machine it was measured on (written before qdsl 0.15)"};
  // (The Halide version is what a build finds: not known before one.)
  cost::MachineRecord here = cost::describeThisMachine(
      threads ? static_cast<int>(threads) : profile.machine->threads,
      codegen::generatorsDigest(), "", target->vectorFloats);
  return cost::machineDifferences(*profile.machine, here);
}

void deferMachineWarnings(bool defer) { machineWarningsDeferred = defer; }

const cost::DeviceProfile *profileForDevice(const std::string &device,
                                            const cost::DeviceProfile &given,
                                            cost::DeviceProfile &found, std::string &error) {
  if (!given.file.empty() &&
      (given.device.name == device || sys::path::stem(given.file) == StringRef(device)))
    return &given;
  if (!cost::findDeviceProfile(device, found, error))
    return nullptr;
  found.useMeasured = given.useMeasured;
  checkProfileMachine(found);
  return &found;
}

cost::LimitOptions limitOptions() {
  cost::LimitOptions options;
  if (latencyLimit.getNumOccurrences())
    options.latencyLimit = latencyLimit.getValue();
  options.onlyDevices.assign(onlyDevices.begin(), onlyDevices.end());
  return options;
}

cost::ProfileFinder profileFinder(const cost::DeviceProfile &given) {
  return [&given](const std::string &device, cost::DeviceProfile &found, std::string &error) {
    return profileForDevice(device, given, found, error);
  };
}

mlir::FailureOr<std::vector<cost::SearchConstraint>>
searchConstraints(mlir::func::FuncOp space, const cost::DeviceProfile &given) {
  return cost::searchConstraints(space, given, limitOptions(), profileFinder(given));
}

namespace {

using cost::ConstraintCheck;

void printConstraints(const std::vector<ConstraintCheck> &checks, bool isSpace,
                      raw_ostream &os) {
  if (checks.empty())
    return;
  os << "latency limits, batch " << batch << ":\n";
  for (const ConstraintCheck &c : checks) {
    os << formatv("  {0} <= {1} ms: ", c.device, shownNumber(c.limitMs));
    if (!isSpace)
      os << formatv("{0:f3} ms, {1}", c.predictedMs, c.met ? "met" : "NOT MET");
    else if (!c.met)
      os << formatv("cannot be met: the fastest architecture takes {0:f3} ms", c.fastestMs);
    else if (c.slowestMs <= c.limitMs)
      os << formatv("met by every architecture (slowest {0:f3} ms)", c.slowestMs);
    else
      os << formatv("binds: architectures take {0:f3} to {1:f3} ms", c.fastestMs,
                    c.slowestMs);
    os << " (profile " << c.profileFile << ")\n";
  }
}

json::Array constraintsToJSON(const std::vector<ConstraintCheck> &checks, bool isSpace) {
  json::Array out;
  for (const ConstraintCheck &c : checks) {
    json::Object o{{"device", c.device}, {"limit_ms", c.limitMs}, {"profile", c.profileFile}};
    if (isSpace) {
      o["fastest_ms"] = c.fastestMs;
      o["slowest_ms"] = c.slowestMs;
      o["feasible"] = c.met;
    } else {
      o["predicted_ms"] = c.predictedMs;
      o["met"] = c.met;
    }
    out.push_back(std::move(o));
  }
  return out;
}

/// For an architecture picked from a space by --choices: what holds each
/// of its layers (codegen/latency/ArchitectureDerivation.h), from the space's per-candidate latency on each
/// limit's device. Empty when the model is not such an architecture.
mlir::FailureOr<std::pair<cost::LayerHolds, cost::SpaceLatency>>
holdsOfPicks(Session &session, mlir::func::FuncOp model,
             const std::vector<ConstraintCheck> &checks) {
  auto picks = model->getAttrOfType<mlir::DenseI64ArrayAttr>(quadra::kPicksAttr);
  if (!picks || checks.empty())
    return std::pair<cost::LayerHolds, cost::SpaceLatency>{};
  mlir::OwningOpRef<mlir::ModuleOp> module = session.generate(/*applyChoices=*/false);
  mlir::func::FuncOp space = module ? session.selectModel(*module) : mlir::func::FuncOp();
  if (!space)
    return mlir::failure();
  std::vector<cost::SpaceLatency> spaces;
  std::vector<double> limitsMs;
  for (const ConstraintCheck &c : checks) {
    mlir::FailureOr<cost::SpaceLatency> latency =
        cost::estimateSpace(*module, space, c.profile, batch);
    if (failed(latency))
      return mlir::failure();
    // Choices nested in helper functions are not layers of the space's
    // table: no per-layer report then.
    if (latency->layers.size() != static_cast<size_t>(picks.size()))
      return std::pair<cost::LayerHolds, cost::SpaceLatency>{};
    spaces.push_back(std::move(*latency));
    limitsMs.push_back(c.limitMs);
  }
  return std::pair{cost::limitsHoldingLayers(spaces, limitsMs, picks.asArrayRef()),
                   std::move(spaces.front())};
}

} // namespace

bool loadDeviceProfile(cost::DeviceProfile &profile) {
  if (deviceProfile.empty()) {
    reportError("a latency estimate needs a device profile: add --device PROFILE.json "
                "(profiles/ holds the shipped ones; qdsl profile measures this machine)");
    return false;
  }
  std::string error;
  if (!cost::readProfile(deviceProfile, profile, error)) {
    reportError(error);
    return false;
  }
  profile.useMeasured = !fittedOnly;
  checkProfileMachine(profile);
  return true;
}

int runEstimate() {
  if (batch < 1)
    return reportError("--batch must be at least 1");
  cost::DeviceProfile profile;
  if (!loadDeviceProfile(profile))
    return 1;
  SelectedModel selected;
  if (int exitCode = loadSelectedModel(selected); exitCode >= 0)
    return exitCode;
  Session &session = *selected.session;
  mlir::func::FuncOp model = selected.model;
  std::string text;
  raw_string_ostream os(text);
  bool isSpace = false;
  model.walk([&](quadra::ChoiceOp) { isSpace = true; });
  mlir::FailureOr<std::vector<ConstraintCheck>> constraints =
      cost::checkConstraints(*selected.module, model, isSpace, batch, profileFinder(profile));
  if (failed(constraints))
    return failed(session.finish(false)) ? 1 : 0;
  if (isSpace) {
    mlir::FailureOr<cost::SpaceLatency> space =
        cost::estimateSpace(*selected.module, model, profile, batch);
    if (failed(space))
      return failed(session.finish(false)) ? 1 : 0;
    if (json) {
      json::Object o = spaceToJSON(*space, profile);
      o["constraints"] = constraintsToJSON(*constraints, true);
      os << formatv("{0:2}", json::Value(std::move(o))) << "\n";
    } else {
      printSpace(*space, profile, os);
      printConstraints(*constraints, true, os);
    }
  } else {
    const codegen::Target *target = cost::profileTarget(profile, model);
    if (!target || failed(quadra::formKernels(*selected.module, target->name)))
      return failed(session.finish(false)) ? 1 : 0;
    mlir::FailureOr<cost::ModelLatency> latency = cost::estimateModel(model, *target, profile, batch);
    if (failed(latency))
      return failed(session.finish(false)) ? 1 : 0;
    auto holds = holdsOfPicks(session, model, *constraints);
    if (failed(holds))
      return failed(session.finish(false)) ? 1 : 0;
    std::vector<std::string> devices;
    for (const ConstraintCheck &c : *constraints)
      devices.push_back(c.device);
    std::string name = model.getSymName().str();
    if (json) {
      json::Object o = modelToJSON(name, profile, *latency);
      o["constraints"] = constraintsToJSON(*constraints, false);
      if (!holds->first.layers.empty())
        o["layers_held"] = cost::layerHoldsToJSON(holds->first, holds->second, devices);
      os << formatv("{0:2}", json::Value(std::move(o))) << "\n";
    } else {
      printModel(name, profile, *latency, os);
      printConstraints(*constraints, false, os);
      if (!holds->first.layers.empty())
        cost::printLayerHolds(holds->first, holds->second, devices, os);
    }
  }
  if (failed(session.finish(true)))
    return 1;
  return writeOutputFile(outputFile, text);
}

} // namespace qdsl::tool
