# Builds BPF objects and their libbpf skeletons, after libbpf-bootstrap's
# FindBpfObject: clang compiles the .bpf.c, `bpftool gen object` links it
# (dropping DWARF, keeping BTF), `bpftool gen skeleton` embeds the ELF in a C
# header. Nothing is loaded from a path at run time.
#
#   l7tap_bpf_object(<target> <source.bpf.c> NAME <skeleton name>
#                    [INCLUDE_DIRS dir...])
#
# makes <target>, an INTERFACE library whose include directory holds
# "<name>.skel.h" and which links libbpf, libelf and zlib.
#
# This file is also run as a script (cmake -P) to write the skeleton
# atomically: a failing bpftool leaves no empty header behind that would look
# up to date.

if(CMAKE_SCRIPT_MODE_FILE)
  execute_process(COMMAND ${BPFTOOL} gen skeleton ${OBJECT} name ${NAME}
                  OUTPUT_FILE ${OUTPUT}.tmp RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    file(REMOVE ${OUTPUT}.tmp)
    message(FATAL_ERROR "bpftool gen skeleton failed for ${OBJECT}")
  endif()
  file(RENAME ${OUTPUT}.tmp ${OUTPUT})
  return()
endif()

set(_l7tap_bpf_packages "Debian packages: clang, bpftool, libbpf-dev (apt-get install clang bpftool libbpf-dev)")

find_program(BPF_CLANG NAMES clang clang-16 clang-15 clang-14)
if(NOT BPF_CLANG)
  message(FATAL_ERROR "clang not found: it compiles the BPF program. ${_l7tap_bpf_packages}")
endif()
# Debian installs bpftool in /usr/sbin, which is not always on a user's PATH.
find_program(BPF_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin)
if(NOT BPF_BPFTOOL)
  message(FATAL_ERROR "bpftool not found: it generates the BPF skeleton. ${_l7tap_bpf_packages}")
endif()
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBBPF IMPORTED_TARGET libbpf libelf zlib)
if(NOT LIBBPF_FOUND)
  message(FATAL_ERROR "libbpf (with libelf and zlib) not found by pkg-config. ${_l7tap_bpf_packages}")
endif()

# asm/types.h and friends, for BPF objects built on uapi headers only.
execute_process(COMMAND ${CMAKE_C_COMPILER} -print-multiarch OUTPUT_VARIABLE _l7tap_multiarch
                OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT _l7tap_multiarch)
  set(_l7tap_multiarch x86_64-linux-gnu)
endif()
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(BPF_TARGET_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(BPF_TARGET_ARCH arm64)
else()
  set(BPF_TARGET_ARCH ${CMAKE_SYSTEM_PROCESSOR})
endif()

set(_l7tap_bpf_object_script ${CMAKE_CURRENT_LIST_FILE})

function(l7tap_bpf_object target source)
  cmake_parse_arguments(ARG "" "NAME" "INCLUDE_DIRS" ${ARGN})
  if(NOT ARG_NAME)
    message(FATAL_ERROR "l7tap_bpf_object(${target}): NAME is required")
  endif()
  get_filename_component(source ${source} ABSOLUTE)
  set(dir ${CMAKE_CURRENT_BINARY_DIR}/${target})
  set(tmp_object ${dir}/${ARG_NAME}.tmp.bpf.o)
  set(object ${dir}/${ARG_NAME}.bpf.o)
  set(skeleton ${dir}/${ARG_NAME}.skel.h)
  set(includes -I/usr/include/${_l7tap_multiarch})
  foreach(inc IN LISTS ARG_INCLUDE_DIRS)
    list(APPEND includes -I${inc})
  endforeach()

  add_custom_command(
    OUTPUT ${tmp_object}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${dir}
    COMMAND ${BPF_CLANG} -O2 -g -Wall -target bpf -D__TARGET_ARCH_${BPF_TARGET_ARCH} ${includes}
            -MD -MF ${tmp_object}.d -c ${source} -o ${tmp_object}
    DEPENDS ${source}
    DEPFILE ${tmp_object}.d
    COMMENT "BPF: compiling ${ARG_NAME}.bpf.o"
    VERBATIM)
  add_custom_command(
    OUTPUT ${object}
    COMMAND ${BPF_BPFTOOL} gen object ${object} ${tmp_object}
    DEPENDS ${tmp_object}
    COMMENT "BPF: linking ${ARG_NAME}.bpf.o"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skeleton}
    COMMAND ${CMAKE_COMMAND} -DBPFTOOL=${BPF_BPFTOOL} -DOBJECT=${object} -DNAME=${ARG_NAME}
            -DOUTPUT=${skeleton} -P ${_l7tap_bpf_object_script}
    DEPENDS ${object} ${_l7tap_bpf_object_script}
    COMMENT "BPF: generating ${ARG_NAME}.skel.h"
    VERBATIM)
  add_custom_target(${target}_gen DEPENDS ${skeleton})

  add_library(${target} INTERFACE)
  target_include_directories(${target} INTERFACE ${dir})
  target_link_libraries(${target} INTERFACE PkgConfig::LIBBPF)
  add_dependencies(${target} ${target}_gen)
endfunction()
