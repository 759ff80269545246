//===- ExportCommand.cpp - qdsl export --format onnx|pytorch --------------===//

#include "Options.h"
#include "Session.h"

#include "codegen/export/OnnxExport.h"
#include "codegen/export/PyTorchExport.h"
#include "runtime/reference/PyTorchInterop.h"
#include "runtime/reference/ReferenceExecutor.h"
#include "runtime/shipped/TensorFiles.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

using namespace llvm;

namespace qdsl::tool {

int runExport() {
  const std::string format = exportFormat;
  if (format != "onnx" && format != "pytorch")
    return reportError(format.empty() ? std::string("qdsl export needs --format onnx or "
                                                    "--format pytorch")
                                      : "unknown --format '" + format +
                                            "': expected onnx or pytorch");
  if (format == "pytorch")
    for (const cl::Option *flag :
         std::initializer_list<const cl::Option *>{&weightsFile, &seed, &externalData})
      if (flag->getNumOccurrences())
        return reportError("--" + flag->ArgStr +
                           " goes with --format onnx (a PyTorch module loads its weights "
                           "from `qdsl weights export`)");
  if (format == "onnx" && outputFile == "-")
    return reportError("qdsl export --format onnx writes a binary file: give -o FILE.onnx "
                       "(not '-')");
  if (format == "onnx" && weightsFile.getNumOccurrences() && seed.getNumOccurrences())
    return reportError("--seed draws initial weights; it does not go with --weights");
  SelectedModel selected;
  if (int exitCode = loadSelectedModel(selected); exitCode >= 0)
    return exitCode;
  mlir::func::FuncOp model = selected.model;
  std::string error;
  if (format == "pytorch") {
    std::string python;
    if (!exporter::exportPyTorchModule(model, sys::path::filename(inputFile).str(), python,
                                       error))
      return reportError("cannot export " + model.getSymName().str() + ": " + error);
    return writeOutputFile(outputFile, python);
  }
  // The weights, the state dict and the file's bytes.
  if (!fitsInMemory(model, {"qdsl export", 16u, 0, 1}))
    return failed(selected.session->finish(false)) ? 1 : 0;
  // Initial weights from --seed without --weights; PyTorch's names and layouts.
  rt::TensorMap weights, state;
  if (!rt::modelWeights(model, weightsFile, seed, weights, error) ||
      !rt::exportPyTorch(model, weights, state, error))
    return reportError(error);
  const std::string dataPath = outputFile + ".data";
  exporter::OnnxFiles files;
  if (!exporter::exportOnnx(model, state, sys::path::filename(dataPath).str(),
                            externalData ? 0 : exporter::kOnnxExternalDataAbove, files, error))
    return reportError("cannot export " + model.getSymName().str() + ": " + error);
  if (files.dataFileName.empty())
    return writeOutputFile(outputFile, files.model);
  // Two files that must stay a pair: the weights under a temporary name,
  // then the model, then the weights renamed. A failure before the last
  // step leaves an earlier pair as it was.
  if (sys::fs::exists(outputFile) && !sys::fs::is_regular_file(outputFile))
    return reportError("-o '" + outputFile + "' is not a regular file: the weights go to a "
                       "file next to the model (" + dataPath + "), so the model needs one too");
  if (int status = refuseOverwritingInput(dataPath))
    return status;
  const std::string partial = dataPath + ".partial";
  if (!rt::writeFileAtomically(partial, files.data, error))
    return reportError(error);
  if (int status = writeOutputFile(outputFile, files.model)) {
    sys::fs::remove(partial);
    return status;
  }
  if (std::error_code ec = sys::fs::rename(partial, dataPath))
    return reportError("cannot rename '" + partial + "' to '" + dataPath + "': " +
                       ec.message() + " (the model " + outputFile + " needs its weights there)");
  return 0;
}

} // namespace qdsl::tool
