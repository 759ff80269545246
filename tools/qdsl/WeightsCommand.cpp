//===- WeightsCommand.cpp - qdsl weights init|import|export ---------------===//

#include "Options.h"
#include "Session.h"

#include "runtime/reference/PyTorchInterop.h"
#include "runtime/reference/ReferenceExecutor.h"
#include "runtime/shipped/Contract.h"
#include "runtime/shipped/TensorFiles.h"

#include <cmath>

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
  if (randomStd < 0 || (randomStd > 0 && action != "init"))
    return reportError("--random-std takes a positive value and goes with init");
  SelectedModel selected;
  if (int exitCode = loadSelectedModel(selected); exitCode >= 0)
    return exitCode;
  mlir::func::FuncOp model = selected.model;
  // The tensors, and the file's bytes; a conversion also holds the input.
  if (!fitsInMemory(model, {action == "init" ? "qdsl weights init" : "qdsl weights convert",
                               action == "init" ? 8u : 12u, 0, 1}))
    return failed(selected.session->finish(false)) ? 1 : 0;
  std::string error;
  rt::Metadata metadata = {{contract::kModelKey, model.getSymName().str()}};
  rt::TensorMap result;
  if (action == "init") {
    if (randomStd > 0) {
      for (const rt::WeightInfo &w : rt::listWeights(model))
        result[w.name] = rt::initializeTensor(
            w.name, w.shape, rt::InitSpec{rt::InitKind::Normal, randomStd}, seed);
      metadata["qdsl.random_std"] = std::to_string(randomStd);
    } else {
      result = rt::initializeWeights(model, seed);
    }
    metadata[contract::kSeedKey] = std::to_string(seed);
  } else {
    rt::TensorMap loaded;
    rt::Metadata carried;
    if (!rt::readSafetensors(weightsSource, loaded, error, &carried))
      return reportError(error);
    // qdsl's own notes (a seed, a training step's loss) travel with the tensors.
    for (const auto &[key, value] : carried)
      if (llvm::StringRef(key).starts_with(contract::kKeyPrefix) && !metadata.count(key))
        metadata[key] = value;
    bool ok = action == "import" ? rt::importPyTorch(model, loaded, result, error)
                                 : rt::exportPyTorch(model, loaded, result, error);
    if (!ok)
      return reportError(rt::describeMisfit(weightsSource, model.getSymName().str(), error));
    if (action == "export")
      metadata["format"] = "pt";
    // A weight that is not finite would be refused by every later reader:
    // refused here, where the file that holds it is known.
    for (const auto &[name, tensor] : result)
      for (size_t i = 0; i < tensor.data.size(); ++i)
        if (!std::isfinite(tensor.data[i]))
          return reportError("'" + weightsSource + "': weight '" + name + "' holds " +
                             std::to_string(tensor.data[i]) + " at element " +
                             std::to_string(i) + "; weights must be finite");
  }
  if (int status = refuseOverwritingInput(outputFile))
    return status;
  if (!rt::writeSafetensors(outputFile, result, metadata, error))
    return reportError(error);
  return 0;
}

} // namespace qdsl::tool
