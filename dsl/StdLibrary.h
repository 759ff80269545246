//===- StdLibrary.h - the block library shipped inside qdsl -----*- C++ -*-===//

#ifndef QDSL_DSL_STDLIBRARY_H
#define QDSL_DSL_STDLIBRARY_H

#include "llvm/ADT/StringRef.h"

#include <optional>
#include <string>
#include <vector>

namespace qdsl::dsl {

/// The text of a standard library file such as "std/blocks.qd".
std::optional<llvm::StringRef> findStdLibraryFile(llvm::StringRef path);

/// Every standard library path, for suggestions.
std::vector<std::string> stdLibraryFiles();

} // namespace qdsl::dsl

#endif // QDSL_DSL_STDLIBRARY_H
