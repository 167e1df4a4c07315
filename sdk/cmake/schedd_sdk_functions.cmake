# schedd_add_plugin(NAME src1 [src2 ...])
#
# Builds a schedd plugin as a MODULE library named NAME.so (no "lib" prefix) against the
# schedd SDK: hidden visibility so that only the manifest is exported, and no STB_GNU_UNIQUE
# symbols with GCC (they would make dlclose a no-op and keep the plugin mapped). C sources are
# compiled as C11 and C++ sources as C++17 unless the target says otherwise.
function(schedd_add_plugin name)
  if(NOT ARGN)
    message(FATAL_ERROR "schedd_add_plugin(${name}): no source files given")
  endif()
  add_library(${name} MODULE ${ARGN})
  target_link_libraries(${name} PRIVATE schedd::sdk)
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(NOT DEFINED CMAKE_CXX_STANDARD)
    set_target_properties(${name} PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
  endif()
  if(NOT DEFINED CMAKE_C_STANDARD)
    set_target_properties(${name} PROPERTIES C_STANDARD 11 C_STANDARD_REQUIRED ON)
  endif()
  target_compile_options(${name} PRIVATE
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<CXX_COMPILER_ID:GNU>>:-fno-gnu-unique>)
  # Refuse to link a plugin with unresolved symbols: better at build time than at dlopen.
  # Hidden visibility does not cover template instances from the standard library (libstdc++
  # declares namespace std with default visibility), so a version script makes the manifest
  # the one exported symbol.
  if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
    set(_exports ${CMAKE_CURRENT_BINARY_DIR}/${name}_exports.map)
    file(CONFIGURE OUTPUT ${_exports}
      CONTENT "{\n  global: schedd_plugin_manifest;\n  local: *;\n};\n")
    target_link_options(${name} PRIVATE "LINKER:--no-undefined" "LINKER:--version-script=${_exports}")
    set_property(TARGET ${name} APPEND PROPERTY LINK_DEPENDS ${_exports})
  endif()
endfunction()
