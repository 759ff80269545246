//===- ModelStatistics.cpp - parameters, MACs and memory of a model -------===//

#include "passes/analysis/ModelStatistics.h"

#include "dialect/QuadraOps.h"
#include "dialect/QuadraShapes.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Format.h"

using namespace mlir;

namespace qdsl::quadra {

namespace {

std::string describeWithBatch(Type type, int64_t batch) {
  auto tensor = llvm::dyn_cast<RankedTensorType>(type);
  if (!tensor || tensor.getRank() == 0 || !tensor.isDynamicDim(0))
    return describeType(type);
  SmallVector<int64_t> shape(tensor.getShape());
  shape[0] = batch;
  return describeType(tensor.clone(shape));
}

bool add(uint64_t &total, uint64_t value) {
  return !__builtin_add_overflow(total, value, &total);
}

/// Whether an op's result is a tensor of its own (an alias or a declaration
/// is not).
bool producesActivation(Operation *op) {
  return !llvm::isa<WeightOp, IdentityOp, ChoiceOp, YieldOp>(op) &&
         op->getNumResults() == 1 &&
         llvm::isa<RankedTensorType>(op->getResult(0).getType());
}

class StatisticsBuilder {
public:
  StatisticsBuilder(int64_t batch) : batch(batch) {}

  FailureOr<uint64_t> bytes(Value value, Operation *where) {
    auto type = llvm::cast<RankedTensorType>(value.getType());
    FailureOr<uint64_t> elements = countElements(type, batch);
    uint64_t elementBytes =
        (type.getElementType().getIntOrFloatBitWidth() + 7) / 8;
    uint64_t result;
    if (failed(elements) ||
        __builtin_mul_overflow(*elements, elementBytes, &result)) {
      where->emitError("cannot count the size of ")
          << describeType(type)
          << ": only the leading (batch) dimension may be dynamic";
      return failure();
    }
    return result;
  }

  /// Adds the cost of one op to `row`.
  LogicalResult count(Operation *op, LayerStatistics &row) {
    bool ok = true;
    if (auto weight = llvm::dyn_cast<WeightOp>(op))
      ok = add(row.params, weight.getNumElements());
    if (auto cost = llvm::dyn_cast<CostOpInterface>(op)) {
      FailureOr<uint64_t> macs = cost.getMacs(batch);
      if (failed(macs))
        return op->emitError("cannot count the MACs of this op at batch ")
               << batch
               << ": a shape is dynamic beyond the batch, or the count exceeds 64 bits";
      ok = ok && add(row.macs, *macs);
    }
    if (producesActivation(op)) {
      FailureOr<uint64_t> size = bytes(op->getResult(0), op);
      if (failed(size))
        return failure();
      ok = ok && add(row.activationBytes, *size);
      row.output = describeWithBatch(op->getResult(0).getType(), batch);
    }
    if (!ok)
      return op->emitError("the model's costs overflow 64-bit counters");
    return success();
  }

  /// Counts everything inside a candidate region into one row.
  LogicalResult countRegion(Region &region, LayerStatistics &row) {
    WalkResult walk = region.walk([&](Operation *op) {
      return failed(count(op, row)) ? WalkResult::interrupt()
                                    : WalkResult::advance();
    });
    if (walk.wasInterrupted())
      return failure();
    if (auto yield = llvm::dyn_cast<YieldOp>(region.front().back()))
      row.output = describeWithBatch(yield.getValues()[0].getType(), batch);
    return success();
  }

  /// Peak bytes of live activations while running `block`, counting the
  /// block arguments as live on entry when `countArguments`.
  FailureOr<uint64_t> peak(Block &block, bool countArguments) {
    llvm::DenseMap<Operation *, unsigned> position;
    unsigned index = 0;
    for (Operation &op : block)
      position[&op] = index++;
    // Where each value of this block dies: its last user in this block.
    auto lastUse = [&](Value value) -> unsigned {
      unsigned last = 0;
      bool used = false;
      for (Operation *user : value.getUsers())
        if (Operation *ancestor = block.findAncestorOpInBlock(*user)) {
          last = std::max(last, position[ancestor]);
          used = true;
        }
      return used ? last : ~0u;
    };
    std::vector<std::vector<uint64_t>> freedAfter(index);
    uint64_t current = 0, highest = 0;
    auto track = [&](Value value, uint64_t size, unsigned definedAt) {
      unsigned last = lastUse(value);
      // A value nobody reads dies where it is made.
      unsigned dies = last == ~0u ? definedAt : last;
      if (dies < index)
        freedAfter[dies].push_back(size);
    };
    if (countArguments) {
      for (BlockArgument arg : block.getArguments()) {
        if (!llvm::isa<RankedTensorType>(arg.getType()))
          continue;
        FailureOr<uint64_t> size = bytes(arg, block.getParentOp());
        if (failed(size))
          return failure();
        current += *size;
        track(arg, *size, 0);
      }
    }
    highest = current;
    for (Operation &op : block) {
      unsigned at = position[&op];
      if (auto choice = llvm::dyn_cast<ChoiceOp>(op)) {
        uint64_t inner = 0;
        for (Region &region : choice.getAlternatives()) {
          FailureOr<uint64_t> regionPeak = peak(region.front(), false);
          if (failed(regionPeak))
            return failure();
          inner = std::max(inner, *regionPeak);
        }
        highest = std::max(highest, current + inner);
        // The layer's output outlives the candidate that made it.
        FailureOr<uint64_t> size = bytes(choice.getResult(), &op);
        if (failed(size))
          return failure();
        current += *size;
        track(choice.getResult(), *size, at);
      } else if (producesActivation(&op)) {
        FailureOr<uint64_t> size = bytes(op.getResult(0), &op);
        if (failed(size))
          return failure();
        current += *size;
        highest = std::max(highest, current);
        track(op.getResult(0), *size, at);
      }
      for (uint64_t size : freedAfter[at])
        current -= size;
    }
    return highest;
  }

private:
  int64_t batch;
};

std::string rowName(Operation *op, unsigned ordinal) {
  std::string layer = getLayerName(op->getLoc());
  if (!layer.empty())
    return layer;
  if (auto choice = llvm::dyn_cast<ChoiceOp>(op))
    return choice.getLayer().str();
  // An unnamed weight belongs to the layer that first reads it.
  if (auto weight = llvm::dyn_cast<WeightOp>(op)) {
    Block *block = op->getBlock();
    for (Operation *user : weight->getUsers()) {
      Operation *ancestor = block->findAncestorOpInBlock(*user);
      if (ancestor && ancestor != op) {
        unsigned position = 1;
        for (Operation &other : *block) {
          if (&other == ancestor)
            break;
          ++position;
        }
        return rowName(ancestor, position);
      }
    }
  }
  return (op->getName().getStringRef() + "#" + llvm::Twine(ordinal)).str();
}

} // namespace

FailureOr<ModelStatistics> computeModelStatistics(func::FuncOp func,
                                                  int64_t batch) {
  ModelStatistics stats;
  stats.model = func.getSymName().str();
  stats.batch = batch;
  if (func.isExternal())
    return func.emitError("'") << stats.model << "' has no body to count";
  if (func.getNumArguments() > 0)
    stats.input = describeWithBatch(func.getArgument(0).getType(), batch);
  if (func.getNumResults() > 0)
    stats.output = describeWithBatch(func.getResultTypes()[0], batch);

  StatisticsBuilder builder(batch);
  llvm::StringMap<size_t> rowOf;
  auto rowFor = [&](const std::string &name) -> LayerStatistics & {
    auto [it, inserted] = rowOf.try_emplace(name, stats.layers.size());
    if (inserted) {
      stats.layers.emplace_back();
      stats.layers.back().name = name;
    }
    return stats.layers[it->second];
  };

  uint64_t choiceParamsMin = 0, choiceParamsMax = 0, choiceMacsMin = 0,
           choiceMacsMax = 0, choiceParamsAll = 0, choiceMacsAll = 0;
  unsigned ordinal = 0;
  for (Operation &op : func.getBody().front()) {
    ++ordinal;
    if (llvm::isa<func::ReturnOp>(op))
      continue;
    auto choice = llvm::dyn_cast<ChoiceOp>(op);
    if (!choice) {
      if (failed(builder.count(&op, rowFor(rowName(&op, ordinal)))))
        return failure();
      continue;
    }
    ChoiceStatistics searchable;
    searchable.layer = choice.getLayer().str();
    uint64_t pMin = UINT64_MAX, pMax = 0, mMin = UINT64_MAX, mMax = 0;
    for (auto [name, region] :
         llvm::zip(choice.getCandidates(), choice.getAlternatives())) {
      LayerStatistics row;
      row.name = (searchable.layer + "[" +
                  llvm::cast<StringAttr>(name).getValue() + "]")
                     .str();
      if (failed(builder.countRegion(region, row)))
        return failure();
      pMin = std::min(pMin, row.params);
      pMax = std::max(pMax, row.params);
      mMin = std::min(mMin, row.macs);
      mMax = std::max(mMax, row.macs);
      choiceParamsAll += row.params;
      choiceMacsAll += row.macs;
      searchable.candidates.push_back(row);
      stats.layers.push_back(row);
    }
    choiceParamsMin += pMin;
    choiceParamsMax += pMax;
    choiceMacsMin += mMin;
    choiceMacsMax += mMax;
    stats.choices.push_back(std::move(searchable));
  }

  for (const LayerStatistics &row : stats.layers) {
    if (!add(stats.params, row.params) || !add(stats.macs, row.macs) ||
        !add(stats.activationBytes, row.activationBytes))
      return func.emitError("the model's costs overflow 64-bit counters");
  }
  stats.paramsMin = stats.params - choiceParamsAll + choiceParamsMin;
  stats.paramsMax = stats.params - choiceParamsAll + choiceParamsMax;
  stats.macsMin = stats.macs - choiceMacsAll + choiceMacsMin;
  stats.macsMax = stats.macs - choiceMacsAll + choiceMacsMax;

  FailureOr<uint64_t> peak = builder.peak(func.getBody().front(), true);
  if (failed(peak))
    return failure();
  stats.peakActivationBytes = *peak;
  return stats;
}

namespace {
/// `value` in the largest of `units` (each `step` times the one before)
/// that keeps it at least 1, with `digits` decimals; an exact count below
/// the first step.
std::string formatScaled(uint64_t value, double step, llvm::ArrayRef<const char *> units,
                         int digits) {
  double scaled = static_cast<double>(value);
  unsigned unit = 0;
  while (scaled >= step && unit + 1 < units.size()) {
    scaled /= step;
    ++unit;
  }
  std::string s;
  llvm::raw_string_ostream os(s);
  if (unit == 0)
    os << value << units[0];
  else
    os << llvm::format("%.*f", digits, scaled) << units[unit];
  return s;
}
} // namespace

std::string formatCount(uint64_t count) {
  return formatScaled(count, 1000.0, {"", " K", " M", " G", " T", " P", " E"}, 2);
}

std::string formatBytes(uint64_t bytes) {
  return formatScaled(bytes, 1024.0, {" B", " KiB", " MiB", " GiB", " TiB", " PiB", " EiB"}, 1);
}

void printModelStatistics(const ModelStatistics &stats, llvm::raw_ostream &os) {
  size_t nameWidth = 5, outputWidth = 6;
  for (const LayerStatistics &row : stats.layers) {
    nameWidth = std::max(nameWidth, row.name.size());
    outputWidth = std::max(outputWidth, row.output.size());
  }
  os << stats.model << ": " << stats.input << " -> " << stats.output
     << ", batch " << stats.batch << "\n";
  os << llvm::left_justify("layer", nameWidth) << "  "
     << llvm::left_justify("output", outputWidth) << "  "
     << llvm::right_justify("params", 12) << "  "
     << llvm::right_justify("MACs", 15) << "  "
     << llvm::right_justify("activations", 12) << "\n";
  for (const LayerStatistics &row : stats.layers)
    os << llvm::left_justify(row.name, nameWidth) << "  "
       << llvm::left_justify(row.output, outputWidth) << "  "
       << llvm::right_justify(std::to_string(row.params), 12) << "  "
       << llvm::right_justify(std::to_string(row.macs), 15) << "  "
       << llvm::right_justify(formatBytes(row.activationBytes), 12) << "\n";
  os << llvm::left_justify("total", nameWidth) << "  "
     << llvm::left_justify("", outputWidth) << "  "
     << llvm::right_justify(std::to_string(stats.params), 12) << "  "
     << llvm::right_justify(std::to_string(stats.macs), 15) << "  "
     << llvm::right_justify(formatBytes(stats.activationBytes), 12) << "\n";
  os << "params " << formatCount(stats.params) << ", MACs "
     << formatCount(stats.macs) << ", forward activations "
     << formatBytes(stats.activationBytes) << " (peak live "
     << formatBytes(stats.peakActivationBytes) << ")\n";
  if (!stats.choices.empty())
    os << "search space: " << stats.choices.size()
       << " searchable layers; a sampled path has params "
       << formatCount(stats.paramsMin) << " to "
       << formatCount(stats.paramsMax) << ", MACs "
       << formatCount(stats.macsMin) << " to " << formatCount(stats.macsMax)
       << "\n";
}

llvm::json::Object modelStatisticsToJSON(const ModelStatistics &stats) {
  auto rowToJSON = [](const LayerStatistics &row) {
    return llvm::json::Object{{"name", row.name},
                              {"output", row.output},
                              {"params", static_cast<int64_t>(row.params)},
                              {"macs", static_cast<int64_t>(row.macs)},
                              {"activation_bytes",
                               static_cast<int64_t>(row.activationBytes)}};
  };
  llvm::json::Array layers;
  for (const LayerStatistics &row : stats.layers)
    layers.push_back(rowToJSON(row));
  llvm::json::Object object{
      {"model", stats.model},
      {"batch", stats.batch},
      {"input", stats.input},
      {"output", stats.output},
      {"params", static_cast<int64_t>(stats.params)},
      {"macs", static_cast<int64_t>(stats.macs)},
      {"activation_bytes", static_cast<int64_t>(stats.activationBytes)},
      {"peak_activation_bytes", static_cast<int64_t>(stats.peakActivationBytes)},
      {"layers", std::move(layers)}};
  if (!stats.choices.empty()) {
    llvm::json::Array choices;
    for (const ChoiceStatistics &choice : stats.choices) {
      llvm::json::Array candidates;
      for (const LayerStatistics &row : choice.candidates)
        candidates.push_back(rowToJSON(row));
      choices.push_back(llvm::json::Object{
          {"layer", choice.layer}, {"candidates", std::move(candidates)}});
    }
    object["search_space"] = llvm::json::Object{
        {"choices", std::move(choices)},
        {"params_min", static_cast<int64_t>(stats.paramsMin)},
        {"params_max", static_cast<int64_t>(stats.paramsMax)},
        {"macs_min", static_cast<int64_t>(stats.macsMin)},
        {"macs_max", static_cast<int64_t>(stats.macsMax)}};
  }
  return object;
}

} // namespace qdsl::quadra
