include_guard(GLOBAL)

if(BAO_BUILD_TESTS)
  find_package(GTest REQUIRED)
  include(GoogleTest)
endif()

# bao_module(<name> [DEPS <targets>...] [TEST_DEPS <targets>...])
#
# Creates the static library bao_<name> from src/<name>/*.cc, leaving out *_test.cc and main.cc
# (the module's program, if any), and the
# unit-test executable <name>_test from src/<name>/*_test.cc. Headers are included as
# "<name>/<file>.h" from src/.
function(bao_module name)
  cmake_parse_arguments(ARG "" "" "DEPS;TEST_DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cc)
  file(GLOB tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*_test.cc)
  if(tests)
    list(REMOVE_ITEM srcs ${tests})
  endif()
  list(REMOVE_ITEM srcs ${CMAKE_CURRENT_SOURCE_DIR}/main.cc)  # a module's program, not its library
  add_library(bao_${name} STATIC ${srcs})
  target_include_directories(bao_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(bao_${name} PUBLIC ${ARG_DEPS})
  if(BAO_BUILD_TESTS AND tests)
    add_executable(${name}_test ${tests})
    target_link_libraries(${name}_test PRIVATE bao_${name} ${ARG_TEST_DEPS} GTest::gmock_main)
    set(label unit)
    set(tsan_env "")
    if(BAO_TSAN AND ${name}_test IN_LIST BAO_TSAN_TESTS)
      set(label tsan)
      set(tsan_env ENVIRONMENT_MODIFICATION ${BAO_TSAN_ENV})
    endif()
    gtest_discover_tests(${name}_test DISCOVERY_MODE PRE_TEST
      PROPERTIES LABELS ${label} ENVIRONMENT "BAO_TEST_SOURCE_DIR=${PROJECT_SOURCE_DIR}"
      ${tsan_env})
  endif()
endfunction()
