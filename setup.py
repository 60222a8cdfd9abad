"""Only for the optional C speed-ups; everything else is in pyproject.toml.

`optional=True`: without a C compiler or Python headers the build of the extension is
skipped with a warning and pstkit runs its pure-Python code (same output, slower).
The sources are named through pstkit/converters (a link to the repo's converters/ folder),
the path the package is installed under.
"""

from setuptools import Extension, setup

PST = "pstkit/converters/pst"
setup(ext_modules=[Extension("pstkit.converters.pst._pstspeed",
                             [f"{PST}/_pstspeed{part}.c" for part in
                              ("", "_rtf", "_write", "_heap", "_ltp", "_tc")],
                             depends=[f"{PST}/_pstspeed.h", f"{PST}/_pstspeed_heap.h"],
                             optional=True)])
