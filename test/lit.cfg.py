# lit configuration of the qdsl regression tests.
import os

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "qdsl"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".qd", ".test"]
config.excludes = ["Inputs", "fuzz", "unit", "CMakeLists.txt", "lit.cfg.py",
                   "lit.site.cfg.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.qdsl_obj_root, "test")

llvm_config.use_default_substitutions()
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)

# Every qdsl-opt run also proves that what it prints parses back to the same
# module.
tools = [
    ToolSubst("qdsl-opt", extra_args=["--verify-roundtrip"], unresolved="fatal"),
    ToolSubst("qdsl", unresolved="fatal"),
]
llvm_config.add_tool_substitutions(tools, [config.qdsl_tools_dir])
llvm_config.add_tool_substitutions(["FileCheck", "not", "count"],
                                   [config.llvm_tools_dir])

config.substitutions.append(("%qdsl_src", config.qdsl_src_root))
config.substitutions.append(("%examples", os.path.join(config.qdsl_src_root, "examples")))
# The Python with NumPy (Debian's), whatever Python runs lit.
config.substitutions.append(("%numpy_python", config.python_executable))
# The C++ compiler that built qdsl, for tests that compile what it emits.
config.substitutions.append(("%cxx", config.cxx_compiler))
