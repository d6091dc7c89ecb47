#!/usr/bin/env bash
# `make package [ARCH=arm64|x86_64]`: `sam build` of every function with cargo-lambda, then
# one zip per bootstrap (what `sam package` would upload), with its size.
#
# ARCH reaches the template's Architecture parameter, which sets every function's
# Architectures, which sets cargo-lambda's --target: arm64 -> aarch64-unknown-linux-gnu,
# cross-linked by zig (from the tools venv); x86_64 -> x86_64-unknown-linux-gnu, native.
# No AWS account or credentials are used: `sam package`/`sam deploy` are the README's.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ARCH="${ARCH:-arm64}"
case "$ARCH" in
  arm64) TRIPLE=aarch64-unknown-linux-gnu ;;
  x86_64) TRIPLE=x86_64-unknown-linux-gnu ;;
  *) echo "package: ARCH must be arm64 or x86_64, not '$ARCH'" >&2; exit 2 ;;
esac

scripts/tools.sh install
eval "$(scripts/tools.sh path)"
# cargo-lambda adds a missing target itself, but only when rustup manages the toolchain;
# adding it here makes the failure, if any, plain.
if command -v rustup >/dev/null 2>&1; then
  rustup target list --installed | grep -qx "$TRIPLE" || rustup target add "$TRIPLE"
fi

# SAM still gates the cargo-lambda build method behind a beta flag and would prompt for it;
# CI has no stdin.
export SAM_CLI_BETA_RUST_CARGO_LAMBDA=1
# A shared CARGO_TARGET_DIR would hold cargo's lock through every release link.
unset CARGO_TARGET_DIR

# The parameters without defaults only need a value of the right shape to build.
sam build \
  --parameter-overrides "Architecture=$ARCH" \
  "JwtIssuer=https://issuer.invalid" "JwtAudience=build" \
  --build-dir .aws-sam/build

out=".aws-sam/zips/$ARCH"
rm -rf "$out"
mkdir -p "$out"
echo
echo "package: $ARCH ($TRIPLE) bootstraps, zipped as Lambda takes them"
status=0
for dir in .aws-sam/build/*Function; do
  fn="$(basename "$dir")"
  if [ ! -x "$dir/bootstrap" ]; then
    echo "package: $fn has no bootstrap" >&2
    status=1
    continue
  fi
  python3 - "$fn" "$dir/bootstrap" "$out/$fn.zip" "$ARCH" <<'PY' || status=1
import os, struct, sys, zipfile
fn, src, dst, arch = sys.argv[1:]
with open(src, "rb") as f:
    elf = f.read()
# The ELF header's e_machine, so a wrong target cannot pass unseen.
machine = {0x3E: "x86-64", 0xB7: "aarch64"}.get(struct.unpack_from("<H", elf, 18)[0], "unknown")
# e_type: 2 is a fixed-address executable, 3 a position-independent one (or a shared object).
kind = {2: "non-PIE", 3: "PIE"}.get(struct.unpack_from("<H", elf, 16)[0], "unknown")
with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    info = zipfile.ZipInfo("bootstrap")
    info.external_attr = 0o755 << 16  # Lambda execs bootstrap: keep the mode bits
    info.compress_type = zipfile.ZIP_DEFLATED
    z.writestr(info, elf)
print(f"  {fn:<26} {machine:<8} {kind:<8} bootstrap {len(elf)/1e6:5.1f} MB   {dst} {os.path.getsize(dst)/1e6:5.1f} MB")
if kind != "non-PIE":
    sys.exit(f"package: {fn} is {kind}: its build script (functions/link_non_pie.rs) did not run")
if machine != {"arm64": "aarch64", "x86_64": "x86-64"}[arch]:
    sys.exit(f"package: {fn} was built for {machine}, not {arch}")
PY
done
exit "$status"
