//===- RunCommand.cpp - qdsl run: the reference executor ------------------===//

#include "Options.h"
#include "Session.h"

#include "dialect/QuadraOps.h"
#include "passes/Pipelines.h"
#include "runtime/reference/ReferenceExecutor.h"
#include "runtime/shipped/Contract.h"
#include "runtime/shipped/TensorFiles.h"

#include "llvm/Support/FormatVariadic.h"

using namespace llvm;

namespace qdsl::tool {

namespace {

/// One training step in the reference executor: the gradient of the loss
/// for every weight, written under the weights' names (so `qdsl weights
/// export` turns them into PyTorch's), with the loss in the metadata.
int runTrainingStep(mlir::func::FuncOp model, const rt::TensorMap &weights,
                    const rt::Tensor &input) {
  std::string error;
  if (labelsFile.empty())
    return reportError("qdsl run --train needs --labels L.npy, the class of each example");
  if (!(labelSmoothing >= 0 && labelSmoothing < 1))
    return reportError("--label-smoothing must be in [0, 1), got " +
                       shownNumber(labelSmoothing));
  std::vector<int64_t> classes;
  if (!rt::readNpyLabels(labelsFile, classes, error))
    return reportError(error);
  if (input.shape.empty() || int64_t(classes.size()) != input.shape[0])
    return reportError("'" + std::string(labelsFile) + "' has " + std::to_string(classes.size()) +
                       " labels; expected one label per example: [" +
                       std::to_string(input.shape.empty() ? 0 : input.shape[0]) + "]");
  rt::Tensor labels({int64_t(classes.size())});
  for (size_t i = 0; i < classes.size(); ++i)
    labels.data[i] = static_cast<float>(classes[i]);  // the reference checks each is a class
  // Any policy computes the same gradients; paper recomputes the least.
  mlir::FailureOr<quadra::TrainingStep> training =
      quadra::buildTrainingStep(model, quadra::MemoryPolicy::Paper, labelSmoothing);
  if (failed(training))
    return 1;
  rt::ArrayMap exact;
  for (const auto &[name, tensor] : weights)
    exact[name] = rt::toArray(tensor);
  std::vector<rt::Array> results;
  if (!rt::evaluate(training->step, exact, {rt::toArray(input), rt::toArray(labels)},
                    results, error))
    return reportError("'" + std::string(labelsFile) + "': " + error);
  rt::TensorMap gradients;
  auto names = training->step->getAttrOfType<mlir::ArrayAttr>(quadra::kGradientsAttr);
  for (auto [i, name] : llvm::enumerate(names.getAsValueRange<mlir::StringAttr>()))
    gradients[name.str()] = rt::toTensor(results[2 + i]);
  char loss[32];
  std::snprintf(loss, sizeof loss, "%.17g", results[0].data[0]);
  rt::Metadata metadata = {{contract::kModelKey, model.getSymName().str()},
                           {contract::kLossKey, loss},
                           {"qdsl.label_smoothing", std::to_string(labelSmoothing)}};
  if (int status = refuseOverwritingInput(outputFile))
    return status;
  if (!rt::writeSafetensors(outputFile, gradients, metadata, error))
    return reportError(error);
  llvm::outs() << "loss " << loss << "\n";
  return 0;
}

} // namespace

int runReference() {
  if (npyInput.empty() || outputFile == "-")
    return reportError("qdsl run needs --input X.npy and -o Y.npy");
  std::string error;
  SelectedModel selected;
  if (int exitCode = loadSelectedModel(selected); exitCode >= 0)
    return exitCode;
  mlir::func::FuncOp model = selected.model;
  // The weights in float and in double (the reference computes in double)
  // and the activations in double; the training step doubles both.
  MemoryUse use{trainStep ? "qdsl run --train" : "qdsl run", trainStep ? 40u : 20u,
                trainStep ? 6u : 3u, 1};
  if (!fitsInMemory(model, use))
    return failed(selected.session->finish(false)) ? 1 : 0;

  rt::TensorMap weights;
  if (!rt::modelWeights(model, weightsFile, seed, weights, error))
    return reportError(error);
  rt::Tensor input, output;
  if (!rt::readNpy(npyInput, input, error) || !rt::isFinite(input, npyInput, error))
    return reportError(error);
  // One example without its batch dimension is a batch of one.
  auto inputType = llvm::cast<mlir::RankedTensorType>(model.getArgument(0).getType());
  if (static_cast<int64_t>(input.shape.size()) + 1 == inputType.getRank())
    input.shape.insert(input.shape.begin(), 1);
  if (input.shape.size() > 0 && (use.batch = input.shape[0]) > 1 && !fitsInMemory(model, use))
    return failed(selected.session->finish(false)) ? 1 : 0;
  if (trainStep)
    return runTrainingStep(model, weights, input);
  if (!rt::runReference(model, weights, input, output, error))
    return reportError("'" + std::string(npyInput) + "': " + error);
  if (int status = refuseOverwritingInput(outputFile))
    return status;
  if (!rt::writeNpy(outputFile, output, error))
    return reportError(error);
  return 0;
}

} // namespace qdsl::tool
