//===- PyTorchExport.h - a model as a PyTorch module ------------*- C++ -*-===//
//
// Writes a model (ExportGraph.h) as one Python file that needs nothing but
// PyTorch: an nn.Module whose state_dict has the names and layouts of
// `qdsl weights export`, initialised as the model file's initialisers say
// (same distributions, not the same draws), with a forward made of
// torch.nn.functional calls, and safetensors readers and writers so that
// weights go both ways with `qdsl weights import/export`.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_CODEGEN_EXPORT_PYTORCHEXPORT_H
#define QDSL_CODEGEN_EXPORT_PYTORCHEXPORT_H

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <string>

namespace qdsl::exporter {

/// The Python source of `model`; `source` names the model file in its
/// header. Fails with a message naming the layer that cannot be exported.
bool exportPyTorchModule(mlir::func::FuncOp model, const std::string &source,
                         std::string &python, std::string &error);

} // namespace qdsl::exporter

#endif // QDSL_CODEGEN_EXPORT_PYTORCHEXPORT_H
