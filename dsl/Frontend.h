//===- Frontend.h - load, parse and check a .qd program ---------*- C++ -*-===//

#ifndef QDSL_DSL_FRONTEND_H
#define QDSL_DSL_FRONTEND_H

#include "dsl/Sema.h"

#include "llvm/Support/MemoryBuffer.h"

namespace qdsl::dsl {

struct FrontendOptions {
  /// Searched for imports after the importing file's own directory.
  std::vector<std::string> includeDirs;
  /// Files larger than this are refused (they are not models).
  size_t maxFileBytes = 16 << 20;
  /// Whether imports may read files; without, only the standard library
  /// can be imported (the fuzzer).
  bool allowFileImports = true;
};

/// Reads a source file ("-" for standard input), refusing directories and
/// anything longer than `maxBytes` (such as /dev/zero) without reading it
/// all. On failure, `error` says why.
std::unique_ptr<llvm::MemoryBuffer> readSourceFile(llvm::StringRef path,
                                                   size_t maxBytes,
                                                   std::string &error);

/// Reads `path` ("-" for standard input) and every file it imports into
/// `program`, parses them and runs semantic checks. Errors go to `diags`;
/// false when there was any.
bool loadProgram(llvm::StringRef path, const FrontendOptions &options,
                 Diagnostics &diags, Program &program);

/// The same for a buffer already in memory, named by its identifier.
bool loadProgramFromBuffer(std::unique_ptr<llvm::MemoryBuffer> buffer,
                           const FrontendOptions &options, Diagnostics &diags,
                           Program &program);

/// The same for a buffer already added to the diagnostics' source manager.
bool loadProgramFromSourceMgr(unsigned bufferId, const FrontendOptions &options,
                              Diagnostics &diags, Program &program);

/// Parses one buffer already in the source manager, without imports or
/// checks (the fuzzer and the AST tests use it).
std::unique_ptr<SourceFile> parseBuffer(unsigned bufferId, Diagnostics &diags,
                                        bool &ok);

} // namespace qdsl::dsl

#endif // QDSL_DSL_FRONTEND_H
