//===- WeightsCommand.cpp - qdsl weights init|import|export ---------------===//

#include "Options.h"
#include "Session.h"

#include "runtime/PyTorchInterop.h"
#include "runtime/ReferenceExecutor.h"
#include "runtime/TensorFiles.h"

using namespace llvm;

namespace qdsl::tool {

int runWeights() {
  std::string action = weightsAction;
  if (action != "init" && action != "import" && action != "export")
    return reportError("unknown weights action '" + action +
                "': expected init, import or export");
  if (outputFile == "-")
    return reportError("qdsl weights " + action + " needs -o FILE.safetensors");
  if ((action == "init") != weightsSource.empty())
    return reportError(action == "init"
                    ? "qdsl weights init takes no weights file"
                    : "qdsl weights " + action + " needs the file to convert");
  if (weightsFormat != "pytorch")
    return reportError("unknown --format '" + weightsFormat + "': expected pytorch");
  SelectedModel selected;
  int exitCode = 0;
  if (!loadSelectedModel(selected, exitCode))
    return exitCode;
  mlir::func::FuncOp model = selected.model;
  std::string error;

  rt::TensorMap result;
  rt::Metadata metadata = {{"qdsl.model", model.getSymName().str()}};
  if (randomStd < 0 || (randomStd > 0 && action != "init"))
    return reportError("--random-std takes a positive value and goes with init");
  if (action == "init") {
    if (randomStd > 0) {
      for (const rt::WeightInfo &w : rt::listWeights(model))
        result[w.name] = rt::initializeTensor(
            w.name, w.shape, rt::InitSpec{rt::InitKind::Normal, randomStd}, seed);
      metadata["qdsl.random_std"] = std::to_string(randomStd);
    } else {
      result = rt::initializeWeights(model, seed);
    }
    metadata["qdsl.seed"] = std::to_string(seed);
  } else {
    rt::TensorMap loaded;
    rt::Metadata carried;
    if (!rt::readSafetensors(weightsSource, loaded, error, &carried))
      return reportError(error);
    // qdsl's own notes (a seed, a training step's loss) travel with the tensors.
    for (const auto &[key, value] : carried)
      if (llvm::StringRef(key).starts_with("qdsl.") && !metadata.count(key))
        metadata[key] = value;
    bool ok = action == "import" ? rt::importPyTorch(model, loaded, result, error)
                                 : rt::exportPyTorch(model, loaded, result, error);
    if (!ok)
      return reportError("'" + weightsSource + "' does not fit model " +
                  model.getSymName().str() + ":\n" + error);
    if (action == "export")
      metadata["format"] = "pt";
  }
  if (!rt::writeSafetensors(outputFile, result, metadata, error))
    return reportError(error);
  return 0;
}

} // namespace qdsl::tool
