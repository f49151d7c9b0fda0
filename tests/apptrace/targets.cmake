# apptrace/'s function targets and --trace-config (issue 14), included from
# tests/CMakeLists.txt. The fixtures are built here: a C program with
# symbols, a stripped copy (strip) and USDT probes (systemtap-sdt-dev's
# <sys/sdt.h>); a Go program with several main.handle* functions (Debian's
# golang-go, offline), as it is, without DWARF and stripped.
set(apptrace_fixtures ${CMAKE_CURRENT_BINARY_DIR}/apptrace/targets)
add_executable(apptrace_native apptrace/targets/native.c)
target_compile_options(apptrace_native PRIVATE -O2)
set_target_properties(apptrace_native PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${apptrace_fixtures})
add_custom_command(
  OUTPUT ${apptrace_fixtures}/native-stripped
  COMMAND ${CMAKE_STRIP} -o ${apptrace_fixtures}/native-stripped $<TARGET_FILE:apptrace_native>
  DEPENDS apptrace_native
  COMMENT "Stripping the apptrace C fixture"
  VERBATIM)
find_program(L7TAP_GO go REQUIRED)
set(apptrace_go_env ${CMAKE_COMMAND} -E env GOCACHE=${apptrace_fixtures}/cache
                    GOPATH=${apptrace_fixtures}/path GOTOOLCHAIN=local GOPROXY=off GOFLAGS=
                    CGO_ENABLED=0)
set(apptrace_go_src ${CMAKE_CURRENT_SOURCE_DIR}/apptrace/targets/go)
add_custom_command(
  OUTPUT ${apptrace_fixtures}/handlers ${apptrace_fixtures}/handlers-nodwarf
         ${apptrace_fixtures}/handlers-stripped
  COMMAND ${apptrace_go_env} ${L7TAP_GO} build -o ${apptrace_fixtures}/handlers .
  COMMAND ${apptrace_go_env} ${L7TAP_GO} build "-ldflags=-w" -o ${apptrace_fixtures}/handlers-nodwarf .
  COMMAND ${apptrace_go_env} ${L7TAP_GO} build "-ldflags=-s -w" -o
          ${apptrace_fixtures}/handlers-stripped .
  DEPENDS ${apptrace_go_src}/main.go ${apptrace_go_src}/go.mod
  WORKING_DIRECTORY ${apptrace_go_src}
  COMMENT "Building the apptrace Go fixture (tests/apptrace/targets/go)"
  VERBATIM)
add_custom_target(apptrace_target_fixtures DEPENDS ${apptrace_fixtures}/native-stripped
                                                   ${apptrace_fixtures}/handlers)

# Not l7tap_test_suite: these need no l7tap binary, and tests/apptrace/
# holds other suites with other libraries.
# function_targets_probe_test: perf counting uprobes at the resolved
# offsets of the fixtures run for a known number of calls (root).
add_executable(apptrace_targets_tests apptrace/function_targets_test.cc
                                      apptrace/function_targets_probe_test.cc
                                      apptrace/trace_config_test.cc)
target_link_libraries(apptrace_targets_tests PRIVATE l7tap_apptrace_targets GTest::gtest
                                                     GTest::gtest_main)
target_include_directories(apptrace_targets_tests PRIVATE ${PROJECT_SOURCE_DIR})
target_compile_options(apptrace_targets_tests PRIVATE ${L7TAP_WARNINGS})
target_compile_definitions(apptrace_targets_tests PRIVATE
                           L7TAP_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
                           L7TAP_APPTRACE_FIXTURES="${apptrace_fixtures}"
                           L7TAP_APPTRACE_NATIVE="$<TARGET_FILE:apptrace_native>"
                           L7TAP_GO="${L7TAP_GO}")
add_dependencies(apptrace_targets_tests apptrace_target_fixtures)
gtest_discover_tests(apptrace_targets_tests DISCOVERY_TIMEOUT 60)
