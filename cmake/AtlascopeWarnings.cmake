# Warnings for the project's own targets (not for the heavy third-party headers, which are SYSTEM).
function(atlascope_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wno-unused-parameter)
endfunction()
