#!/usr/bin/env bash
# Add ImageDesk to the Linux desktop's application menu (per user, no root):
# the .desktop entry, the icons in the hicolor theme and the AppStream metainfo,
# under ${XDG_DATA_HOME:-~/.local/share}.
#
#   ./install-desktop-entry.sh              # from an unpacked bundle: points at ./imagedesk
#   packaging/install-desktop-entry.sh /path/to/imagedesk-cloud
#   packaging/install-desktop-entry.sh --uninstall
set -euo pipefail
APP_ID="io.github.imagedesk.ImageDesk"
DATA="${XDG_DATA_HOME:-$HOME/.local/share}"
here="$(cd "$(dirname "$0")" && pwd)"

if [[ "${1:-}" == "--uninstall" ]]; then
  rm -f "$DATA/applications/$APP_ID.desktop" "$DATA/metainfo/$APP_ID.metainfo.xml" \
        "$DATA/icons/hicolor/scalable/apps/$APP_ID.svg"
  rm -f "$DATA"/icons/hicolor/*x*/apps/"$APP_ID.png"
  echo "removed ImageDesk's menu entry and icons from $DATA"
  exit 0
fi

bundle="${1:-$here}"
bundle="$(cd "$bundle" && pwd)"
if [[ -x "$bundle/imagedesk" && -d "$bundle/_internal/desktop_app/data" ]]; then
  exe="$bundle/imagedesk"; res="$bundle/_internal/desktop_app/data"
elif [[ -d "$here/../desktop_app/data/linux" ]]; then  # a source checkout: use the imagedesk on PATH
  exe="$(command -v imagedesk || true)"; res="$(cd "$here/../desktop_app/data" && pwd)"
  [[ -n "$exe" ]] || { echo "imagedesk is not on PATH: pip install it first" >&2; exit 1; }
else
  echo "no ImageDesk bundle in $bundle" >&2; exit 1
fi

mkdir -p "$DATA/applications" "$DATA/metainfo" "$DATA/icons/hicolor/scalable/apps"
sed -e "s|^Exec=.*|Exec=\"$exe\"|" -e "s|^TryExec=.*|TryExec=$exe|" \
  "$res/linux/$APP_ID.desktop" > "$DATA/applications/$APP_ID.desktop"
cp "$res/linux/$APP_ID.metainfo.xml" "$DATA/metainfo/"
cp "$res/icons/imagedesk.svg" "$DATA/icons/hicolor/scalable/apps/$APP_ID.svg"
for png in "$res"/icons/imagedesk-*.png; do
  size="$(basename "$png" .png)"; size="${size#imagedesk-}"
  mkdir -p "$DATA/icons/hicolor/${size}x${size}/apps"
  cp "$png" "$DATA/icons/hicolor/${size}x${size}/apps/$APP_ID.png"
done
command -v update-desktop-database >/dev/null && update-desktop-database -q "$DATA/applications" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$DATA/icons/hicolor" || true
echo "ImageDesk is in the application menu ($DATA/applications/$APP_ID.desktop -> $exe)"
