#!/usr/bin/env bash
# The CLI as a .NET tool: packs it into a temporary folder, installs it from that folder alone (a NuGet config
# that clears every other source, so it works offline), and runs `truthprobe --help` and one small verb whose
# output is compared with the file the repository ships. Run after a Release build (.ci/run runs it after the
# test suite); prints "tool-install: ok" or the failing step, and exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
step() { echo "tool-install: $1" >&2; }

step "pack"
dotnet pack src/TruthProbe.Cli/TruthProbe.Cli.csproj -c Release --no-build -o "$tmp/feed" -nologo -v quiet >"$tmp/pack.log" 2>&1 \
  || { cat "$tmp/pack.log" >&2; step "FAILED: dotnet pack"; exit 1; }
cat >"$tmp/nuget.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="local" value="$tmp/feed" />
  </packageSources>
</configuration>
XML

step "install"
dotnet tool install truthprobe --tool-path "$tmp/tool" --configfile "$tmp/nuget.config" --add-source "$tmp/feed" >"$tmp/install.log" 2>&1 \
  || { cat "$tmp/install.log" >&2; step "FAILED: dotnet tool install"; exit 1; }

step "run"
"$tmp/tool/truthprobe" --help | grep -q "probing-set" || { step "FAILED: truthprobe --help does not list the verbs"; exit 1; }
"$tmp/tool/truthprobe" probing-set --help | grep -q -- "--out <FILE.jsonl> (REQUIRED)" || { step "FAILED: truthprobe probing-set --help"; exit 1; }
"$tmp/tool/truthprobe" probing-set --out "$tmp/rows.jsonl" >/dev/null
# The shipped probing set is this verb's output at its defaults (docs/probing.md).
cmp -s "$tmp/rows.jsonl" data/tinystories_context_qa.jsonl || { step "FAILED: probing-set differs from data/tinystories_context_qa.jsonl"; exit 1; }
echo "tool-install: ok"
