# Runs the front-end fuzzer for SECONDS from the seed .qd files in SEEDS, in a
# scratch corpus under WORKDIR; fails on any crash, leak, timeout or
# out-of-memory input (left in WORKDIR for reproduction).
file(REMOVE_RECURSE ${WORKDIR})
file(MAKE_DIRECTORY ${WORKDIR}/corpus)
foreach(dir ${SEEDS})
  file(GLOB_RECURSE seeds ${dir}/*)
  foreach(seed ${seeds})
    file(RELATIVE_PATH name ${dir} ${seed})
    string(MAKE_C_IDENTIFIER "${name}" name)
    file(COPY_FILE ${seed} ${WORKDIR}/corpus/${name})
  endforeach()
endforeach()
execute_process(
  COMMAND ${FUZZER} -max_total_time=${SECONDS} -timeout=20 -rss_limit_mb=3072
          -max_len=8192 -dict=${DICT} -artifact_prefix=${WORKDIR}/
          -print_final_stats=1 ${WORKDIR}/corpus
  RESULT_VARIABLE result
  OUTPUT_VARIABLE output ERROR_VARIABLE output)
string(LENGTH "${output}" length)
if(length GREATER 6000)
  math(EXPR start "${length} - 6000")
  string(SUBSTRING "${output}" ${start} 6000 output)
endif()
message("${output}")
if(NOT result EQUAL 0)
  message(FATAL_ERROR "the fuzzer found a failing input (exit ${result}); "
                      "see the artifacts in ${WORKDIR}")
endif()
