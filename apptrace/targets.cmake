# What to trace (issue 14, user space only): functions resolved in ELF files
# (binaries/: symbols, Go RETs, DWARF), USDT notes, the --trace-config file
# (yaml-cpp). Included from apptrace/CMakeLists.txt.
pkg_check_modules(YAMLCPP REQUIRED IMPORTED_TARGET yaml-cpp)
add_library(l7tap_apptrace_targets STATIC ${CMAKE_CURRENT_LIST_DIR}/function_targets.cc
                                          ${CMAKE_CURRENT_LIST_DIR}/trace_config.cc)
target_include_directories(l7tap_apptrace_targets PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(l7tap_apptrace_targets PRIVATE l7tap_binaries PkgConfig::YAMLCPP)
target_compile_options(l7tap_apptrace_targets PRIVATE ${L7TAP_WARNINGS})
