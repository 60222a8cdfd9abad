"""Only for the optional C speed-ups; everything else is in pyproject.toml.

`optional=True`: without a C compiler or Python headers the build of the extension is
skipped with a warning and pstkit runs its pure-Python code (same output, slower).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("converters._pstspeed",
                             ["converters/_pstspeed.c", "converters/_pstspeed_rtf.c"],
                             depends=["converters/_pstspeed.h"], optional=True)])
