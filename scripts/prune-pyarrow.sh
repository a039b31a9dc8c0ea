#!/bin/sh
# Remove the parts of the pyarrow wheel that soil-ci's images never load and that no extra can leave out.
# Usage (in an image's builder stage, after `uv sync`): sh prune-pyarrow.sh /opt/venv
# - Arrow Flight (RPC; ~31 MB): nothing imports pyarrow.flight; its flight.py stays, so an import says
#   "not built with support for 'flight'", as in a pyarrow build without Flight.
# - C++ headers, Cython sources and declarations (include/, src/, *.pyx, *.pxd, *.pxi): for compiling
#   against pyarrow, never read at run time.
# - libarrow_python.so and .so.2500.1.0: byte copies of the .so.2500 every extension links to (a wheel
#   cannot hold symlinks); the linker-only names serve builds, not imports.
# - _pyarrow_cpp_tests: the C++ test hooks of pyarrow's own test suite.
set -eu
site=$(echo "$1"/lib/python3*/site-packages/pyarrow)
[ -f "$site/__init__.py" ] || { echo "prune-pyarrow: no pyarrow under $1" >&2; exit 1; }
cd "$site"
rm -rf include src includes
rm -f _flight.*.so libarrow_flight.so.* libarrow_python_flight.so* _pyarrow_cpp_tests.* \
    libarrow_python.so libarrow_python.so.*.*.* \
    ./*.pyx ./*.pxd ./*.pxi ./*/*.pxd ./*/*.pyx
ls libarrow_python.so.* >/dev/null
