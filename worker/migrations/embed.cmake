# Turns worker/migrations/*.sql into a C table {name, sql} (see worker/migrate.c), in name
# order. The directory is passed rather than the list: a list would be split into arguments.
file(GLOB FILES ${DIR}/*.sql)
list(SORT FILES)
set(body "/* generated from worker/migrations by embed.cmake: do not edit */\n#include \"migrate.h\"\n\nconst struct migration migrations[] = {\n")
foreach(f ${FILES})
  get_filename_component(name ${f} NAME)
  file(READ ${f} hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "\\\\x\\1" escaped "${hex}")
  # Break the literal every 64 bytes so compilers do not choke on one huge line.
  string(REGEX REPLACE "((\\\\x[0-9a-f][0-9a-f]){64})" "\\1\"\n    \"" escaped "${escaped}")
  string(APPEND body "  {\"${name}\",\n    \"${escaped}\"},\n")
endforeach()
string(APPEND body "};\nconst size_t migrations_count = sizeof migrations / sizeof migrations[0];\n")
file(WRITE ${OUT}.tmp "${body}")
file(RENAME ${OUT}.tmp ${OUT})
