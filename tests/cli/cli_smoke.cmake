# End-to-end checks of the synclap binary: --version, --help, one-line errors with a non-zero exit.
# Run by ctest as: cmake -DSYNCLAP=... -DSHARED=... -DWORK=... -P cli_smoke.cmake
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")

function(expect_run name expected_rc must_match)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 120)
  if(NOT "${rc}" STREQUAL "${expected_rc}")
    message(FATAL_ERROR "${name}: exit code ${rc}, expected ${expected_rc}\nstdout: ${out}\nstderr: ${err}")
  endif()
  if(NOT "${out}${err}" MATCHES "${must_match}")
    message(FATAL_ERROR "${name}: output does not match '${must_match}'\nstdout: ${out}\nstderr: ${err}")
  endif()
  set(LAST_OUT "${out}" PARENT_SCOPE)
  set(LAST_ERR "${err}" PARENT_SCOPE)
endfunction()

expect_run(version 0 "synclap [0-9]+\\.[0-9]+\\.[0-9]+" ${SYNCLAP} --version)
expect_run(help 0 "features" ${SYNCLAP} --help)
expect_run(features-help 0 "--out" ${SYNCLAP} features --help)
expect_run(no-subcommand 106 "subcommand" ${SYNCLAP})

# A missing file: one line naming it, non-zero exit.
expect_run(missing-file 1 "nope\\.wav" ${SYNCLAP} features "${WORK}/nope.wav")
string(REGEX MATCHALL "\n" lines "${LAST_ERR}")
list(LENGTH lines nlines)
if(nlines GREATER 2)
  message(FATAL_ERROR "missing-file: error is not short: ${LAST_ERR}")
endif()

# A non-audio file.
file(WRITE "${WORK}/notes.wav" "this is not audio at all")
expect_run(non-audio 1 "notes\\.wav" ${SYNCLAP} features "${WORK}/notes.wav")

# Features of a real recording, written as .npy and .safetensors, with --json.
set(real "${SHARED}/realaudio/sms-tools/flute-A4.wav")
if(EXISTS "${real}")
  expect_run(features-npy 0 "1001" ${SYNCLAP} --json features "${real}" --out "${WORK}/f.npy")
  if(NOT EXISTS "${WORK}/f.npy")
    message(FATAL_ERROR "features did not write f.npy")
  endif()
  file(SIZE "${WORK}/f.npy" sz)
  # 1 x 1 x 1001 x 64 float32 + 128-byte header
  if(NOT sz EQUAL 256384)
    message(FATAL_ERROR "f.npy has ${sz} bytes, expected 256384")
  endif()
  expect_run(features-st 1 "notes\\.wav.*skipped" ${SYNCLAP} features "${real}" "${WORK}/notes.wav" --preset fused
             --out "${WORK}/f.safetensors")
  if(NOT EXISTS "${WORK}/f.safetensors")
    message(FATAL_ERROR "features did not write f.safetensors")
  endif()
  expect_run(info-json 0 "\"sample_rate\": 44100" ${SYNCLAP} --json info "${real}")
  # a good and a bad file: the good one listed, the bad one named on stderr, exit 1
  expect_run(info-mixed 1 "notes\\.wav" ${SYNCLAP} info "${real}" "${WORK}/notes.wav")
  if(NOT LAST_OUT MATCHES "flute-A4\\.wav" OR LAST_OUT MATCHES "notes\\.wav")
    message(FATAL_ERROR "info-mixed: stdout should list only the good file:\n${LAST_OUT}")
  endif()
  if(NOT LAST_ERR MATCHES "notes\\.wav")
    message(FATAL_ERROR "info-mixed: stderr should name the bad file:\n${LAST_ERR}")
  endif()
endif()
# Model commands (absent from a lean build without LibTorch): help, and one-line errors before any model work.
# (Values are checked by the GoogleTests CliEmbed.* / CliClassify.* on the golden tiny model.)
execute_process(COMMAND ${SYNCLAP} --help OUTPUT_VARIABLE top_help ERROR_QUIET)
if(top_help MATCHES "embed")
  expect_run(embed-help 0 "--policy" ${SYNCLAP} embed --help)
  expect_run(classify-help 0 "--template" ${SYNCLAP} classify --help)
  expect_run(embed-bad-out 1 "\\.npy" ${SYNCLAP} embed --model "${WORK}/none" --text hi --out "${WORK}/e.txt")
  expect_run(classify-no-labels 1 "labels" ${SYNCLAP} classify --model "${WORK}/none" "${WORK}")
endif()
message(STATUS "cli smoke: all checks passed")
