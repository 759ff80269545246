//===- ProjectFiles.cpp - the files a generated project ships --------------===//

#include "codegen/ProjectParts.h"

#include "codegen/KernelFamilies.h"
#include "runtime/shipped/TensorFiles.h"

#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SHA256.h"

#include <array>

namespace qdsl::codegen {

namespace {
#include "codegen/ProjectFiles.inc"
} // namespace

namespace project {

std::vector<ShippedFile> shippedFiles() {
  std::vector<ShippedFile> files;
  for (const EmbeddedFile &file : embeddedFiles)
    files.push_back({file.path, llvm::StringRef(file.data, file.size)});
  return files;
}

/// Where a repository file goes in a generated project.
std::string projectPath(llvm::StringRef repoPath) {
  if (repoPath.consume_front(kGeneratorFolder))
    return ("generators/" + repoPath).str();
  if (repoPath.consume_front("codegen/project/"))
    return repoPath.str();
  if (repoPath.consume_front("codegen/cuda/"))
    return ("cuda/" + repoPath).str();
  return repoPath.str();
}

/// One generator per file, named after it.
std::string generatorSource(llvm::StringRef generator) {
  return (generator + "_generator.cpp").str();
}

llvm::StringRef embeddedFile(llvm::StringRef repoPath) {
  for (const EmbeddedFile &file : embeddedFiles)
    if (repoPath == file.path)
      return llvm::StringRef(file.data, file.size);
  return {};
}

/// The Halide generator of a call: describeKernel() chose an implementation
/// the target's back end has.
llvm::StringRef halideGenerator(const KernelCall &call) {
  return lookupKernelImplementation(call.implementation)->halideGenerator;
}

/// A generator source and every project header it includes, directly or
/// not ("x.h" next to it, or "runtime/shipped/x.h"): what its object code
/// depends on besides its parameters.
std::vector<std::string> generatorFiles(llvm::StringRef generator) {
  std::vector<std::string> files = {(kGeneratorFolder + generatorSource(generator)).str()};
  for (size_t i = 0; i < files.size(); ++i) {
    llvm::SmallVector<llvm::StringRef> lines;
    embeddedFile(files[i]).split(lines, '\n');
    for (llvm::StringRef line : lines) {
      if (!line.consume_front("#include \""))
        continue;
      llvm::StringRef header = line.take_until([](char c) { return c == '"'; });
      for (std::string candidate : {(kGeneratorFolder + header).str(), header.str()})
        if (!embeddedFile(candidate).empty()) {
          if (!llvm::is_contained(files, candidate))
            files.push_back(candidate);
          break;
        }
    }
  }
  return files;
}

/// The files only a project that trains needs: train.cpp, and the training
/// runtime's sources and headers, as qdsl_runtime.cmake lists them.
std::set<std::string> trainingOnlyFiles() {
  std::set<std::string> files = {"codegen/project/train.cpp", "codegen/project/program_support.h",
                                 "codegen/project/program_data.h"};
  llvm::SmallVector<llvm::StringRef> lines;
  embeddedFile("runtime/shipped/qdsl_runtime.cmake").split(lines, '\n');
  for (llvm::StringRef line : lines)
    if (line.consume_front("set(QDSL_TRAINING_RUNTIME_SOURCES ")) {
      llvm::SmallVector<llvm::StringRef> sources;
      line.take_until([](char c) { return c == ')'; }).split(sources, ' ', -1, false);
      for (llvm::StringRef source : sources) {
        files.insert(("runtime/shipped/" + source).str());
        files.insert(("runtime/shipped/" + source.drop_back(4) + ".h").str());
      }
    }
  return files;
}

std::string hexDigest(llvm::StringRef text) {
  std::array<uint8_t, 32> hash = llvm::SHA256::hash(
      llvm::ArrayRef<uint8_t>(reinterpret_cast<const uint8_t *>(text.data()), text.size()));
  static const char digits[] = "0123456789abcdef";
  std::string hex;
  for (size_t i = 0; i < 8; ++i) {
    hex += digits[hash[i] >> 4];
    hex += digits[hash[i] & 15];
  }
  return hex;
}

/// The compiled function of `call`: named after a hash of everything that
/// determines its object code, so that equal names mean equal code in any
/// project and the kernel cache (qdsl_kernels.cmake) can share it.
std::string kernelFunctionName(const KernelCall &call, const Target &target,
                               llvm::StringRef autoscheduler) {
  std::string key = "qdsl kernel v2\n";
  key += target.halideTarget + "\n" + autoscheduler.str() + "\n" +
         call.configuration() + "\n";
  for (const std::string &file : generatorFiles(halideGenerator(call)))
    key += file + "\n" + embeddedFile(file).str();
  return "qk_" + hexDigest(key);
}

/// Writes `path` unless it already holds `text`: recompiling a project
/// leaves unchanged files alone, so its build redoes only what changed.
bool writeFile(const std::string &path, const std::string &text,
               std::string &error) {
  if (auto existing = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                                  /*RequiresNullTerminator=*/false))
    if ((*existing)->getBuffer() == text)
      return true;
  return rt::writeFileAtomically(path, text, error);
}

} // namespace project

std::string generatorsDigest() {
  std::string all = "qdsl generators v1\n";
  for (const EmbeddedFile &file : embeddedFiles)
    if (llvm::StringRef(file.path).starts_with(project::kGeneratorFolder))
      all += std::string(file.path) + "\n" + std::string(file.data, file.size);
  return project::hexDigest(all);
}

} // namespace qdsl::codegen
