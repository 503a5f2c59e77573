#!/usr/bin/env bash
# Regenerates kjv-genesis-exodus.txt from Debian's bible-kjv packages
# (apt-get install -y bible-kjv-text bible-kjv). The output is committed; this is provenance.
set -euo pipefail
cd "$(dirname "$0")"
{
  bible -l80 "Genesis1:1-50:26"
  bible -l80 "Exodus1:1-40:38"
} > kjv-genesis-exodus.txt
