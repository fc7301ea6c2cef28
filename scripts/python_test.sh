#!/usr/bin/env bash
# python_test.sh -- the Python package's tests: a virtual environment over Debian's python3 (its
# numpy, torch and pytest stay visible), `pip install ./python` (scikit-build-core builds
# libncelab.so with CMake), then pytest against the ncelab binary (ctest runs it as python_package).
#   scripts/python_test.sh [WORKDIR]    WORKDIR keeps the venv and the CMake build between runs
#                                       (default build/python); NCELAB_BIN: the binary (build/ncelab)
# scikit-build-core is not packaged in Debian 12: pip fetches it from PyPI into the venv once. When
# PyPI cannot be reached, the package is tested from a plain CMake build of libncelab.so instead
# (NCELAB_LIBRARY), and the script says so. Exit 77 (ctest: skipped) without Debian's python3,
# numpy, venv or pytest (scripts/deps.sh installs them).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mkdir -p "${1:-$root/build/python}" && cd "${1:-$root/build/python}" && pwd)"
py=/usr/bin/python3   # Debian's: the one with python3-numpy, python3-torch, python3-pytest
export NCELAB_BIN="${NCELAB_BIN:-$root/build/ncelab}"
t0=$(date +%s)

if ! [ -x "$py" ] || ! "$py" -c "import numpy, pytest, venv, ensurepip" 2>/dev/null; then
  echo "python_test.sh: skipped: $py with numpy, pytest and venv is needed (apt-get install python3-numpy python3-pytest python3-venv)"
  exit 77
fi
"$py" -c "import torch" 2>/dev/null || echo "python_test.sh: no torch (python3-torch): load_encoder's tests are skipped"

venv="$work/venv"
[ -x "$venv/bin/python" ] || "$py" -m venv --system-site-packages "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
have_backend() { "$venv/bin/python" -c "import scikit_build_core" 2>/dev/null; }
have_backend || "${pip[@]}" install --timeout 20 --retries 1 "scikit-build-core>=0.8" >"$work/pip.log" 2>&1 || true

if have_backend; then
  # --no-build-isolation: the backend of the venv, no second download; the CMake build stays in
  # WORKDIR/skbuild, so a second run only recompiles what changed
  "${pip[@]}" install --no-build-isolation --force-reinstall --no-deps \
      --config-settings=build-dir="$work/skbuild" "$root/python"
  echo "python_test.sh: pip install ./python: $(( $(date +%s) - t0 )) s"
  pyenv=()
else
  echo "python_test.sh: PyPI unreachable (see $work/pip.log) and scikit-build-core is not in Debian 12:"
  echo "  testing the package from a CMake build of libncelab.so instead of pip install"
  cmake -S "$root" -B "$work/lib" -DCMAKE_BUILD_TYPE=Release -DNCELAB_SHARED=ON -DNCELAB_CLI=OFF -DNCELAB_MPI=OFF >/dev/null
  cmake --build "$work/lib" --target ncelab_shared -j "${JOBS:-2}" >/dev/null
  pyenv=(env "PYTHONPATH=$root/python" "NCELAB_LIBRARY=$work/lib/libncelab.so")
fi

# from WORKDIR, so that `import ncelab` is the installed package, not the source tree
cd "$work"
"${pyenv[@]}" "$venv/bin/python" -m pytest -q -p no:cacheprovider "$root/python/tests"
echo "python_test.sh: $(( $(date +%s) - t0 )) s in all"
