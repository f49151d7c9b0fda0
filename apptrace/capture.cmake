# The tracer (program + targets + ring) and its use inside attach (discovery
# of the watched pods' processes, linking calls to exchanges).
add_library(l7tap_apptrace_capture STATIC app_tracer.cc app_capture.cc)
target_include_directories(l7tap_apptrace_capture PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(l7tap_apptrace_capture PUBLIC l7tap_apptrace_program l7tap_apptrace_targets
                                                    l7tap_apptrace PkgConfig::LIBBPF)
target_compile_options(l7tap_apptrace_capture PRIVATE ${L7TAP_WARNINGS})
