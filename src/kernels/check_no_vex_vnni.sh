#!/usr/bin/env bash
# Fails when the built kernels hold a VEX-encoded VNNI instruction (AVX-VNNI) in
# Highway's AVX3_DL code. Highway 1.0.3's AVX3_DL target string enables AVX-VNNI,
# but its runtime check does not require it, so Zen 4 and Ice Lake run AVX3_DL
# code and fault on {vex} vpdpbusd / vpdpwssd. Usage: check_no_vex_vnni.sh LIB...
set -euo pipefail
command -v objdump >/dev/null || { echo "check_no_vex_vnni: objdump not found (binutils)" >&2; exit 1; }
bad=$(objdump -d --no-show-raw-insn "$@" |
  awk '/^[0-9a-f]+ <.*>:$/ { fn = $2 } /\{vex\} *vpdp/ { print fn ": " $0 }' | c++filt)
if [ -n "$bad" ]; then
  echo "AVX-VNNI (VEX) instructions in code that AVX-512-only CPUs run:" >&2
  echo "$bad" >&2
  exit 1
fi
echo "no VEX-encoded VNNI instructions in $*"
