#!/usr/bin/env bash
# The first container: a busybox bundle, run with berth, narrated by --explain.
set -euo pipefail
dir=${1:-/tmp/berth-demo}
bash "$(dirname "$0")/mkbundle.sh" "$dir" sh -c 'echo "hello from a berth container: hostname $(hostname), I am pid $$"; ps; ls /'
berth --explain run --bundle "$dir" "demo-$$"
