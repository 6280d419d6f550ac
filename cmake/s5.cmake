# The S5 layer: BLAKE3 (official C sources from Debian), CIDs, segments, encryption, the S5 client, s5vector-node.
# Included by the top-level CMakeLists.txt before the unit-test loop.
find_package(PkgConfig REQUIRED)
pkg_check_modules(S5_CURL REQUIRED IMPORTED_TARGET libcurl)
pkg_check_modules(S5_CBOR REQUIRED IMPORTED_TARGET libcbor)
pkg_check_modules(S5_SODIUM REQUIRED IMPORTED_TARGET libsodium)
pkg_check_modules(S5_HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
find_package(Threads REQUIRED)

file(GLOB S5V_BLAKE3_DIRS LIST_DIRECTORIES true /usr/share/cargo/registry/blake3-*/c)
list(SORT S5V_BLAKE3_DIRS)
list(POP_BACK S5V_BLAKE3_DIRS S5V_BLAKE3_DIR)
if(NOT S5V_BLAKE3_DIR OR NOT EXISTS ${S5V_BLAKE3_DIR}/blake3.h)
  message(FATAL_ERROR "BLAKE3 C sources not found: install librust-blake3-dev")
endif()
set(S5V_BLAKE3_DIR ${S5V_BLAKE3_DIR} CACHE INTERNAL "")

# Intrinsics versions, each with its own flags; blake3_dispatch.c picks one at run time.
set(S5V_BLAKE3_SRCS ${S5V_BLAKE3_DIR}/blake3.c ${S5V_BLAKE3_DIR}/blake3_dispatch.c ${S5V_BLAKE3_DIR}/blake3_portable.c
  ${S5V_BLAKE3_DIR}/blake3_sse2.c ${S5V_BLAKE3_DIR}/blake3_sse41.c ${S5V_BLAKE3_DIR}/blake3_avx2.c
  ${S5V_BLAKE3_DIR}/blake3_avx512.c)
set_source_files_properties(${S5V_BLAKE3_SRCS} PROPERTIES COMPILE_OPTIONS "-w")
set_source_files_properties(${S5V_BLAKE3_DIR}/blake3_sse2.c PROPERTIES COMPILE_OPTIONS "-w;-msse2")
set_source_files_properties(${S5V_BLAKE3_DIR}/blake3_sse41.c PROPERTIES COMPILE_OPTIONS "-w;-msse4.1")
set_source_files_properties(${S5V_BLAKE3_DIR}/blake3_avx2.c PROPERTIES COMPILE_OPTIONS "-w;-mavx2")
set_source_files_properties(${S5V_BLAKE3_DIR}/blake3_avx512.c PROPERTIES COMPILE_OPTIONS
  "-w;-mavx512f;-mavx512vl")

file(GLOB S5V_S5_SRCS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/core/s5/*.cpp)
target_sources(s5v_core PRIVATE ${S5V_S5_SRCS} ${S5V_BLAKE3_SRCS})
target_include_directories(s5v_core PRIVATE ${S5V_BLAKE3_DIR})
target_link_libraries(s5v_core PUBLIC PkgConfig::S5_CURL PkgConfig::S5_CBOR PkgConfig::S5_SODIUM)
list(APPEND S5V_CORE_EXTRA_LIBS PkgConfig::S5_CURL PkgConfig::S5_CBOR PkgConfig::S5_SODIUM Threads::Threads)

# The node: cpp-httplib (Debian ships it as header + shared library; its Cflags must match the library's build).
file(GLOB S5V_NODE_SRCS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tools/s5vector-node/*.cpp)
add_executable(s5vector-node ${S5V_NODE_SRCS})
target_link_libraries(s5vector-node PRIVATE s5v_core PkgConfig::S5_HTTPLIB Threads::Threads)

# Tests and the benchmark that spawn the node find it through S5V_NODE_PATH.
set(S5V_NODE_USERS ${CMAKE_SOURCE_DIR}/test/unit/s5_client_node_test.cpp ${CMAKE_SOURCE_DIR}/test/unit/s5_node_abuse_test.cpp
  ${CMAKE_SOURCE_DIR}/bench/micro/s5_bench.cpp)
set_source_files_properties(${S5V_NODE_USERS} PROPERTIES COMPILE_DEFINITIONS "S5V_NODE_PATH=\"$<TARGET_FILE:s5vector-node>\"")

# The test and bench targets are created after this file: add their dependency on the node at the end.
function(s5v_add_node_dependencies)
  foreach(t s5_client_node_test s5_node_abuse_test s5_bench)
    if(TARGET ${t})
      add_dependencies(${t} s5vector-node)
    endif()
  endforeach()
endfunction()
cmake_language(DEFER CALL s5v_add_node_dependencies)

# libFuzzer target for the segment decoder (clang only); test/fuzz/run.sh builds and runs it.
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  add_executable(s5_segment_fuzz ${CMAKE_SOURCE_DIR}/test/fuzz/s5_segment_fuzz.cpp
    ${CMAKE_SOURCE_DIR}/src/core/s5/cbor.cpp ${CMAKE_SOURCE_DIR}/src/core/s5/segment.cpp ${CMAKE_SOURCE_DIR}/src/core/status.cpp)
  target_include_directories(s5_segment_fuzz PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/src/core)
  target_compile_options(s5_segment_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(s5_segment_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(s5_segment_fuzz PRIVATE PkgConfig::S5_CBOR)
endif()
