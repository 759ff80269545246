//===- StdLibrary.cpp - the block library shipped inside qdsl -------------===//

#include "dsl/StdLibrary.h"

namespace qdsl::dsl {

namespace {
#include "dsl/StdLibraryFiles.inc"
} // namespace

std::optional<llvm::StringRef> findStdLibraryFile(llvm::StringRef path) {
  for (const EmbeddedFile &file : embeddedFiles)
    if (path == file.path)
      return llvm::StringRef(file.data, file.size);
  return std::nullopt;
}

std::vector<std::string> stdLibraryFiles() {
  std::vector<std::string> paths;
  for (const EmbeddedFile &file : embeddedFiles)
    paths.push_back(file.path);
  return paths;
}

} // namespace qdsl::dsl
