# SPDX-License-Identifier: Apache-2.0
# Writes the build identity header at build time, not only at configure
# time, so an incremental build after a commit reports the new revision
# (`vmtide --version`). configure_file() leaves the file alone when the
# text is the same, so nothing recompiles unless the revision changed.
#   cmake -DSRC=<source dir> -DOUT=<header> -DVERSION=<x.y.z> [-DGIT=<git>] -P version.cmake
set(VMTIDE_GIT "unknown")
if(GIT AND EXISTS "${SRC}/.git")
  execute_process(COMMAND "${GIT}" describe --always --dirty
                  WORKING_DIRECTORY "${SRC}"
                  OUTPUT_VARIABLE rev OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET
                  RESULT_VARIABLE rc)
  if(rc EQUAL 0 AND rev)
    set(VMTIDE_GIT "${rev}")
  endif()
endif()
set(PROJECT_VERSION "${VERSION}")
configure_file("${SRC}/include/vmtide/version.h.in" "${OUT}" @ONLY)
