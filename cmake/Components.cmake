# framepress_component(NAME SOURCES … DEPS …): one static library a component, linked into the binary,
# the tests and the benchmarks alike.
function(framepress_component name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(framepress_${name} STATIC ${ARG_SOURCES})
  target_include_directories(framepress_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(framepress_${name} PUBLIC ${ARG_DEPS})
endfunction()

# framepress_test(NAME SOURCES … DEPS …): a GoogleTest executable registered with ctest.
function(framepress_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  set(timeout 120)
  if(ARG_TIMEOUT)
    set(timeout ${ARG_TIMEOUT})
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS "${ARG_LABELS}"
                       TIMEOUT ${timeout})
endfunction()
