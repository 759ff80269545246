//===- CString.h - strings as C++ literals in generated sources -*- C++ -*-===//

#ifndef QDSL_CODEGEN_CSTRING_H
#define QDSL_CODEGEN_CSTRING_H

#include "llvm/ADT/StringRef.h"

#include <string>

namespace qdsl::codegen {

/// `s` as a C++ string literal, quotes and backslashes escaped (also a
/// Python one, as the PyTorch export writes it).
inline std::string cString(llvm::StringRef s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    out += c;
  }
  return out + "\"";
}

} // namespace qdsl::codegen

#endif // QDSL_CODEGEN_CSTRING_H
