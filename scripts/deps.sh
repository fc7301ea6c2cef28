#!/usr/bin/env bash
# deps.sh -- installs the Debian packages ncelab builds and tests with (as root), or prints the
# exact apt-get line to run (otherwise). Quiet when everything is present.
set -euo pipefail

packages=(
  gcc make cmake pkg-config        # build
  libcjson-dev                     # JSON
  libopenblas-dev liblapacke-dev   # BLAS, LAPACK (eigenvalues of the certificate, probes)
  libdnnl-dev                      # oneDNN: convolution, batch norm, pooling, inner product
  zlib1g-dev libjpeg-dev libpng-dev  # gzipped IDX files, JPEG and PNG image folders
  libopenmpi-dev openmpi-bin       # MPI: data-parallel runs under mpirun, bench --comm (ncelab builds without)
  dataset-fashion-mnist            # real data: /usr/share/datasets/fashion-mnist
  clang libclang-rt-14-dev         # libFuzzer for the readers' fuzzing (make fuzz, CI)
  python3                          # XML well-formedness check in tests (optional at run time)
  python3-venv python3-numpy python3-pytest  # the Python package's tests (scripts/python_test.sh)
  python3-torch                    # ... its load_encoder round trips against the binary
  ninja-build                      # scikit-build-core's CMake generator (pip install ./python)
  chromium                         # tests render report.html headless and check the screenshot
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  echo "deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "deps.sh: missing packages; run:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
