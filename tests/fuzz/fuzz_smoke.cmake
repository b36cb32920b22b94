# Bounded libFuzzer smoke run of the decoding path (ctest: Fuzz.DecodeSmoke).
#   cmake -DFUZZ=<fuzz_decode> -DSHARED=<../shared> -DWORK=<scratch dir> [-DRUNS=N] -P fuzz_smoke.cmake
# Seeds: the small generated files in seeds/ (FLAC, Ogg Vorbis, Ogg Opus, MP3, float WAV, 24-bit AIFF) and
# pieces of the real recordings in SHARED/realaudio. A fixed seed and a fixed number of inputs keep it
# deterministic and well under a minute on 2 cores; a time cap bounds it on a loaded machine.
# Fails if the fuzzer reports a crash, a sanitizer error, a leak in synclap's code, a timeout or an
# allocation over the memory limit.
foreach(v FUZZ SHARED WORK)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "fuzz_smoke.cmake: -D${v}=... is required")
  endif()
endforeach()
if(NOT DEFINED RUNS)
  set(RUNS 6000)
endif()
if(NOT EXISTS "${FUZZ}")
  message(FATAL_ERROR "fuzzer binary not found: ${FUZZ}")
endif()

set(CORPUS "${WORK}/corpus")
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${CORPUS}" "${WORK}/artifacts")

# Seed corpus.
file(GLOB _seeds "${CMAKE_CURRENT_LIST_DIR}/seeds/*")
file(COPY ${_seeds} DESTINATION "${CORPUS}")
set(_real "${SHARED}/realaudio")
# Real recordings. libFuzzer cuts corpus files at -max_len (64 KiB), so the 100 KiB WAV arrives truncated.
foreach(f sms-tools/soprano-E4.wav
          librosa-data/456440__inspectorj__bird-whistling-robin-single-13.ogg
          librosa-data/sorohanro_-_solo-trumpet-06.ogg)
  if(EXISTS "${_real}/${f}")
    file(COPY "${_real}/${f}" DESTINATION "${CORPUS}")
  endif()
endforeach()

set(ENV{LSAN_OPTIONS} "suppressions=${CMAKE_CURRENT_LIST_DIR}/lsan.supp:print_suppressions=0")
set(ENV{ASAN_OPTIONS} "detect_leaks=1:allocator_may_return_null=0")
execute_process(
  COMMAND "${FUZZ}" -seed=1 -runs=${RUNS} -max_total_time=100 -rss_limit_mb=2048 -malloc_limit_mb=2048
          -max_len=65536 -timeout=20 -print_final_stats=1 "-artifact_prefix=${WORK}/artifacts/" "${CORPUS}"
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE out
  ERROR_VARIABLE out
  TIMEOUT 280)

# Keep the log for whoever looks next; show only the informative lines here.
file(WRITE "${WORK}/fuzz.log" "${out}")
string(REGEX MATCHALL "(Done [0-9]+ runs[^\n]*|stat::number_of_executed_units: [0-9]+|stat::peak_rss_mb:[ ]*[0-9]+)" _summary "${out}")
foreach(line IN LISTS _summary)
  message(STATUS "${line}")
endforeach()
file(GLOB _artifacts "${WORK}/artifacts/*")
if(NOT rc EQUAL 0 OR _artifacts)
  string(LENGTH "${out}" _len)
  set(_from 0)
  if(_len GREATER 6000)
    math(EXPR _from "${_len} - 6000")
  endif()
  string(SUBSTRING "${out}" ${_from} -1 _tail)
  message(FATAL_ERROR "decoder fuzzer failed (exit ${rc}); artifacts: ${_artifacts}\n... ${_tail}\n(full log: ${WORK}/fuzz.log)")
endif()
message(STATUS "decoder fuzz smoke run passed")
