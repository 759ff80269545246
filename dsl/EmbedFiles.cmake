# Writes OUTPUT: a C++ table of the files in FILES (paths relative to ROOT),
# `embeddedFiles` of `EmbeddedFile {path, data, size}`, to include inside an
# anonymous namespace. The standard library (so that an import of
# "std/blocks.qd" works wherever qdsl is run from) and the files of
# generated projects are part of the qdsl binary this way.
# FILES may be separated by "," (a ";" would split the command line).
string(REPLACE "," ";" FILES "${FILES}")
set(body "struct EmbeddedFile {\n  const char *path;\n  const char *data;\n  size_t size;\n};\n")
foreach(file ${FILES})
  file(READ "${ROOT}/${file}" content HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," content "${content}")
  string(MAKE_C_IDENTIFIER "${file}" id)
  string(APPEND body "static const unsigned char ${id}[] = {${content} 0x00};\n")
  list(APPEND entries "  {\"${file}\", reinterpret_cast<const char *>(${id}), sizeof(${id}) - 1},\n")
endforeach()
string(APPEND body "static const EmbeddedFile embeddedFiles[] = {\n")
foreach(entry ${entries})
  string(APPEND body "${entry}")
endforeach()
string(APPEND body "};\n")
file(WRITE "${OUTPUT}.tmp" "${body}")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUTPUT}.tmp" "${OUTPUT}")
