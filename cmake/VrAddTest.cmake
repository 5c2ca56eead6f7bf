# vr_add_test(NAME SOURCES a.cpp ... [LIBS lib ...] [GPU])
# One GoogleTest executable; each test becomes a ctest test labelled `cpu` or `gpu`.
# A GTEST_SKIP() (e.g. a GPU test on a machine without a GPU) shows as "Skipped".
include(GoogleTest)
function(vr_add_test NAME)
  cmake_parse_arguments(T "GPU" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${NAME} ${T_SOURCES})
  target_compile_options(${NAME} PRIVATE ${VR_WARNINGS})
  target_link_libraries(${NAME} PRIVATE GTest::gtest_main ${T_LIBS})
  if(T_GPU)
    set(label gpu)
  else()
    set(label cpu)
  endif()
  gtest_discover_tests(${NAME}
    PROPERTIES LABELS ${label} SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]"
    DISCOVERY_TIMEOUT 60)
endfunction()
