# SPDX-License-Identifier: Apache-2.0
# vmtide_bpf_object(NAME SOURCE): compiles one bpf/*.bpf.c with clang
# (-target bpf -g -O2, CO-RE against the checked-in vmlinux.h), links it with
# `bpftool gen object` and generates `<NAME>.skel.h` with
# `bpftool gen skeleton`. Defines the INTERFACE library vmtide_bpf_<NAME>:
# link it to include "<NAME>.skel.h". Headers are tracked through clang's
# depfile, so editing a .bpf.c or a header it includes regenerates this
# skeleton and rebuilds only the sources that include it.

find_program(VMTIDE_BPF_CLANG NAMES clang clang-14 REQUIRED)
find_program(VMTIDE_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

# bpftool >= 7.0 emits the C++ members (T::open, T::load, ...) that
# Skeleton<T> uses; clang >= 12 knows the BPF CO-RE builtins we need.
execute_process(COMMAND ${VMTIDE_BPFTOOL} version OUTPUT_VARIABLE _bpftool_ver ERROR_QUIET)
string(REGEX MATCH "v([0-9]+)\\.([0-9]+)" _m "${_bpftool_ver}")
set(_bpftool_v "${_m}")
if(NOT _m OR CMAKE_MATCH_1 LESS 7)
  message(FATAL_ERROR "bpftool >= 7.0 needed, found '${_bpftool_ver}' at ${VMTIDE_BPFTOOL}: run scripts/deps (bookworm-backports)")
endif()
execute_process(COMMAND ${VMTIDE_BPF_CLANG} --version OUTPUT_VARIABLE _clang_ver ERROR_QUIET)
string(REGEX MATCH "version ([0-9]+)" _m "${_clang_ver}")
if(NOT _m OR CMAKE_MATCH_1 LESS 12)
  message(FATAL_ERROR "clang >= 12 needed to build BPF programs, found '${_clang_ver}'")
endif()
message(STATUS "BPF: ${VMTIDE_BPF_CLANG} (clang ${CMAKE_MATCH_1}), ${VMTIDE_BPFTOOL} (${_bpftool_v})")

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|amd64")
  set(VMTIDE_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(VMTIDE_BPF_ARCH arm64)
else()
  message(FATAL_ERROR "no BPF target arch for ${CMAKE_SYSTEM_PROCESSOR}")
endif()
set(VMTIDE_VMLINUX_DIR ${CMAKE_SOURCE_DIR}/bpf/vmlinux/${VMTIDE_BPF_ARCH})
if(NOT EXISTS ${VMTIDE_VMLINUX_DIR}/vmlinux.h)
  message(FATAL_ERROR "${VMTIDE_VMLINUX_DIR}/vmlinux.h missing: generate it with scripts/gen-vmlinux-h on a ${VMTIDE_BPF_ARCH} kernel with BTF")
endif()

function(vmtide_bpf_object name src)
  set(out ${CMAKE_BINARY_DIR}/bpf)
  set(tmp_obj ${out}/${name}.tmp.bpf.o)
  set(obj ${out}/${name}.bpf.o)
  set(skel ${out}/${name}.skel.h)
  get_filename_component(src_abs ${src} ABSOLUTE)
  # The depfile's target, relative to this directory's binary dir: CMake
  # (policy CMP0116) reads depfile paths relative to it and rewrites them for
  # Ninja; relative to the top build dir it became bpf/bpf/NAME.tmp.bpf.o,
  # which never exists, so every build rebuilt every BPF object and the agent.
  file(RELATIVE_PATH tmp_rel ${CMAKE_CURRENT_BINARY_DIR} ${tmp_obj})
  add_custom_command(
    OUTPUT ${tmp_obj}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out}
    COMMAND ${VMTIDE_BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${VMTIDE_BPF_ARCH}
            -Wall -Werror -Wno-unused-function
            -I${VMTIDE_VMLINUX_DIR} -I${CMAKE_SOURCE_DIR}/bpf/include -I${CMAKE_SOURCE_DIR}/include
            -MD -MF ${out}/${name}.d -MT ${tmp_rel}
            -c ${src_abs} -o ${tmp_obj}
    DEPENDS ${src_abs}
    DEPFILE ${out}/${name}.d
    COMMENT "BPF ${name}: clang -target bpf"
    VERBATIM)
  # `gen object` runs libbpf's static linker, which also drops DWARF (BTF
  # stays): the skeleton embeds this object, so keep it small.
  add_custom_command(
    OUTPUT ${obj} ${skel}
    COMMAND ${VMTIDE_BPFTOOL} gen object ${obj} ${tmp_obj}
    COMMAND ${VMTIDE_BPFTOOL} gen skeleton ${obj} name ${name}_bpf > ${skel}
    DEPENDS ${tmp_obj}
    COMMENT "BPF ${name}: bpftool gen skeleton"
    VERBATIM)
  add_custom_target(vmtide_bpf_${name}_skel DEPENDS ${skel})
  add_library(vmtide_bpf_${name} INTERFACE)
  target_include_directories(vmtide_bpf_${name} INTERFACE ${out})
  target_link_libraries(vmtide_bpf_${name} INTERFACE PkgConfig::LIBBPF vmtide_headers)
  add_dependencies(vmtide_bpf_${name} vmtide_bpf_${name}_skel)
endfunction()
