#!/usr/bin/env bash
# Starts the embedded service: gateway + silo in ONE process on http://127.0.0.1:8000 (localhost
# clustering, nothing external). Extra arguments go to the gateway (e.g. --stream:relay_enabled=true).
# Ctrl-C or SIGTERM stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
dotnet build gateway/Blankend.Orleans.Gateway.csproj -c Release -nologo -v quiet
# Recordings go to the repository's git-ignored data/ (recording:folder defaults to data/recordings under the
# working directory, which is the repository root here).
mkdir -p data/recordings
exec dotnet gateway/bin/Release/net10.0/Blankend.Orleans.Gateway.dll --urls "${BLANKEND_URLS:-http://127.0.0.1:8000}" "$@"
