# Two libFuzzer targets: the write-queue model test and DNS answers through
# the fake DNS server. Meant to be include()d by test/fuzz/CMakeLists.txt,
# which uses its rill_fuzz_target() when it defines one. Without it (a build
# made just for these two) each target is a plain executable compiled and
# linked with -fsanitize=fuzzer,address,undefined; rill itself is
# instrumented only if the build's flags say so
# (CMAKE_C_FLAGS/CMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link,address,undefined).
# Needs clang.
set(RILL_FUZZ_MODEL_DIR ${CMAKE_CURRENT_LIST_DIR})
set(RILL_FUZZ_MODEL_SUPPORT ${CMAKE_CURRENT_LIST_DIR}/../support)

function(rill_fuzz_model_target name)
  if(COMMAND rill_fuzz_target)
    rill_fuzz_target(${name} ${ARGN})
  else()
    set(sanitizers -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer)
    add_executable(${name} ${ARGN})
    target_compile_options(${name} PRIVATE ${sanitizers})
    target_link_options(${name} PRIVATE ${sanitizers})
    target_link_libraries(${name} PRIVATE rill_static)
  endif()
  target_include_directories(${name} PRIVATE ${RILL_FUZZ_MODEL_SUPPORT})
  target_link_libraries(${name} PRIVATE Threads::Threads)
endfunction()

rill_fuzz_model_target(fuzz_write_queue ${RILL_FUZZ_MODEL_DIR}/fuzz_write_queue.cpp
  ${RILL_FUZZ_MODEL_DIR}/write_queue_model.cpp)
if(RILL_WITH_CARES)
  rill_fuzz_model_target(fuzz_dns_answer ${RILL_FUZZ_MODEL_DIR}/fuzz_dns_answer.cpp
    ${RILL_FUZZ_MODEL_SUPPORT}/fake_dns.c)
endif()
