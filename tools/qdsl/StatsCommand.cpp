//===- StatsCommand.cpp - qdsl stats --------------------------------------===//

#include "Options.h"
#include "Session.h"

#include "passes/ModelStatistics.h"

#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"

using namespace llvm;

namespace qdsl::tool {

namespace {

mlir::LogicalResult statsChunk(std::unique_ptr<MemoryBuffer> buffer,
                               raw_ostream &os) {
  Session session(std::move(buffer));
  if (!session.load())
    return session.finish(false);
  mlir::OwningOpRef<mlir::ModuleOp> module = session.generate();
  if (!module)
    return session.finish(false);
  std::vector<quadra::ModelStatistics> all;
  for (auto func : module->getOps<mlir::func::FuncOp>()) {
    mlir::FailureOr<quadra::ModelStatistics> stats =
        quadra::computeModelStatistics(func, batch);
    if (failed(stats))
      return session.finish(false);
    all.push_back(std::move(*stats));
  }
  if (!json) {
    for (auto [i, stats] : enumerate(all)) {
      if (i > 0)
        os << "\n";
      quadra::printModelStatistics(stats, os);
    }
    return session.finish(true);
  }
  // One model: its object; several: {"models": [...]}.
  json::Value value = nullptr;
  if (all.size() == 1) {
    value = quadra::modelStatisticsToJSON(all.front());
  } else {
    json::Array models;
    for (const auto &stats : all)
      models.push_back(quadra::modelStatisticsToJSON(stats));
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
