//===- WeightsCommand.cpp - qdsl weights init|import|export ---------------===//

#include "Options.h"
#include "Session.h"

#include "runtime/PyTorchInterop.h"
#include "runtime/ReferenceExecutor.h"
#include "runtime/TensorFiles.h"

#include "llvm/Support/WithColor.h"

using namespace llvm;

namespace qdsl::tool {

int runWeights() {
  auto fail = [](const std::string &message) {
    WithColor::error(errs(), "qdsl") << message << "\n";
    return 1;
  };
  std::string action = weightsAction;
  if (action != "init" && action != "import" && action != "export")
    return fail("unknown weights action '" + action +
                "': expected init, import or export");
  if (outputFile == "-")
    return fail("qdsl weights " + action + " needs -o FILE.safetensors");
  if ((action == "init") != weightsSource.empty())
    return fail(action == "init"
                    ? "qdsl weights init takes no weights file"
                    : "qdsl weights " + action + " needs the file to convert");
  if (weightsFormat != "pytorch")
    return fail("unknown --format '" + weightsFormat + "': expected pytorch");
  std::string error;
  std::unique_ptr<MemoryBuffer> source = dsl::readSourceFile(inputFile, 16 << 20, error);
  if (!source)
    return fail(error);
  Session session(std::move(source));
  if (!session.load())
    return failed(session.finish(false)) ? 1 : 0;
  mlir::OwningOpRef<mlir::ModuleOp> module = session.generate();
  mlir::func::FuncOp model = module ? session.selectModel(*module) : nullptr;
  if (!model)
    return failed(session.finish(false)) ? 1 : 0;

  rt::TensorMap result;
  rt::Metadata metadata = {{"qdsl.model", model.getSymName().str()}};
  if (randomStd < 0 || (randomStd > 0 && action != "init"))
    return fail("--random-std takes a positive value and goes with init");
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
    if (!rt::readSafetensors(weightsSource, loaded, error))
      return fail(error);
    bool ok = action == "import" ? rt::importPyTorch(model, loaded, result, error)
                                 : rt::exportPyTorch(model, loaded, result, error);
    if (!ok)
      return fail("'" + weightsSource + "' does not fit model " +
                  model.getSymName().str() + ":\n" + error);
    if (action == "export")
      metadata["format"] = "pt";
  }
  if (!rt::writeSafetensors(outputFile, result, metadata, error))
    return fail(error);
  return 0;
}

} // namespace qdsl::tool
