//===- KernelFamiliesTest.cpp - the family table covers every kernel -----===//
//
// Every family a target's fusion rules name, and every op that can become
// a kernel of its own, has an entry in codegen/KernelFamilies.cpp with a
// Halide generator, and the cuda target's families a CUDA kernel; a kernel is
// described by its family alone, and one of a family a back end does not
// implement is refused with a message that names it.

#include "codegen/KernelCalls.h"
#include "codegen/KernelFamilies.h"
#include "codegen/Targets.h"
#include "dialect/QuadraDialect.h"
#include "dialect/QuadraOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>

using namespace qdsl;

namespace {

TEST(KernelFamilies, EveryFusionRuleNamesAFamilyWithAGenerator) {
  for (const codegen::Target &target : codegen::allTargets())
    for (const codegen::FusionRule &rule : target.rules) {
      SCOPED_TRACE(target.name + ": " + rule.family);
      const codegen::KernelFamily *family = codegen::lookupKernelFamily(rule.family);
      ASSERT_NE(family, nullptr);
      EXPECT_NE(family->describe, nullptr);
      EXPECT_TRUE(codegen::implementsFamily(codegen::Backend::Halide, *family));
      if (target.backend == codegen::Backend::Cuda)
        EXPECT_TRUE(codegen::implementsFamily(codegen::Backend::Cuda, *family));
    }
}

// Every implementation a family names is in the implementation table, once,
// with its Halide generator's source among the generators and both CUDA
// structs named.
TEST(KernelFamilies, EveryImplementationIsInTheTable) {
  std::set<std::string> names;
  for (const codegen::KernelImplementation &implementation :
       codegen::allKernelImplementations()) {
    SCOPED_TRACE(implementation.name);
    EXPECT_TRUE(names.insert(implementation.name).second);
    std::ifstream generator(std::string(QDSL_SOURCE_DIR) + "/codegen/halide/" +
                            implementation.halideGenerator + "_generator.cpp");
    EXPECT_TRUE(generator.good());
    EXPECT_EQ(implementation.cudaParams.empty(), implementation.cudaTensors.empty());
  }
  for (const codegen::KernelFamily &family : codegen::allKernelFamilies())
    for (const std::string &name : family.implementations)
      EXPECT_NE(codegen::lookupKernelImplementation(name), nullptr)
          << family.name << " names " << name;
}

TEST(KernelFamilies, TheCudaTargetLeavesTheLayerNormBeforeAMatmulAlone) {
  const codegen::Target *cuda = codegen::lookupTarget("cuda");
  ASSERT_NE(cuda, nullptr);
  EXPECT_EQ(cuda->backend, codegen::Backend::Cuda);
  for (const codegen::FusionRule &rule : cuda->rules)
    EXPECT_FALSE(rule.chain.size() > 1 && rule.chain[0] == "quadra.layernorm" &&
                 rule.chain[1] == "quadra.linear")
        << rule.family;
}

// A target whose CPU features this machine lacks is named by the first one
// missing; the x86 targets' vector widths match their Halide targets.
TEST(KernelFamilies, TargetsNameTheCpuFeaturesTheyNeed) {
  const codegen::Target *avx2 = codegen::lookupTarget("x86-64-avx2");
  const codegen::Target *avx512 = codegen::lookupTarget("x86-64-avx512");
  ASSERT_TRUE(avx2 && avx512);
  EXPECT_EQ(avx2->vectorFloats, 8);
  EXPECT_EQ(avx512->vectorFloats, 16);
  EXPECT_NE(avx512->halideTarget.find("avx512"), std::string::npos);
  EXPECT_EQ(avx512->rules.size(), avx2->rules.size());
  codegen::Target imaginary = *avx2;
  imaginary.cpuFeatures = {"sse2", "no-such-feature", "avx2"};
  EXPECT_EQ(codegen::missingCpuFeature(imaginary), "no-such-feature");
  imaginary.cpuFeatures.clear();
  EXPECT_EQ(codegen::missingCpuFeature(imaginary), "");
  // `host` is the widest of the two this CPU runs.
  const codegen::Target *host = codegen::lookupTarget(codegen::kHostTarget);
  ASSERT_NE(host, nullptr);
  EXPECT_TRUE(host == avx2 || host == avx512);
  EXPECT_EQ(codegen::missingCpuFeature(*host), "");
  EXPECT_EQ(host == avx512, codegen::missingCpuFeature(*avx512).empty());
  // Cross and GPU targets check nothing here.
  EXPECT_TRUE(codegen::lookupTarget("arm64-a76")->cpuFeatures.empty());
  EXPECT_TRUE(codegen::lookupTarget("cuda")->cpuFeatures.empty());
}

TEST(KernelFamilies, EveryOpThatCanStandAloneHasAFamily) {
  mlir::MLIRContext context;
  context.loadDialect<quadra::QuadraDialect>();
  // Ops that are never a kernel: weights, search choices, kernels
  // themselves, their terminator, and identity (folded away).
  const std::set<std::string> neverKernels = {"quadra.weight", "quadra.choice", "quadra.kernel",
                                              "quadra.yield", "quadra.identity"};
  size_t ops = 0;
  for (mlir::RegisteredOperationName op : context.getRegisteredOperations()) {
    if (op.getDialectNamespace() != "quadra" || neverKernels.count(op.getStringRef().str()))
      continue;
    ++ops;
    std::string family = op.getStringRef().drop_front(std::string("quadra.").size()).str();
    SCOPED_TRACE(family);
    EXPECT_NE(codegen::lookupKernelFamily(family), nullptr);
  }
  EXPECT_GT(ops, 20u);
}

TEST(KernelFamilies, NamesAreUnique) {
  std::set<std::string> names;
  for (const codegen::KernelFamily &family : codegen::allKernelFamilies())
    EXPECT_TRUE(names.insert(family.name).second) << family.name;
}

// docs/ARCHITECTURE.md shows the table row for row: `| family | computes |
// generators |`.
TEST(KernelFamilies, TheArchitectureDocumentShowsTheTable) {
  std::ifstream in(std::string(QDSL_SOURCE_DIR) + "/docs/ARCHITECTURE.md");
  ASSERT_TRUE(in) << "cannot read docs/ARCHITECTURE.md";
  std::set<std::string> lines;
  size_t rows = 0;
  for (std::string line; std::getline(in, line);)
    if (lines.insert(line).second && line.rfind("| `", 0) == 0)
      ++rows;
  for (const codegen::KernelFamily &family : codegen::allKernelFamilies()) {
    // The Halide generators, or the CUDA functions, the family may call.
    auto column = [&](codegen::Backend backend) {
      if (!codegen::implementsFamily(backend, family))
        return std::string("—");
      std::string text;
      for (const std::string &name : family.implementations) {
        const codegen::KernelImplementation *implementation =
            codegen::lookupKernelImplementation(name);
        text += (text.empty() ? "`" : ", `") +
                (backend == codegen::Backend::Cuda ? implementation->name
                                                   : implementation->halideGenerator) +
                "`";
      }
      return text;
    };
    std::string row = "| `" + family.name + "` | " + family.computes + " | " +
                      column(codegen::Backend::Halide) + " | " +
                      column(codegen::Backend::Cuda) + " |";
    EXPECT_TRUE(lines.count(row)) << "docs/ARCHITECTURE.md lacks the row\n" << row;
  }
  EXPECT_GE(rows, codegen::allKernelFamilies().size());
}

/// Parses `source` and describes its only kernel for `target`; `error` gets
/// the diagnostic.
mlir::FailureOr<codegen::KernelCall> describeOnlyKernel(mlir::MLIRContext &context,
                                                        const char *source, std::string &error,
                                                        const char *target = "x86-64-avx2") {
  mlir::ScopedDiagnosticHandler handler(&context, [&](mlir::Diagnostic &d) {
    error += d.str();
    return mlir::success();
  });
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::parseSourceString<mlir::ModuleOp>(source, &context);
  if (!module)
    return mlir::failure();
  quadra::KernelOp kernel;
  module->walk([&](quadra::KernelOp k) { kernel = k; });
  return codegen::describeKernel(kernel, *codegen::lookupTarget(target));
}

const char *const kGeluKernel = R"(
func.func @M(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {
  %0 = quadra.kernel "layer/FAMILY" family "FAMILY" (%x) : (tensor<?x4xf32>) -> tensor<?x4xf32> {
  ^bb0(%a: tensor<?x4xf32>):
    %1 = quadra.gelu %a : tensor<?x4xf32>
    quadra.yield %1 : tensor<?x4xf32>
  }
  return %0 : tensor<?x4xf32>
}
)";

std::string withFamily(std::string source, const std::string &family) {
  for (size_t at; (at = source.find("FAMILY")) != std::string::npos;)
    source.replace(at, 6, family);
  return source;
}

/// Describes kGeluKernel named as a kernel of `family`; `error` gets the
/// diagnostic.
mlir::FailureOr<codegen::KernelCall> describeGeluAs(const std::string &family,
                                                    std::string &error,
                                                    const char *target = "x86-64-avx2") {
  mlir::MLIRContext context;
  context.loadDialect<quadra::QuadraDialect, mlir::func::FuncDialect>();
  return describeOnlyKernel(context, withFamily(kGeluKernel, family).c_str(), error, target);
}

TEST(KernelFamilies, TheFamilySelectsTheGenerator) {
  std::string error;
  auto call = describeGeluAs("gelu", error);
  ASSERT_TRUE(mlir::succeeded(call)) << error;
  EXPECT_EQ(call->implementation, "elementwise");
  EXPECT_EQ(call->configuration(), "elementwise op=gelu channels=4");
}

TEST(KernelFamilies, AnUnknownFamilyIsRefusedByName) {
  std::string error;
  EXPECT_TRUE(mlir::failed(describeGeluAs("gelu_twice", error)));
  EXPECT_NE(error.find("no Halide generator implements kernel 'layer/gelu_twice' of family "
                       "'gelu_twice'"),
            std::string::npos)
      << error;
  // A gelu is not what the pointwise generator's describer reads.
  error.clear();
  EXPECT_TRUE(mlir::failed(describeGeluAs("linear", error)));
  EXPECT_NE(error.find("of family 'linear' does not hold the ops its Halide generator "
                       "implements (ops: quadra.gelu)"),
            std::string::npos)
      << error;
}

TEST(KernelFamilies, TheCudaColumnIsReadForTheCudaTarget) {
  std::string error;
  auto call = describeGeluAs("gelu", error, "cuda");
  ASSERT_TRUE(mlir::succeeded(call)) << error;
  EXPECT_EQ(call->implementation, "elementwise");
  error.clear();
  EXPECT_TRUE(mlir::failed(describeGeluAs("gelu_twice", error, "cuda")));
  EXPECT_NE(error.find("no CUDA kernel implements kernel 'layer/gelu_twice' of family "
                       "'gelu_twice'"),
            std::string::npos)
      << error;
  error.clear();
  EXPECT_TRUE(mlir::failed(describeGeluAs("gelu_grad", error, "cuda")));
  EXPECT_NE(error.find("of family 'gelu_grad' does not hold the ops its CUDA kernel "
                       "implements (ops: quadra.gelu)"),
            std::string::npos)
      << error;
}

} // namespace
