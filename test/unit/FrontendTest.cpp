//===- FrontendTest.cpp - lexer, parser and checks of the .qd language ----===//

#include "dsl/Frontend.h"
#include "dsl/Lexer.h"
#include "dsl/MLIRGen.h"
#include "dsl/Primitives.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/SourceMgr.h"

#include <gtest/gtest.h>

#include <map>

using namespace qdsl::dsl;

namespace {

/// Loads `text` as a program; returns every diagnostic printed.
struct Loaded {
  llvm::SourceMgr sourceMgr;
  std::string messages;
  llvm::raw_string_ostream os{messages};
  Diagnostics diags{sourceMgr, 30, os};
  Program program;
  bool ok = false;

  /// Whether some diagnostic contains `text`.
  bool reports(llvm::StringRef text) const {
    return llvm::StringRef(messages).contains(text);
  }

  explicit Loaded(llvm::StringRef text) {
    FrontendOptions options;
    options.allowFileImports = false;
    ok = loadProgramFromBuffer(llvm::MemoryBuffer::getMemBufferCopy(text, "t.qd"),
                               options, diags, program);
  }
};

std::string print(mlir::ModuleOp module) {
  std::string text;
  llvm::raw_string_ostream os(text);
  module.print(os);
  return text;
}

std::vector<TokenKind> kinds(llvm::StringRef text) {
  llvm::SourceMgr sourceMgr;
  std::string sink;
  llvm::raw_string_ostream os(sink);
  Diagnostics diags(sourceMgr, 30, os);
  sourceMgr.AddNewSourceBuffer(llvm::MemoryBuffer::getMemBuffer(text, "t.qd"),
                               llvm::SMLoc());
  Lexer lexer(text, diags);
  std::vector<TokenKind> result;
  for (Token t = lexer.next(); !t.is(TokenKind::Eof); t = lexer.next())
    result.push_back(t.kind);
  return result;
}

TEST(Lexer, SplitsNumbersNamesAndPunctuation) {
  using K = TokenKind;
  EXPECT_EQ(kinds("let c = x.channels * 4 // comment\n"),
            (std::vector<K>{K::KwLet, K::Identifier, K::Equal, K::Identifier,
                            K::Dot, K::Identifier, K::Star, K::Integer}));
  EXPECT_EQ(kinds("1e-6 0.02 3 <= 300ms"),
            (std::vector<K>{K::Float, K::Float, K::Integer, K::LessEqual,
                            K::Integer, K::Identifier}));
  EXPECT_EQ(kinds("/* a\n block */ model"), (std::vector<K>{K::KwModel}));
}

TEST(Lexer, ReportsBadCharactersAndKeepsGoing) {
  using K = TokenKind;
  EXPECT_EQ(kinds("a $ b"),
            (std::vector<K>{K::Identifier, K::Error, K::Identifier}));
  EXPECT_EQ(kinds("3x"), (std::vector<K>{K::Error}));
}

TEST(Parser, PrecedenceAndAssociativity) {
  Loaded l("block b(x: tensor, c: int = 1 + 2 * 3 - 4 / 2 % 3) { return x }");
  ASSERT_TRUE(l.ok) << l.messages;
  const Param &c = l.program.mainFile().blocks[0]->params[1];
  EXPECT_EQ(printExpr(*c.defaultValue), "((1 + (2 * 3)) - ((4 / 2) % 3))");
}

TEST(Parser, ReportsEveryIndependentSyntaxError) {
  Loaded l("block a(x: tensor) { let = 3 return x }\n"
           "block b(x tensor) { return x }\n"
           "model m { input f32[2] layer relu x }\n");
  EXPECT_FALSE(l.ok);
  EXPECT_TRUE(l.reports("t.qd:1:26: error: expected a name after 'let'"))
      << l.messages;
  EXPECT_TRUE(l.reports("t.qd:2:11: error: expected ':' and a type"))
      << l.messages;
  EXPECT_TRUE(l.reports("t.qd:3:37: error: expected an expression"))
      << l.messages;
  EXPECT_EQ(l.diags.errorCount(), 3u) << l.messages;
}

TEST(Parser, StopsAtTheErrorLimit) {
  std::string text;
  for (int i = 0; i < 100; ++i)
    text += "block\n";
  Loaded l(text);
  EXPECT_FALSE(l.ok);
  EXPECT_TRUE(l.reports("too many errors (30)"));
}

TEST(Parser, RefusesUnboundedNesting) {
  std::string deep(10000, '(');
  Loaded l("block b(x: tensor, c: int = " + deep + "1) { return x }");
  EXPECT_FALSE(l.ok);
  EXPECT_TRUE(l.reports("nested too deeply"));
}

TEST(Sema, SuggestsNearbyNames) {
  EXPECT_EQ(closestMatch("qdwconf", {"qdwconv", "dwconv", "conv2d"}), "qdwconv");
  EXPECT_EQ(closestMatch("LayerNorm", {"layernorm", "gelu"}), "layernorm");
  EXPECT_EQ(closestMatch("zzzzzz", {"layernorm", "gelu"}), "");
}

TEST(Sema, FindsRecursionThroughSeveralBlocks) {
  Loaded l("block a(x: tensor) { return b(x) }\n"
           "block b(x: tensor) { return c(x) }\n"
           "block c(x: tensor) { return a(x) }\n");
  EXPECT_FALSE(l.ok);
  EXPECT_TRUE(l.reports("(a -> b -> c -> a); blocks cannot be recursive"))
      << l.messages;
}

TEST(Sema, ChecksArgumentTypes) {
  Loaded l("block a(x: tensor) { return qdwconv(x, k = 1.5) }\n");
  EXPECT_FALSE(l.ok);
  EXPECT_TRUE(l.reports("argument 'k' of 'qdwconv' must be int, got float"))
      << l.messages;
}

TEST(MLIRGen, InstantiatesStagesWithTheirNames) {
  Loaded l("import \"std/blocks.qd\"\n"
           "model m(c = 8) { input f32[16, 16, 3]\n"
           "  stem patchify(out = c)\n"
           "  stage quadra(k = 3) x 2 at c\n"
           "  head classifier(5) }\n");
  ASSERT_TRUE(l.ok) << l.messages;
  mlir::MLIRContext context;
  std::string errors;
  context.getDiagEngine().registerHandler([&](mlir::Diagnostic &d) {
    errors += d.str() + "\n";
    return mlir::success();
  });
  auto module = generateMLIR(context, l.program, l.sourceMgr, {});
  ASSERT_TRUE(module) << errors;
  std::string text = print(*module);
  EXPECT_NE(text.find("\"stages.0.1.QuadraConv.wa\""), std::string::npos);
  EXPECT_NE(text.find("\"head.fc.weight\""), std::string::npos);
  EXPECT_EQ(text.find("stages.0.2"), std::string::npos);
  EXPECT_NE(text.find("-> tensor<?x5xf32>"), std::string::npos);
}

TEST(MLIRGen, OverridesModelParameters) {
  Loaded l("model m(width = 4) { input f32[3] layer linear(out = width) }");
  ASSERT_TRUE(l.ok) << l.messages;
  mlir::MLIRContext context;
  MLIRGenOptions options;
  options.overrides = {{"width", "7"}};
  auto module = generateMLIR(context, l.program, l.sourceMgr, options);
  ASSERT_TRUE(module);
  std::string text = print(*module);
  EXPECT_NE(text.find("tensor<3x7xf32>"), std::string::npos) << text;
}

// The one table of the built-in layers: every default is typed like its
// parameter, and is what MLIRGen uses when a call leaves it out.
TEST(Primitives, DefaultsAreTypedLikeTheirParameters) {
  for (const Primitive &primitive : allPrimitives())
    for (const PrimitiveParam &param : primitive.params) {
      SCOPED_TRACE(std::string(primitive.name) + "." + param.name);
      using K = PrimitiveDefault::Kind;
      switch (param.defaultValue.kind) {
      case K::Required:
        break;
      case K::Int:
      case K::SamePadding:
        EXPECT_EQ(param.type, ValueType::Int);
        EXPECT_LE(param.min, param.max);
        break;
      case K::Float:
        EXPECT_EQ(param.type, ValueType::Float);
        break;
      case K::Bool:
        EXPECT_EQ(param.type, ValueType::Bool);
        break;
      }
    }
  const Primitive *conv = lookupPrimitive("conv2d");
  ASSERT_NE(conv, nullptr);
  std::map<std::string, std::string> written;
  for (const PrimitiveParam &param : conv->params)
    written[param.name] = param.defaultValue.text();
  EXPECT_EQ(written["k"], "");
  EXPECT_EQ(written["stride"], "1");
  EXPECT_EQ(written["padding"], "(k - 1) / 2");
  EXPECT_EQ(written["bias"], "true");
  EXPECT_EQ(written["std"], "0.02");
}

TEST(MLIRGen, LeftOutArgumentsTakeTheTablesDefaults) {
  const char *source = R"(
model M {
  input f32[8, 8, 4]
  layer conv2d(out = 6, k = 5)
  layer layernorm()
  layer layerscale()
  head  linear(3)
}
)";
  llvm::SourceMgr sourceMgr;
  Diagnostics diags(sourceMgr);
  FrontendOptions options;
  options.allowFileImports = false;
  Program program;
  ASSERT_TRUE(loadProgramFromBuffer(llvm::MemoryBuffer::getMemBufferCopy(source, "m.qd"),
                                    options, diags, program));
  mlir::MLIRContext context;
  mlir::OwningOpRef<mlir::ModuleOp> module = generateMLIR(context, program, sourceMgr, {});
  ASSERT_TRUE(module);
  std::string text;
  llvm::raw_string_ostream os(text);
  module->print(os);
  // stride 1, padding (5 - 1) / 2 = 2, a bias, std 0.02; eps and init 1e-6.
  EXPECT_NE(text.find("groups 1 : (tensor<?x8x8x4xf32>"), std::string::npos) << text;
  EXPECT_NE(text.find("stride [1, 1] pad [2, 2]"), std::string::npos) << text;
  EXPECT_NE(text.find("trunc_normal(0.02)"), std::string::npos) << text;
  EXPECT_NE(text.find("layers.0.bias\" zeros"), std::string::npos) << text;
  EXPECT_NE(text.find("eps 1.0e-06"), std::string::npos) << text;
  EXPECT_NE(text.find("constant(1.0e-06)"), std::string::npos) << text;
}

} // namespace
