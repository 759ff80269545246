//===- RunCommand.cpp - qdsl run: the reference executor ------------------===//

#include "Options.h"
#include "Session.h"

#include "runtime/ReferenceExecutor.h"
#include "runtime/TensorFiles.h"

#include "llvm/Support/WithColor.h"

using namespace llvm;

namespace qdsl::tool {

int runReference() {
  auto fail = [](const std::string &message) {
    WithColor::error(errs(), "qdsl") << message << "\n";
    return 1;
  };
  if (npyInput.empty() || outputFile == "-")
    return fail("qdsl run needs --input X.npy and -o Y.npy");
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

  rt::TensorMap weights;
  if (!weightsFile.empty()) {
    if (!rt::readSafetensors(weightsFile, weights, error))
      return fail(error);
    if (!rt::checkWeights(model, weights, error))
      return fail("'" + weightsFile + "' does not fit model " +
                  model.getSymName().str() + ":\n" + error);
  } else {
    weights = rt::initializeWeights(model, seed);
  }
  rt::Tensor input, output;
  if (!rt::readNpy(npyInput, input, error))
    return fail(error);
  // One example without its batch dimension is a batch of one.
  auto inputType = llvm::cast<mlir::RankedTensorType>(model.getArgument(0).getType());
  if (static_cast<int64_t>(input.shape.size()) + 1 == inputType.getRank())
    input.shape.insert(input.shape.begin(), 1);
  if (!rt::runReference(model, weights, input, output, error))
    return fail("'" + std::string(npyInput) + "': " + error);
  if (!rt::writeNpy(outputFile, output, error))
    return fail(error);
  return 0;
}

} // namespace qdsl::tool
