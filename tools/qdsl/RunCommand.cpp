//===- RunCommand.cpp - qdsl run: the reference executor ------------------===//

#include "Options.h"
#include "Session.h"

#include "runtime/ReferenceExecutor.h"
#include "runtime/TensorFiles.h"

using namespace llvm;

namespace qdsl::tool {

int runReference() {
  if (npyInput.empty() || outputFile == "-")
    return reportError("qdsl run needs --input X.npy and -o Y.npy");
  SelectedModel selected;
  int exitCode = 0;
  if (!loadSelectedModel(selected, exitCode))
    return exitCode;
  mlir::func::FuncOp model = selected.model;
  std::string error;

  rt::TensorMap weights;
  if (!weightsFile.empty()) {
    if (!rt::readSafetensors(weightsFile, weights, error))
      return reportError(error);
    if (!rt::checkWeights(model, weights, error))
      return reportError("'" + weightsFile + "' does not fit model " +
                  model.getSymName().str() + ":\n" + error);
  } else {
    weights = rt::initializeWeights(model, seed);
  }
  rt::Tensor input, output;
  if (!rt::readNpy(npyInput, input, error))
    return reportError(error);
  // One example without its batch dimension is a batch of one.
  auto inputType = llvm::cast<mlir::RankedTensorType>(model.getArgument(0).getType());
  if (static_cast<int64_t>(input.shape.size()) + 1 == inputType.getRank())
    input.shape.insert(input.shape.begin(), 1);
  if (!rt::runReference(model, weights, input, output, error))
    return reportError("'" + std::string(npyInput) + "': " + error);
  if (!rt::writeNpy(outputFile, output, error))
    return reportError(error);
  return 0;
}

} // namespace qdsl::tool
