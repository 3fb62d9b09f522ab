#!/usr/bin/env bash
# Formats every Swift file with the checked-in .swift-format (swift-format ships with the toolchain).
# --check: report files that need formatting and exit 1, changing nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--check" ]; then
  swift format lint --strict --recursive --configuration .swift-format Sources Tests Package.swift
else
  swift format --in-place --recursive --configuration .swift-format Sources Tests Package.swift
fi
