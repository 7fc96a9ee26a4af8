# loupe_module(NAME DEPS ...): a static library from src/NAME/*.cpp.
#
# Headers are included as "NAME/header.h". Each module gets a private include
# root under the build tree that contains only a link to its own folder, and
# exports it PUBLIC; so a target sees exactly the headers of the modules it
# links (directly or through them). Including another module's header without
# linking it is a compile error: the dependency direction is enforced.
function(loupe_module name)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${name}/*.cpp
       ${PROJECT_SOURCE_DIR}/src/${name}/*/*.cpp)
  set(root ${PROJECT_BINARY_DIR}/include/${name})
  file(MAKE_DIRECTORY ${root})
  file(CREATE_LINK ${PROJECT_SOURCE_DIR}/src/${name} ${root}/${name} SYMBOLIC)
  add_library(loupe_${name} STATIC ${srcs})
  target_include_directories(loupe_${name} PUBLIC ${root})
  target_link_libraries(loupe_${name} PUBLIC ${ARG_DEPS})
endfunction()
