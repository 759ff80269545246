//===- StatsCommand.cpp - qdsl stats --------------------------------------===//

#include "Options.h"
#include "Session.h"

#include "passes/analysis/MemoryPlan.h"
#include "passes/analysis/ModelStatistics.h"
#include "passes/Pipelines.h"

#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"

using namespace llvm;

namespace qdsl::tool {

namespace {

void printTrainingMemory(const quadra::MemoryPlan &plan, raw_ostream &os) {
  os << formatv("  {0,-11} peak {1,10}: activations and gradients {2,10}, parameters {3}, "
                "AdamW moments {4}\n",
                plan.policy, quadra::formatBytes(plan.peakBytes()),
                quadra::formatBytes(plan.arenaBytes),
                quadra::formatBytes(plan.parameterBytes),
                quadra::formatBytes(plan.optimizerBytes));
}

mlir::LogicalResult statsChunk(std::unique_ptr<MemoryBuffer> buffer,
                               raw_ostream &os) {
  Session session(std::move(buffer));
  if (!session.load())
    return session.finish(false);
  mlir::OwningOpRef<mlir::ModuleOp> module = session.generate();
  if (!module)
    return session.finish(false);
  std::vector<quadra::ModelStatistics> all;
  std::vector<std::vector<quadra::MemoryPlan>> plans;
  for (auto func : module->getOps<mlir::func::FuncOp>()) {
    mlir::FailureOr<quadra::ModelStatistics> stats =
        quadra::computeModelStatistics(func, batch);
    if (failed(stats))
      return session.finish(false);
    all.push_back(std::move(*stats));
    plans.emplace_back();
    if (!train)
      continue;
    for (quadra::MemoryPolicy policy : quadra::kMemoryPolicies) {
      mlir::FailureOr<quadra::TrainingStep> training = quadra::buildTrainingStep(func, policy);
      if (failed(training))
        return session.finish(false);
      mlir::FailureOr<quadra::MemoryPlan> plan =
          quadra::planTrainingMemory(training->step, batch);
      if (failed(plan))
        return session.finish(false);
      plans.back().push_back(std::move(*plan));
    }
  }
  if (!json) {
    for (auto [i, stats] : enumerate(all)) {
      if (i > 0)
        os << "\n";
      quadra::printModelStatistics(stats, os);
      if (!plans[i].empty())
        os << "\ntraining step (AdamW), batch " << batch << ":\n";
      for (const quadra::MemoryPlan &plan : plans[i])
        printTrainingMemory(plan, os);
    }
    return session.finish(true);
  }
  auto toJSON = [&](size_t i) {
    json::Object object = quadra::modelStatisticsToJSON(all[i]);
    if (plans[i].empty())
      return object;
    json::Object peaks, arenas;
    for (const quadra::MemoryPlan &plan : plans[i]) {
      peaks[plan.policy] = plan.peakBytes();
      arenas[plan.policy] = plan.arenaBytes;
    }
    object["train_peak_bytes"] = std::move(peaks);
    object["train_arena_bytes"] = std::move(arenas);
    object["train_parameter_bytes"] = plans[i].front().parameterBytes;
    object["train_optimizer_bytes"] = plans[i].front().optimizerBytes;
    return object;
  };
  // One model: its object; several: {"models": [...]}.
  json::Value value = nullptr;
  if (all.size() == 1) {
    value = toJSON(0);
  } else {
    json::Array models;
    for (size_t i = 0; i < all.size(); ++i)
      models.push_back(toJSON(i));
    value = json::Object{{"models", std::move(models)}};
  }
  os << formatv("{0:2}", value) << "\n";
  return session.finish(true);
}

} // namespace

int runStats() {
  if (batch < 1)
    return reportError("--batch must be at least 1, got " + Twine(batch));
  return processInput(statsChunk);
}

} // namespace qdsl::tool
