#!/usr/bin/env bash
# Debian packages the tests drive: Chromium (browser tests, via Playwright with executable_path —
# never a browser download), poppler-utils (pdftoppm renders report PDFs to PNG), fonts.
set -eu
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "${missing[@]}" >/dev/null; }
else
  echo "Missing Debian packages for the tests: ${missing[*]} (install them with: sudo apt-get install ${missing[*]})." >&2
  exit 1
fi
