# One CTest test per GoogleTest suite, instead of gtest_discover_tests' one per test case.
#
# The sanitizer builds use it: an ASan+UBSan schedd_tests is a 300 MB executable whose start
# (mapping it, the sanitizers' global registration) costs about as much as most of its unit
# tests, so one process per test case spent more time starting than testing. A suite runs
# all its test cases in one process: `schedd_tests --gtest_filter=Suite.*`.
#
# Two uses of this file:
#  - included from a CMakeLists.txt, it defines schedd_add_suite_tests();
#  - run by CTest (a TEST_INCLUDE_FILES script, as gtest_discover_tests does), with
#    SCHEDD_SUITE_MODE set, it lists the suites of the built executable and adds the tests.
if(NOT SCHEDD_SUITE_MODE)
  # schedd_add_suite_tests(TARGET t NAME_PREFIX p [SERIAL_SUITES regex] [TIMEOUT s]
  #                        [SERIAL_TIMEOUT s])
  # Suites whose name matches SERIAL_SUITES run alone (RUN_SERIAL).
  function(schedd_add_suite_tests)
    cmake_parse_arguments(arg "" "TARGET;SERIAL_SUITES;TIMEOUT;SERIAL_TIMEOUT" "" ${ARGN})
    set(script ${CMAKE_CURRENT_BINARY_DIR}/${arg_TARGET}_suites.cmake)
    set(list_file ${CMAKE_CURRENT_BINARY_DIR}/${arg_TARGET}_suites_include.cmake)
    file(GENERATE OUTPUT ${script} CONTENT
      "set(SCHEDD_SUITE_MODE ON)
set(exe \"$<TARGET_FILE:${arg_TARGET}>\")
set(serial \"${arg_SERIAL_SUITES}\")
set(timeout \"${arg_TIMEOUT}\")
set(serial_timeout \"${arg_SERIAL_TIMEOUT}\")
include(\"${CMAKE_CURRENT_FUNCTION_LIST_FILE}\")
")
    set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${script})
  endfunction()
  return()
endif()

# CTest mode: list the suites and add one test for each.
if(NOT timeout)
  set(timeout 600)
endif()
if(NOT serial_timeout)
  set(serial_timeout 600)
endif()
if(NOT EXISTS "${exe}")
  add_test(suites_not_built "${exe}")
  return()
endif()
execute_process(COMMAND "${exe}" --gtest_list_tests OUTPUT_VARIABLE out
  RESULT_VARIABLE rc TIMEOUT 60)
if(NOT rc EQUAL 0)
  message(WARNING "${exe} --gtest_list_tests failed (${rc}); no suites added")
  return()
endif()
string(REPLACE "\n" ";" lines "${out}")
foreach(line IN LISTS lines)
  # A suite line is "Suite." or "Prefix/Suite/0.  # TypeParam = ..."; test lines are indented.
  if(line MATCHES "^([^ #]+)\\.( .*)?$")
    set(suite "${CMAKE_MATCH_1}")
    add_test("${suite}" "${exe}" "--gtest_filter=${suite}.*" "--gtest_brief=1")
    if(serial AND suite MATCHES "${serial}")
      set_tests_properties("${suite}" PROPERTIES RUN_SERIAL TRUE TIMEOUT ${serial_timeout})
    else()
      set_tests_properties("${suite}" PROPERTIES TIMEOUT ${timeout})
    endif()
  endif()
endforeach()
