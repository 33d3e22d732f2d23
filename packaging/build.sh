#!/usr/bin/env bash
# Build ImageDesk's one-folder bundle with PyInstaller, then run its self-test.
#
#   bash packaging/build.sh            # cloud-only flavour (no torch): dist/imagedesk-cloud/
#   bash packaging/build.sh full       # with the local diffusion stack: dist/imagedesk-full/
#   IMAGEDESK_FLAVOUR=full bash packaging/build.sh
#
# The bundle is built in its own venv (build/venv-<flavour>), made from $PYTHON
# with only what that flavour needs, so nothing from the developer's .venv
# (test tools, the local extra in a cloud build) gets in. The venv is reused
# while pyproject.toml is unchanged. For `full`, torch is installed first, so pip
# takes the build meant for this machine (CUDA where there is a GPU); set
# TORCH_SPEC to choose another (e.g. TORCH_SPEC="torch==2.13.0 --index-url ...").
# SKIP_SELFTEST=1 skips the self-test run at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

FLAVOUR="${1:-${IMAGEDESK_FLAVOUR:-cloud}}"
case "$FLAVOUR" in
  cloud|full) ;;
  *) echo "usage: $0 [cloud|full]" >&2; exit 2 ;;
esac
PYTHON="${PYTHON:-python3}"
PYINSTALLER_SPEC="pyinstaller==6.22.3"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
VENV="build/venv-$FLAVOUR"
LICENSES="build/licenses-$FLAVOUR"
DIST="dist/imagedesk-$FLAVOUR"
STAMP="$VENV/.build-stamp"
started=$SECONDS

want="$(sha256sum pyproject.toml | cut -d' ' -f1) $FLAVOUR $PYINSTALLER_SPEC $TORCH_SPEC"
if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$want" ]]; then
  echo "== build venv $VENV (clean)"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  if [[ "$FLAVOUR" == full ]]; then
    # shellcheck disable=SC2086  # TORCH_SPEC may carry pip options
    "$VENV/bin/python" -m pip install -q $TORCH_SPEC
    "$VENV/bin/python" -m pip install -q ".[local,api]" "$PYINSTALLER_SPEC"
  else
    "$VENV/bin/python" -m pip install -q ".[api]" "$PYINSTALLER_SPEC"
  fi
  echo "$want" > "$STAMP"
fi
if [[ "$FLAVOUR" == cloud ]] && "$VENV/bin/python" -c "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is None)"; then
  echo "torch is installed in $VENV, which is meant to be cloud-only: rm -rf $VENV and rerun" >&2
  exit 1
fi

echo "== licence notices -> $LICENSES"
# Both flavours serve the local HTTP API (`imagedesk serve`, the window's "Serve the API").
extras=(--extra api)
[[ "$FLAVOUR" == full ]] && extras+=(--extra local)
"$VENV/bin/python" packaging/collect_licenses.py --out "$LICENSES" "${extras[@]}"

echo "== pyinstaller ($FLAVOUR)"
pyi_started=$SECONDS
IMAGEDESK_FLAVOUR="$FLAVOUR" IMAGEDESK_LICENSES="$PWD/$LICENSES" \
  "$VENV/bin/python" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath dist --workpath "build/pyinstaller-$FLAVOUR" packaging/imagedesk.spec
echo "pyinstaller took $((SECONDS - pyi_started)) s"

cp packaging/install-desktop-entry.sh "$DIST/"

# What the bundle took from the host system (not from a wheel): for the record.
"$VENV/bin/python" packaging/host_libraries.py "$DIST" > "build/host-libraries-$FLAVOUR.txt"
echo "bundle: $DIST ($(du -sh "$DIST" | cut -f1)); host libraries listed in build/host-libraries-$FLAVOUR.txt"

if [[ "${SKIP_SELFTEST:-0}" != 1 ]]; then
  echo "== self-test of the bundle (offscreen, throw-away profile)"
  selftest_log="build/selftest-$FLAVOUR.txt"
  env -u DISPLAY -u WAYLAND_DISPLAY QT_QPA_PLATFORM=offscreen \
    "$DIST/imagedesk" --self-test --temp-home 2>&1 | tee "$selftest_log"
  # A bundle that skips a part of the app (an extra left out of the build venv) would
  # pass the self-test yet fail the user who turns that part on: refuse it here.
  if grep -qE "extra not installed: [a-z, ]*\bapi\b" "$selftest_log"; then
    echo "the bundle lacks a part of the app (see 'extra not installed' above): add that extra to the pip install in $0" >&2
    exit 1
  fi
  echo "== the bundle's HTTP API (imagedesk serve on a free loopback port)"
  env -u DISPLAY -u WAYLAND_DISPLAY "$VENV/bin/python" packaging/bundle_api_check.py "$DIST/imagedesk"
fi
echo "== done in $((SECONDS - started)) s: $DIST/imagedesk"
