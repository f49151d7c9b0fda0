# What the function calls become in user space (issue 14): the ring's events
# decoded, the call records, their link to the exchanges they served, and the
# in-kernel histograms as a table and as Prometheus histograms. No BPF here:
# all of it is tested without root.
add_library(l7tap_apptrace STATIC ${CMAKE_CURRENT_LIST_DIR}/call_events.cc
                                  ${CMAKE_CURRENT_LIST_DIR}/call_record.cc
                                  ${CMAKE_CURRENT_LIST_DIR}/call_linker.cc
                                  ${CMAKE_CURRENT_LIST_DIR}/histograms.cc)
target_include_directories(l7tap_apptrace PUBLIC ${PROJECT_SOURCE_DIR})
# l7tap_records: HttpRecord and ConnRecord, which the linker reads and wraps.
target_link_libraries(l7tap_apptrace PUBLIC l7tap_abi l7tap_records l7tap_metrics)
target_compile_options(l7tap_apptrace PRIVATE ${L7TAP_WARNINGS})
