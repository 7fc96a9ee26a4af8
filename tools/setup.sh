#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages Loupe needs to build and test, if any is missing.
set -euo pipefail

packages=(g++ make cmake ninja-build pkg-config libssl-dev libfmt-dev nlohmann-json3-dev libpcre2-dev
          libcli11-dev libgtest-dev libreadline-dev libcpp-httplib-dev libsqlite3-dev
          clang libclang-rt-14-dev)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm run the end-to-end tests through the official openai / ollama clients; a
# machine that already has them (e.g. from NodeSource) keeps its own.
if ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
# Ubuntu names the sanitizer runtime differently; clang alone is enough there.
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "loupe setup: installing missing packages: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1; then
  sudo="sudo"
else
  echo "loupe setup: error: need root or sudo to install: ${missing[*]}" >&2
  echo "  run as root: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
if ! $sudo apt-get install -y -qq "${missing[@]}"; then
  # libclang-rt-14-dev is only for fuzzing and not named so on every release.
  rest=()
  for p in "${missing[@]}"; do [ "$p" = libclang-rt-14-dev ] || rest+=("$p"); done
  $sudo apt-get install -y -qq "${rest[@]}"
fi
