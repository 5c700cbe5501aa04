#!/usr/bin/env bash
# Installs what `python -m kernels.aot` (and tests/kernels/test_aot.py) compile with into an ignored folder,
# without touching the project's environment (libtpu next to the CPU jaxlib would make every jax import
# probe for a TPU): libtpu as pinned by the installed jax's [tpu] extra, and triton (its ptxas included).
#
#   kernels/aot_env.sh                  # uses `python`; PYTHON=/path/to/python to choose; exit 3: index unreachable
set -euo pipefail
PY=${PYTHON:-python}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SITE=${JAXLAB_AOT_SITE:-$ROOT/.aot/site}
TRITON=${TRITON_VERSION:-3.9.0}   # pinned: register and spill counts are compared against a baseline
LIBTPU=$("$PY" -c '
import importlib.metadata as md, re
reqs = [r for r in md.requires("jax") or [] if r.startswith("libtpu") and "extra == \"tpu\"" in r]
print(re.split(r"\s*;", reqs[0])[0].replace(" ", "") if reqs else "libtpu")')
STAMP="$SITE/.installed"
WANT="$LIBTPU triton==$TRITON"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
  exit 0
fi
rm -rf "$SITE"
if ! "$PY" -m pip install --quiet --disable-pip-version-check --no-deps --target "$SITE" "$LIBTPU" "triton==$TRITON"; then
  # Tell "cannot reach the package index" apart from a real installation failure.
  if ! "$PY" -m pip download --quiet --no-deps --disable-pip-version-check -d "$(mktemp -d)" "six" >/dev/null 2>&1; then
    echo "kernels/aot_env.sh: package index unreachable" >&2
    exit 3
  fi
  exit 1
fi
echo "$WANT" > "$STAMP"
echo "kernels/aot_env.sh: installed $WANT into $SITE"
