//===- SearchCommand.cpp - qdsl search, and the supernet's latency models -===//
//
// `qdsl compile SPACE --search --target T -o DIR` writes a supernet project
// whose `search` program runs the architecture search (codegen/project/
// search.cpp); its latency term comes from search_constraints.h, written
// here from the device profile of every latency limit of the space.
// `qdsl search SPACE -o DIR` runs the whole thing: supernet, search,
// derived model, retraining and measurement (docs/NAS.md).

#include "Options.h"
#include "Search.h"
#include "Session.h"

#include "codegen/latency/CostModelEmitter.h"
#include "codegen/latency/DeviceProfile.h"
#include "codegen/latency/Estimate.h"
#include "dialect/QuadraOps.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"

using namespace llvm;

namespace qdsl::tool {

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

mlir::FailureOr<std::vector<SearchConstraint>>
searchConstraints(mlir::func::FuncOp space, const cost::DeviceProfile &given) {
  std::vector<SearchConstraint> constraints;
  for (const auto &[device, limitMs] : latencyLimits(space))
    constraints.push_back({device, limitMs, {}});
  if (latencyLimit.getNumOccurrences()) {
    double ms = 0;
    std::string error;
    if (!parseLatencyLimit(latencyLimit, ms, error)) {
      space.emitError(error);
      return mlir::failure();
    }
    // The limit of --device's device: it replaces the space's, or adds one.
    std::string device;
    if (!given.file.empty()) {
      device = given.device.name;
      for (const SearchConstraint &c : constraints)
        if (c.device == sys::path::stem(given.file))
          device = c.device;
    } else if (constraints.size() == 1) {
      device = constraints.front().device;
    } else {
      space.emitError("--latency-limit needs --device PROFILE.json to say which device it "
                      "limits: '")
          << space.getSymName() << "' has " << constraints.size() << " latency limits";
      return mlir::failure();
    }
    auto it = llvm::find_if(constraints, [&](const SearchConstraint &c) { return c.device == device; });
    if (it == constraints.end())
      constraints.push_back({device, ms, {}});
    else
      it->limitMs = ms;
  }
  if (!onlyDevices.empty()) {
    std::vector<SearchConstraint> kept;
    for (const std::string &device : onlyDevices) {
      auto it = llvm::find_if(constraints,
                              [&](const SearchConstraint &c) { return c.device == device; });
      if (it == constraints.end()) {
        std::string known;
        for (const SearchConstraint &c : constraints)
          known += (known.empty() ? "" : ", ") + c.device;
        space.emitError("--only ") << device << ": '" << space.getSymName()
                                   << "' has no latency limit for that device (it has: "
                                   << (known.empty() ? "none" : known) << ")";
        return mlir::failure();
      }
      kept.push_back(*it);
    }
    constraints = std::move(kept);
  }
  if (constraints.empty()) {
    space.emitError("'") << space.getSymName()
                         << "' has no latency limit to search for: declare one (constraint "
                            "latency(\"DEVICE\") <= T ms) or give --latency-limit with --device";
    return mlir::failure();
  }
  bool givenUsed = false;
  for (SearchConstraint &c : constraints) {
    std::string error;
    const cost::DeviceProfile *profile = profileForDevice(c.device, given, c.profile, error);
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
    std::string limits;
    for (const SearchConstraint &c : constraints)
      limits += (limits.empty() ? "" : ", ") + c.device;
    space.emitError("--device '")
        << given.file << "' is the profile of no latency limit of '" << space.getSymName()
        << "' (limits on " << limits << "): a profile stands for the device it names ('"
        << given.device.name << "') or its file's name ('" << sys::path::stem(given.file)
        << "'); name the file after the device (e.g. " << constraints.front().device
        << ".json) or give --latency-limit for its device";
    return mlir::failure();
  }
  return constraints;
}

mlir::FailureOr<std::string>
searchConstraintsHeader(mlir::ModuleOp module, mlir::func::FuncOp space,
                        const std::vector<SearchConstraint> &constraints,
                        const std::string &sourceName) {
  std::string text, table;
  raw_string_ostream os(text);
  os << "// Generated by qdsl compile --search from " << sourceName
     << ": the latency model of every\n// device the search of " << space.getSymName()
     << " is limited on (batch 1). Do not edit.\n\n"
     << "#ifndef QDSL_SEARCH_CONSTRAINTS_H\n#define QDSL_SEARCH_CONSTRAINTS_H\n\n"
     << "#include <cstddef>\n\n";
  for (auto [i, c] : llvm::enumerate(constraints)) {
    mlir::FailureOr<cost::SpaceLatency> latency =
        cost::estimateSpace(module, space, c.profile, /*batch=*/1);
    if (failed(latency))
      return mlir::failure();
    codegen::CostModelSource source;
    source.sourceFile = sourceName;
    source.space = latency->space;
    source.device = c.profile.device.name;
    source.suffix = "d" + std::to_string(i);
    source.calibrated = c.profile.calibrated;
    source.batch = 1;
    source.fixedSeconds = latency->fixed;
    for (const cost::SpaceLatency::Layer &layer : latency->layers)
      source.layers.push_back({layer.name, layer.candidates, layer.seconds});
    os << codegen::emitCostModel(source) << "\n";
    std::string ns = "qdsl_latency_" + source.space + "_" + source.suffix;
    for (char &ch : ns)
      if (!isAlnum(ch))
        ch = '_';
    table += formatv("    {{\"{0}\", {1:e}, {2}, &{3}::expected_latency_from_logits, {3}::kLayers, "
                     "{3}::kLayerName, {3}::kCount},\n",
                     c.device, c.limitMs * 1e-3, c.profile.calibrated ? "true" : "false", ns)
                 .str();
  }
  os << "namespace qdsl_search {\n\n"
     << "// One latency limit: the device, the limit (seconds), whether its profile was\n"
     << "// measured, and E[LAT] of the architecture logits with its gradient.\n"
     << "struct Constraint {\n"
     << "    const char *device;\n    double limit_seconds;\n    bool calibrated;\n"
     << "    double (*expected)(const double *alpha, double *gradient, double tau);\n"
     << "    std::size_t layers;\n    const char *const *layer_names;\n"
     << "    const std::size_t *count;\n};\n\n"
     << "inline const Constraint kConstraints[] = {\n"
     << table << "};\n\n}  // namespace qdsl_search\n\n#endif  // QDSL_SEARCH_CONSTRAINTS_H\n";
  return text;
}

} // namespace qdsl::tool

//===----------------------------------------------------------------------===//
// qdsl search
//===----------------------------------------------------------------------===//

#include "SvgPlot.h"

#include "codegen/Targets.h"
#include "passes/analysis/ModelStatistics.h"
#include "passes/Pipelines.h"
#include "runtime/shipped/TensorFiles.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Program.h"

#include <random>

namespace qdsl::tool {

namespace {

/// Latency of `picks` from the additive per-candidate model of `space`.
double additiveLatency(const cost::SpaceLatency &space, ArrayRef<int64_t> picks) {
  double total = space.fixed;
  for (auto [layer, pick] : llvm::zip(space.layers, picks))
    total += layer.seconds[pick];
  return total;
}

} // namespace

LayerHolds limitsHoldingLayers(const std::vector<cost::SpaceLatency> &spaces,
                               ArrayRef<double> limitsMs, ArrayRef<int64_t> picks) {
  LayerHolds holds;
  std::vector<double> headroom;
  for (auto [space, limitMs] : llvm::zip(spaces, limitsMs)) {
    headroom.push_back(limitMs * 1e-3 - additiveLatency(space, picks));
    holds.met.push_back(headroom.back() >= 0);
  }
  for (size_t l = 0; l < picks.size(); ++l) {
    LayerHold hold;
    hold.layer = spaces.front().layers[l].name;
    hold.pick = picks[l];
    for (size_t d = 0; d < spaces.size(); ++d) {
      const std::vector<double> &seconds = spaces[d].layers[l].seconds;
      std::vector<int64_t> ruledOut;
      for (size_t c = 0; holds.met[d] && c < seconds.size(); ++c)
        if (seconds[c] - seconds[picks[l]] > headroom[d])
          ruledOut.push_back(static_cast<int64_t>(c));
      hold.ruledOut.push_back(std::move(ruledOut));
    }
    holds.layers.push_back(std::move(hold));
  }
  return holds;
}

void printLayerHolds(const LayerHolds &holds, const cost::SpaceLatency &names,
                     ArrayRef<std::string> devices, raw_ostream &os) {
  os << "what holds each layer (a limit holds a layer when one of its candidates, taken "
        "there alone, would exceed it; candidates numbered as --choices numbers them):\n";
  for (auto [hold, layer] : llvm::zip(holds.layers, names.layers)) {
    os << "  " << hold.layer << " = " << layer.candidates[hold.pick] << ": ";
    std::string held;
    for (auto [device, ruledOut] : llvm::zip(devices, hold.ruledOut)) {
      if (ruledOut.empty())
        continue;
      held += (held.empty() ? "held by " : "; ") + device + " (candidate" +
              (ruledOut.size() > 1 ? "s " : " ");
      for (auto [i, c] : llvm::enumerate(ruledOut))
        held += (i ? ", " : "") + std::to_string(c);
      held += " would exceed it)";
    }
    os << (held.empty() ? "free: every candidate fits every limit met" : held) << "\n";
  }
  std::string unmet;
  for (auto [device, met] : llvm::zip(devices, holds.met))
    if (!met)
      unmet += (unmet.empty() ? "" : ", ") + device;
  if (!unmet.empty())
    os << "  (limits not met hold nothing and are left out: " << unmet << ")\n";
}

json::Array layerHoldsToJSON(const LayerHolds &holds, const cost::SpaceLatency &names,
                             ArrayRef<std::string> devices) {
  json::Array out;
  for (auto [hold, layer] : llvm::zip(holds.layers, names.layers)) {
    json::Object heldBy;
    for (auto [device, ruledOut] : llvm::zip(devices, hold.ruledOut))
      if (!ruledOut.empty())
        heldBy[device] = json::Array(ruledOut);
    out.push_back(json::Object{{"layer", hold.layer},
                               {"pick", hold.pick},
                               {"candidate", layer.candidates[hold.pick]},
                               {"held_by", std::move(heldBy)}});
  }
  return out;
}

namespace {

/// Runs `program` with `args`; output to the terminal, or appended to `log`.
int runProgram(StringRef program, ArrayRef<std::string> args, StringRef log = {}) {
  SmallVector<StringRef> argv = {program};
  for (const std::string &a : args)
    argv.push_back(a);
  std::optional<StringRef> redirect;
  if (!log.empty())
    redirect = log;
  std::string message;
  int status = sys::ExecuteAndWait(program, argv, std::nullopt,
                                   {std::nullopt, redirect, redirect}, 0, 0, &message);
  if (status != 0)
    errs() << "qdsl: '" << program << "' failed (exit " << status << ")"
           << (message.empty() ? "" : ": " + message)
           << (log.empty() ? std::string() : "; see " + log.str()) << "\n";
  return status;
}

/// Runs a generated training program (search, train) under --launcher when
/// given: the launcher's words, then the program and its arguments.
int runTrainingProgram(StringRef program, ArrayRef<std::string> args) {
  if (launcher.empty())
    return runProgram(program, args);
  SmallVector<StringRef> words;
  StringRef(launcher).split(words, ' ', -1, false);
  if (words.empty()) {
    errs() << "qdsl: --launcher is empty; expected a command such as \"mpirun -np 4\"\n";
    return 1;
  }
  std::vector<std::string> launched;
  for (size_t i = 1; i < words.size(); ++i)
    launched.push_back(words[i].str());
  launched.push_back(program.str());
  launched.insert(launched.end(), args.begin(), args.end());
  auto found = sys::findProgramByName(words.front());
  if (!found) {
    errs() << "qdsl: --launcher '" << launcher << "': cannot find '" << words.front()
           << "' on PATH\n";
    return 1;
  }
  return runProgram(*found, launched);
}

/// The flags of this run that select and instantiate the space, for the
/// qdsl commands it runs.
std::vector<std::string> frontEndFlags() {
  std::vector<std::string> flags;
  for (const std::string &m : modelNames)
    flags.push_back("--model=" + m);
  for (const std::string &d : defines)
    flags.push_back("-D" + d);
  for (const std::string &i : includeDirs) {
    SmallString<256> dir(i);
    sys::fs::make_absolute(dir);
    flags.push_back("-I" + dir.str().str());
  }
  return flags;
}

/// The most probable architecture within every limit: from the argmax,
/// while a limit is exceeded, the switch of one layer to a faster
/// candidate that costs the least log-probability per second saved on the
/// most exceeded device. Empty if none is found.
std::vector<int64_t> withinLimits(const std::vector<std::vector<double>> &probabilities,
                                  std::vector<int64_t> picks,
                                  const std::vector<cost::SpaceLatency> &spaces,
                                  const std::vector<SearchConstraint> &constraints) {
  for (int guard = 0; guard < 10000; ++guard) {
    size_t worst = constraints.size();
    double worstRatio = 1.0;
    for (size_t d = 0; d < constraints.size(); ++d) {
      double ratio = additiveLatency(spaces[d], picks) * 1e3 / constraints[d].limitMs;
      if (ratio > worstRatio) {
        worstRatio = ratio;
        worst = d;
      }
    }
    if (worst == constraints.size())
      return picks;
    double bestCost = INFINITY;
    size_t bestLayer = 0;
    int64_t bestPick = -1;
    for (size_t l = 0; l < picks.size(); ++l)
      for (size_t c = 0; c < probabilities[l].size(); ++c) {
        double saved = spaces[worst].layers[l].seconds[picks[l]] - spaces[worst].layers[l].seconds[c];
        if (!(saved > 0))
          continue;
        double lost = std::log(std::max(probabilities[l][picks[l]], 1e-300)) -
                      std::log(std::max(probabilities[l][c], 1e-300));
        double cost = std::max(lost, 0.0) / saved;
        if (cost < bestCost) {
          bestCost = cost;
          bestLayer = l;
          bestPick = static_cast<int64_t>(c);
        }
      }
    if (bestPick < 0)
      return {};
    picks[bestLayer] = bestPick;
  }
  return {};
}

/// --derive=fill: from an architecture within every limit, while one
/// layer's switch to a costlier candidate keeps every limit, the switch
/// that loses the least log-probability. The argmax of a spread-out p can
/// leave much of the budget unused (docs/NAS.md, experiment 1); this spends
/// it in the order the search preferred. Each switch raises the summed
/// use of the limits, so it ends.
std::vector<int64_t> fillBudget(const std::vector<std::vector<double>> &probabilities,
                                std::vector<int64_t> picks,
                                const std::vector<cost::SpaceLatency> &spaces,
                                const std::vector<SearchConstraint> &constraints) {
  auto use = [&](ArrayRef<int64_t> p, bool &within) {
    double total = 0;
    within = true;
    for (auto [space, c] : llvm::zip(spaces, constraints)) {
      double ratio = additiveLatency(space, p) * 1e3 / c.limitMs;
      within = within && ratio <= 1;
      total += ratio;
    }
    return total;
  };
  for (;;) {
    bool within = false;
    double current = use(picks, within);
    double bestGain = -INFINITY;
    size_t bestLayer = 0;
    int64_t bestPick = -1;
    for (size_t l = 0; l < picks.size(); ++l)
      for (size_t c = 0; c < probabilities[l].size(); ++c) {
        std::vector<int64_t> trial = picks;
        trial[l] = static_cast<int64_t>(c);
        if (!(use(trial, within) > current) || !within)
          continue;
        double gain = std::log(std::max(probabilities[l][c], 1e-300)) -
                      std::log(std::max(probabilities[l][picks[l]], 1e-300));
        if (gain > bestGain) {
          bestGain = gain;
          bestLayer = l;
          bestPick = static_cast<int64_t>(c);
        }
      }
    if (bestPick < 0)
      return picks;
    picks[bestLayer] = bestPick;
  }
}

/// Bounds on what the search reads back (search.json, report.json,
/// timings): far above what qdsl writes, low enough that a damaged or
/// hostile file cannot exhaust memory or the parser's recursion.
constexpr uint64_t kMaxJSONBytes = uint64_t(64) << 20;
constexpr int kMaxJSONDepth = 32;

json::Value readJSON(const std::string &path, std::string &error) {
  auto buffer = MemoryBuffer::getFile(path);
  if (!buffer) {
    error = "cannot read '" + path + "': " + buffer.getError().message();
    return nullptr;
  }
  if ((*buffer)->getBufferSize() > kMaxJSONBytes) {
    error = "'" + path + "' is larger than 64 MiB: not a file qdsl search wrote";
    return nullptr;
  }
  if (cost::nestsDeeperThan((*buffer)->getBuffer().str(), kMaxJSONDepth)) {
    error = "'" + path + "' nests deeper than " + std::to_string(kMaxJSONDepth) +
            " levels: not a file qdsl search wrote";
    return nullptr;
  }
  Expected<json::Value> parsed = json::parse((*buffer)->getBuffer());
  if (!parsed) {
    error = "'" + path + "': " + toString(parsed.takeError());
    return nullptr;
  }
  return std::move(*parsed);
}

/// The last "epoch" record of a training run's metrics.jsonl.
bool lastEpoch(const std::string &path, json::Object &out, std::string &error) {
  auto buffer = MemoryBuffer::getFile(path);
  if (!buffer) {
    error = "cannot read '" + path + "'";
    return false;
  }
  SmallVector<StringRef> lines;
  (*buffer)->getBuffer().split(lines, '\n', -1, false);
  for (StringRef line : llvm::reverse(lines)) {
    if (cost::nestsDeeperThan(line.str(), kMaxJSONDepth))
      continue;
    Expected<json::Value> v = json::parse(line);
    if (!v) {
      consumeError(v.takeError());
      continue;
    }
    if (json::Object *o = v->getAsObject(); o && o->getString("event") == "epoch") {
      out = std::move(*o);
      return true;
    }
  }
  error = "'" + path + "' has no epoch record";
  return false;
}

/// End-to-end time (ms) of predict at batch 1 on this machine, measured as
/// `qdsl profile` measures the architectures it fits (its rounds of its
/// timed runs after one untimed, the fastest round's median), so that measured
/// and predicted times compare like with like.
bool measureLatency(const std::string &predict, const std::string &weights,
                    const std::vector<int64_t> &inputShape, const std::string &work,
                    double &medianMs, std::string &error) {
  std::vector<int64_t> shape = {1};
  shape.insert(shape.end(), inputShape.begin(), inputShape.end());
  rt::Tensor x(shape);
  std::mt19937 random(7);
  std::normal_distribution<float> normal;
  for (float &v : x.data)
    v = normal(random);
  std::string input = work + "/latency-input.npy", result = work + "/latency.json";
  if (!rt::writeNpy(input, x, error))
    return false;
  std::string threads = std::to_string(profileThreads);
  medianMs = INFINITY;
  // qdsl profile's own defaults (its --rounds and --repeat), not a copy.
  for (unsigned round = 0; round < profileRounds; ++round) {
    if (runProgram(predict, {"--weights", weights, "--input", input, "--output",
                             work + "/latency-output.npy", "--threads", threads, "--pin",
                             "--warmup", "1", "--repeat", std::to_string(profileRepeat),
                             "--profile-json", result},
                   work + "/latency.log"))
      return error = "measuring the latency failed", false;
    json::Value v = readJSON(result, error);
    const json::Object *root = v.getAsObject();
    const json::Array *runs = root ? root->getArray("runs") : nullptr;
    if (!runs)
      return error = "'" + result + "' has no runs", false;
    std::vector<double> seconds;
    for (const json::Value &r : *runs)
      if (auto d = r.getAsNumber())
        seconds.push_back(*d);
    medianMs = std::min(medianMs, cost::median(seconds) * 1e3);
  }
  return true;
}

} // namespace

int runSearch() {
  if (outputFile.empty() || outputFile == "-")
    return reportError("a search needs a directory: add -o DIR");
  const codegen::Target *target = codegen::lookupTarget(searchTarget);
  if (!target || !target->runnableHere)
    return reportError("--target must be a target this machine runs (x86-64-avx2), got '" +
                       searchTarget + "'");
  if (!(archLearningRate > 0 && archLearningRate <= 1))
    return reportError("--arch-lr must be in (0, 1], got " + shownNumber(archLearningRate));
  if (archEvery < 1)
    return reportError("--arch-every must be at least 1");
  if (deriveRule != "argmax" && deriveRule != "fill")
    return reportError("--derive must be argmax or fill, got '" + deriveRule + "'");
  // The launcher is checked before anything is compiled.
  if (launcher.getNumOccurrences()) {
    StringRef first = StringRef(launcher).trim().split(' ').first;
    if (first.empty())
      return reportError("--launcher is empty; expected a command such as \"mpirun -np 4\"");
    if (!sys::findProgramByName(first))
      return reportError("--launcher '" + launcher + "': cannot find '" + first.str() +
                         "' on PATH");
  }
  if (!fromSearch.empty() && !sys::fs::exists(fromSearch + "/search/search.json"))
    return reportError("--from-search '" + fromSearch +
                       "' holds no search (search/search.json): give the -o directory of an "
                       "earlier qdsl search");
  // With --from-search nothing is searched: a flag of the search would be
  // ignored, so it is refused.
  if (!fromSearch.empty())
    for (const cl::Option *flag :
         std::initializer_list<const cl::Option *>{&searchEpochs, &warmupEpochs, &archLearningRate,
                                                   &archEvery, &latencyLoss, &validation})
      if (flag->getNumOccurrences())
        return reportError("--" + flag->ArgStr + " belongs to the search, which --from-search "
                           "does not run; drop it (the earlier search's settings are reported)");
  // The programs it runs check these too, but only after minutes of
  // building: refuse them first.
  for (auto [flag, value, low, high] :
       {std::tuple<const char *, unsigned, unsigned, unsigned>{"--epochs", searchEpochs, 1, 100000},
        {"--retrain-epochs", retrainEpochs, 1, 100000},
        {"--batch", searchBatch, 1, 65536},
        {"--validation", validation, 1, 1u << 31}})
    if (value < low || value > high)
      return reportError(Twine(flag) + " must be from " + Twine(low) + " to " + Twine(high) +
                         ", got " + Twine(value));
  if (fromSearch.empty() && trainSubset > 0 && trainSubset <= validation)
    return reportError("--train-subset " + Twine(trainSubset.getValue()) +
                       " leaves no training example after the " +
                       Twine(validation.getValue()) + " --validation ones");
  if (warmupEpochs >= searchEpochs)
    return reportError("--warmup-epochs " + Twine(warmupEpochs.getValue()) +
                       " leaves no epoch to search in; --epochs is " + Twine(searchEpochs.getValue()));
  std::string directory = outputFile;
  if (sys::fs::exists(directory + "/report.json") && !searchOverwrite)
    return reportError("-o '" + directory + "' holds an earlier search (report.json): give a "
                       "new directory or --overwrite");
  if (std::error_code ec = sys::fs::create_directories(directory + "/logs"))
    return reportError("cannot create '" + directory + "': " + ec.message());

  // The space, its limits and what each device's latency model says of it.
  SelectedModel selected;
  if (int exitCode = loadSelectedModel(selected); exitCode >= 0)
    return exitCode;
  Session &session = *selected.session;
  mlir::func::FuncOp space = selected.model;
  bool hasChoice = false;
  space.walk([&](quadra::ChoiceOp) { hasChoice = true; });
  if (!hasChoice) {
    session.error() << "'" << space.getSymName()
                    << "' has no choices: qdsl search needs a search space";
    return failed(session.finish(false)) ? 1 : 0;
  }
  cost::DeviceProfile given;
  if (!deviceProfile.empty() && !loadDeviceProfile(given))
    return 1;
  auto constraints = searchConstraints(space, given);
  if (failed(constraints))
    return failed(session.finish(false)) ? 1 : 0;
  std::vector<cost::SpaceLatency> spaces;
  bool everyArchitectureFits = true;
  for (const SearchConstraint &c : *constraints) {
    auto latency = cost::estimateSpace(*selected.module, space, c.profile, 1);
    if (failed(latency))
      return failed(session.finish(false)) ? 1 : 0;
    double fastest = latency->fixed, slowest = latency->fixed;
    for (const cost::SpaceLatency::Layer &layer : latency->layers) {
      fastest += *std::min_element(layer.seconds.begin(), layer.seconds.end());
      slowest += *std::max_element(layer.seconds.begin(), layer.seconds.end());
    }
    if (fastest * 1e3 > c.limitMs) {
      session.error() << "the latency limit " << shownNumber(c.limitMs) << " ms on '" << c.device
                      << "' cannot be met: the fastest architecture of '" << space.getSymName()
                      << "' takes " << formatv("{0:f3}", fastest * 1e3).str()
                      << " ms there (profile " << c.profile.file << ")";
      return failed(session.finish(false)) ? 1 : 0;
    }
    if (slowest * 1e3 > c.limitMs)
      everyArchitectureFits = false;
    // A measured profile predicts the configurations it never timed from
    // families fitted on other shapes: say so, with the remedy.
    if (c.profile.calibrated && latency->measuredConfigurations < latency->kernelConfigurations)
      errs() << formatv("qdsl: warning: profile '{0}' never measured {1} of the {2} kernel "
                        "configurations of '{3}' (they are predicted from its family models, "
                        "fitted on other shapes); profile the space first: qdsl profile {4} "
                        "-o {5}.json (docs/NAS.md)\n",
                        c.profile.file,
                        latency->kernelConfigurations - latency->measuredConfigurations,
                        latency->kernelConfigurations, space.getSymName(), inputFile.getValue(),
                        c.device);
    outs() << formatv("limit on {0}: {1} ms; architectures take {2:f3} to {3:f3} ms ({4})\n",
                      c.device, shownNumber(c.limitMs), fastest * 1e3, slowest * 1e3,
                      c.profile.calibrated ? "measured profile " + c.profile.file
                                           : "uncalibrated profile " + c.profile.file +
                                                 ": published figures only");
    spaces.push_back(std::move(*latency));
  }
  if (everyArchitectureFits)
    outs() << "every architecture of '" << space.getSymName()
           << "' meets every limit: the search is for accuracy alone\n";
  outs().flush();

  SmallString<256> self(sys::fs::getMainExecutable(nullptr, reinterpret_cast<void *>(&runSearch)));
  std::string qdsl = self.str().str();
  SmallString<256> spaceFile(inputFile);
  sys::fs::make_absolute(spaceFile);
  const std::string threads = std::to_string(profileThreads);

  // 1. The supernet and its search (or an earlier one's, --from-search).
  std::string searchJSON = directory + "/search/search.json";
  json::Object searchSettings{{"search_epochs", static_cast<int64_t>(searchEpochs)},
                              {"warmup_epochs", static_cast<int64_t>(warmupEpochs)},
                              {"latency_loss", latencyLoss},
                              {"arch_lr", archLearningRate.getValue()},
                              {"arch_every", static_cast<int64_t>(archEvery)},
                              {"seed", static_cast<int64_t>(seed)}};
  if (!fromSearch.empty()) {
    searchJSON = fromSearch + "/search/search.json";
    std::string error;
    json::Value earlier = readJSON(fromSearch + "/report.json", error);
    const json::Object *o = earlier.getAsObject();
    const json::Object *settings = o ? o->getObject("settings") : nullptr;
    if (!settings || !o->getInteger("seed") || !settings->getInteger("search_epochs"))
      return reportError("--from-search '" + fromSearch + "': " +
                         (error.empty() ? "its report.json has no integer seed and "
                                          "settings.search_epochs (not a qdsl search report)"
                                        : error));
    searchSettings = *settings;
    searchSettings["seed"] = *o->getInteger("seed");
    outs() << "deriving from the search in " << fromSearch << " (not searching again)\n";
  } else {
    std::string supernet = directory + "/supernet";
    std::vector<std::string> compile = {"compile", spaceFile.str().str(), "--search",
                                        "--target=" + target->name, "-o", supernet};
    if (!deviceProfile.empty())
      compile.push_back("--device=" + deviceProfile);
    if (latencyLimit.getNumOccurrences())
      compile.push_back("--latency-limit=" + latencyLimit);
    for (const std::string &device : onlyDevices)
      compile.push_back("--only=" + device);
    for (std::string &f : frontEndFlags())
      compile.push_back(std::move(f));
    outs() << "compiling the supernet into " << supernet << "\n";
    outs().flush();
    if (runProgram(qdsl, compile, directory + "/logs/supernet-compile.log") ||
        buildProject(supernet, jobs, directory + "/logs/supernet-build.log"))
      return 1;
    std::vector<std::string> searchArgs = {
        "--epochs",       std::to_string(searchEpochs), "--warmup-epochs",
        std::to_string(warmupEpochs), "--batch", std::to_string(searchBatch),
        "--seed",         std::to_string(seed),         "--threads", threads,
        "--latency-loss", latencyLoss,                  "--validation", std::to_string(validation),
        "--arch-lr",      formatv("{0}", archLearningRate.getValue()).str(),
        "--arch-every",   std::to_string(archEvery),
        "--out",          directory + "/search"};
    if (trainSubset > 0)
      searchArgs.insert(searchArgs.end(), {"--train-subset", std::to_string(trainSubset)});
    if (!dataDirectory.empty())
      searchArgs.insert(searchArgs.end(), {"--data", dataDirectory});
    for (const SearchConstraint &c : *constraints)
      searchArgs.insert(searchArgs.end(), {"--limit", c.device + "=" + formatv("{0}", c.limitMs).str()});
    outs() << "searching (" << searchEpochs << " epochs, " << warmupEpochs << " of warm-up)\n";
    outs().flush();
    if (runTrainingProgram(supernet + "/build/search", searchArgs))
      return 1;
  }
  // 2. The derived architecture: the most probable one within every limit.
  std::string error;
  json::Value searchResult = readJSON(searchJSON, error);
  const json::Object *result = searchResult.getAsObject();
  const json::Array *layers = result ? result->getArray("layers") : nullptr;
  if (!layers)
    return reportError(error.empty() ? "'" + searchJSON + "' holds no layers" : error);
  // A search of another space (--from-search) must not be read as this one's.
  bool sameLayers = layers->size() == spaces.front().layers.size();
  for (size_t l = 0; sameLayers && l < layers->size(); ++l) {
    const json::Object *o = (*layers)[l].getAsObject();
    const json::Array *candidates = o ? o->getArray("candidates") : nullptr;
    const json::Array *ps = o ? o->getArray("probabilities") : nullptr;
    sameLayers = o && o->getString("layer") == spaces.front().layers[l].name && candidates &&
                 ps && candidates->size() == spaces.front().layers[l].seconds.size() &&
                 ps->size() == candidates->size();
  }
  if (!sameLayers)
    return reportError("'" + searchJSON + "' is not a search of '" + space.getSymName().str() +
                       "': its layers or candidates differ from the space's");
  std::vector<std::vector<double>> probabilities;
  std::vector<int64_t> argmax;
  for (const json::Value &l : *layers) {
    const json::Object *o = l.getAsObject();
    std::vector<double> p;
    double sum = 0;
    bool numbers = true;
    for (const json::Value &x : *o->getArray("probabilities")) {
      std::optional<double> v = x.getAsNumber();
      numbers = numbers && v && *v >= 0 && *v <= 1;
      p.push_back(v.value_or(0));
      sum += p.back();
    }
    if (!numbers || std::abs(sum - 1) > 1e-3)
      return reportError("'" + searchJSON + "': the probabilities of layer '" +
                         o->getString("layer").value_or("").str() +
                         "' are not a distribution (numbers in [0, 1] summing to 1)");
    argmax.push_back(std::max_element(p.begin(), p.end()) - p.begin());
    probabilities.push_back(std::move(p));
  }
  std::vector<int64_t> picks = withinLimits(probabilities, argmax, spaces, *constraints);
  if (picks.empty())
    return reportError("no architecture within every limit was found from the search's "
                       "probabilities");
  if (picks != argmax)
    outs() << "the most probable architecture (" << choicesText(argmax)
           << ") is over a limit; taking the most probable one within every limit ("
           << choicesText(picks) << ")\n";
  if (deriveRule == "fill") {
    std::vector<int64_t> within = picks;
    picks = fillBudget(probabilities, picks, spaces, *constraints);
    if (picks != within)
      outs() << "--derive=fill: " << choicesText(within) << " grown to " << choicesText(picks)
             << " within every limit\n";
  }
  std::vector<double> limitsMs;
  std::vector<std::string> devices;
  for (const SearchConstraint &c : *constraints) {
    limitsMs.push_back(c.limitMs);
    devices.push_back(c.device);
  }
  LayerHolds holds = limitsHoldingLayers(spaces, limitsMs, picks);
  printLayerHolds(holds, spaces.front(), devices, outs());
  choices.setValue(choicesText(picks));
  std::vector<std::string> header = {
      formatv("Found by qdsl search (seed {0}, {1} search epochs, --derive={2}):",
              searchSettings.getInteger("seed").value_or(0),
              searchSettings.getInteger("search_epochs").value_or(0), deriveRule.getValue())
          .str()};
  for (auto [c, s] : llvm::zip(*constraints, spaces))
    header.push_back(formatv("  {0}: predicted {1:f3} ms, limit {2} ms ({3})", c.device,
                             additiveLatency(s, picks) * 1e3, shownNumber(c.limitMs),
                             c.profile.calibrated ? "measured profile" : "uncalibrated profile")
                         .str());
  mlir::FailureOr<std::string> derived =
      deriveModel(session, sys::path::filename(inputFile).str(), header, directory);
  if (failed(derived))
    return failed(session.finish(false)) ? 1 : 0;
  if (writeOutputFile(directory + "/derived.qd", *derived) ||
      writeOutputFile(directory + "/choices.txt", choicesText(picks) + "\n"))
    return 1;
  mlir::OwningOpRef<mlir::ModuleOp> fixed = session.generate(/*applyChoices=*/true);
  auto fixedModel = fixed ? fixed->lookupSymbol<mlir::func::FuncOp>(space.getSymName())
                          : mlir::func::FuncOp();
  auto stats = fixedModel ? quadra::computeModelStatistics(fixedModel, 1)
                          : mlir::FailureOr<quadra::ModelStatistics>(mlir::failure());
  if (failed(stats))
    return failed(session.finish(false)) ? 1 : 0;
  outs() << "derived " << directory << "/derived.qd (choices " << choicesText(picks) << "; "
         << formatv("{0:f2} M params, {1:f1} M MACs", stats->params / 1e6, stats->macs / 1e6)
         << ")\n";

  // 3. Retraining from scratch with the generated trainer, and the latency
  //    measured on this machine.
  std::string model = directory + "/model";
  std::vector<std::string> compileDerived = {"compile", directory + "/derived.qd", "--train",
                                             "--target=" + target->name, "-o", model,
                                             "--label-smoothing=" + formatv("{0}", labelSmoothing).str()};
  outs() << "retraining the derived model (" << retrainEpochs << " epochs)\n";
  outs().flush();
  if (runProgram(qdsl, compileDerived, directory + "/logs/model-compile.log") ||
      buildProject(model, jobs, directory + "/logs/model-build.log"))
    return 1;
  std::vector<std::string> trainArgs = {"--epochs", std::to_string(retrainEpochs), "--batch",
                                        std::to_string(searchBatch), "--seed", std::to_string(seed),
                                        "--threads", threads, "--out", directory + "/train",
                                        "--overwrite"};
  if (trainSubset > 0)
    trainArgs.insert(trainArgs.end(), {"--train-subset", std::to_string(trainSubset)});
  if (testSubset > 0)
    trainArgs.insert(trainArgs.end(), {"--test-subset", std::to_string(testSubset)});
  if (!dataDirectory.empty())
    trainArgs.insert(trainArgs.end(), {"--data", dataDirectory});
  if (runTrainingProgram(model + "/build/train", trainArgs))
    return 1;
  json::Object lastTrain;
  if (!lastEpoch(directory + "/train/metrics.jsonl", lastTrain, error))
    return reportError(error);
  if (std::error_code ec = sys::fs::copy_file(directory + "/train/weights.safetensors",
                                              directory + "/weights.safetensors"))
    return reportError("cannot copy the trained weights: " + ec.message());
  double measuredMs = 0;
  auto inputType = cast<mlir::RankedTensorType>(fixedModel.getArgument(0).getType());
  std::vector<int64_t> inputShape(inputType.getShape().begin() + 1, inputType.getShape().end());
  if (!measureLatency(model + "/build/predict", directory + "/weights.safetensors", inputShape,
                      directory + "/logs", measuredMs, error))
    return reportError(error);
  double testAccuracy = lastTrain.getNumber("test_top1").value_or(0);
  outs() << formatv("derived model: test top-1 {0:f2}%, latency on this machine {1:f3} ms "
                    "(batch 1, {2} threads; the fastest of 8 rounds' medians of 5 runs, as "
                    "qdsl profile measures)\n",
                    100 * testAccuracy, measuredMs, profileThreads.getValue());

  // 4. The report and its plots.
  json::Array devicesJSON;
  for (auto [c, s] : llvm::zip(*constraints, spaces)) {
    double predicted = additiveLatency(s, picks) * 1e3;
    json::Object d{{"device", c.device},
                   {"limit_ms", c.limitMs},
                   {"profile", c.profile.file},
                   {"calibrated", c.profile.calibrated},
                   {"predicted_ms", predicted},
                   {"within_limit", predicted <= c.limitMs}};
    const codegen::Target *t = codegen::lookupTarget(c.profile.device.target);
    if (t && t->runnableHere && c.profile.calibrated) {
      d["measured_ms"] = measuredMs;
      d["measured_over_predicted"] = measuredMs / predicted;
    }
    devicesJSON.push_back(std::move(d));
  }
  json::Object settings = searchSettings;
  settings.erase("seed");
  settings["retrain_epochs"] = static_cast<int64_t>(retrainEpochs);
  settings["batch"] = static_cast<int64_t>(searchBatch);
  settings["threads"] = static_cast<int64_t>(profileThreads);
  settings["train_subset"] = static_cast<int64_t>(trainSubset);
  settings["derive"] = deriveRule.getValue();
  if (!fromSearch.empty())
    settings["from_search"] = fromSearch.getValue();
  json::Object report{
      {"format", "qdsl-search-report"},
      {"version", 1},
      {"space", space.getSymName().str()},
      {"source", spaceFile.str().str()},
      {"seed", searchSettings.getInteger("seed").value_or(0)},
      {"settings", std::move(settings)},
      {"devices", std::move(devicesJSON)},
      {"epochs", result->get("epochs") ? *result->get("epochs") : json::Value(json::Array())},
      {"search_peak_memory_mb", result->getNumber("peak_memory_mb").value_or(0)},
      {"derived",
       json::Object{{"choices", choicesText(picks)},
                    {"argmax_choices", choicesText(argmax)},
                    {"layers", layerHoldsToJSON(holds, spaces.front(), devices)},
                    {"params", static_cast<int64_t>(stats->params)},
                    {"macs", static_cast<int64_t>(stats->macs)},
                    {"measured_ms", measuredMs},
                    {"test_accuracy", testAccuracy},
                    {"train", std::move(lastTrain)}}}};
  if (writeOutputFile(directory + "/report.json",
                      formatv("{0:2}", json::Value(std::move(report))).str() + "\n"))
    return 1;

  // Probabilities of each layer's candidates, and E[LAT] against the limits.
  const json::Array *epochs = result->getArray("epochs");
  std::vector<Plot> perLayer;
  for (auto [l, layerValue] : llvm::enumerate(*layers)) {
    const json::Object *layer = layerValue.getAsObject();
    std::string name = layer ? layer->getString("layer").value_or("").str() : "";
    Plot plot;
    plot.title = name;
    plot.xLabel = "epoch";
    plot.yLabel = "probability";
    plot.yMin = 0;
    plot.yMax = 1;
    const json::Array *candidates = layer ? layer->getArray("candidates") : nullptr;
    for (size_t c = 0; candidates && c < candidates->size(); ++c) {
      PlotSeries s;
      s.label = (*candidates)[c].getAsString().value_or("").str();
      for (const json::Value &e : epochs ? *epochs : json::Array()) {
        const json::Object *o = e.getAsObject();
        const json::Object *ps = o ? o->getObject("probabilities") : nullptr;
        const json::Array *p = ps ? ps->getArray(name) : nullptr;
        if (p && c < p->size())
          s.points.push_back({o->getNumber("epoch").value_or(0), (*p)[c].getAsNumber().value_or(0)});
      }
      plot.series.push_back(std::move(s));
    }
    perLayer.push_back(std::move(plot));
  }
  Plot latencyPlot;
  latencyPlot.title = "expected latency against the limit";
  latencyPlot.xLabel = "epoch";
  latencyPlot.yLabel = "E[LAT] / limit";
  for (const SearchConstraint &c : *constraints) {
    PlotSeries s;
    s.label = c.device;
    for (const json::Value &e : epochs ? *epochs : json::Array())
      if (const json::Object *o = e.getAsObject())
        if (const json::Object *lat = o->getObject("expected_latency_ms"))
          if (const json::Object *d = lat->getObject(c.device))
            s.points.push_back({o->getNumber("epoch").value_or(0),
                                d->getNumber("expected").value_or(0) / c.limitMs});
    latencyPlot.series.push_back(std::move(s));
  }
  PlotSeries limitLine;
  limitLine.label = "limit";
  limitLine.dashed = true;
  limitLine.points = {
      {1, 1.0}, {double(searchSettings.getInteger("search_epochs").value_or(searchEpochs)), 1.0}};
  latencyPlot.series.push_back(limitLine);
  Plot accuracyPlot;
  accuracyPlot.title = "derived model";
  accuracyPlot.xLabel = "measured latency (ms)";
  accuracyPlot.yLabel = "test top-1 (%)";
  PlotSeries point;
  point.label = "searched";
  point.line = false;
  point.points = {{measuredMs, 100 * testAccuracy}};
  point.pointLabels = {choicesText(picks)};
  accuracyPlot.series.push_back(point);
  if (writeOutputFile(directory + "/probabilities.svg", renderSvgGrid(perLayer, 3)) ||
      writeOutputFile(directory + "/latency.svg", renderSvg(latencyPlot)) ||
      writeOutputFile(directory + "/accuracy-latency.svg", renderSvg(accuracyPlot)))
    return 1;
  outs() << "wrote " << directory << "/report.json, derived.qd, choices.txt, weights.safetensors "
         << "and the plots probabilities.svg, latency.svg, accuracy-latency.svg\n";
  return failed(session.finish(true)) ? 1 : 0;
}

} // namespace qdsl::tool
