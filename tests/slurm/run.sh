#!/usr/bin/env bash
# Sharding on a real Slurm: starts a single-node cluster here (tests/slurm/cluster.sh), submits `score` and
# `eval halueval` on stories260K as 4-task job arrays plus their merge jobs (deploy/slurm/submit.sh, chained
# with --dependency=afterok), waits, and compares the merged outputs byte for byte with the same commands run in
# one process. Exit 0: passed; 1: failed; 77: skipped (no ../shared, or Slurm cannot be installed here).
set -uo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
shared="$(dirname "$repo")/shared"
model="$shared/models/stories260K/stories260K.bin"
tokenizer="$shared/models/stories260K/tok512.bin"
halueval="$shared/data/halueval/qa_data_first1000.jsonl"
if [ ! -f "$model" ] || [ ! -f "$halueval" ]; then
  echo "slurm test: skipped: ../shared (stories260K, HaluEval-QA) is not beside this checkout"
  exit 77
fi
dll="$repo/src/TruthProbe.Cli/bin/Release/net10.0/TruthProbe.Cli.dll"
[ -f "$dll" ] || dotnet build "$repo/src/TruthProbe.Cli/TruthProbe.Cli.csproj" -c Release -nologo -v quiet -clp:ErrorsOnly >&2 || exit 1
export TRUTHPROBE="dotnet $dll"

work=$(mktemp -d)
source "$repo/tests/slurm/cluster.sh"
trap 'slurm_stop "$work/cluster"; rm -rf "$work"' EXIT
mkdir -p "$work/cluster"
slurm_start "$work/cluster"
case $? in
  0) ;;
  77) echo "slurm test: skipped: Slurm is not available here"; exit 77 ;;
  *) echo "slurm test: FAILED to start the cluster"; tail -n 5 "$work"/cluster/log/* 2>/dev/null; exit 1 ;;
esac

fail() { echo "slurm test: FAILED: $*"; exit 1; }

# Waits for job $1 to end (at most $2 s); fails unless it COMPLETED.
wait_job() {
  local id=$1 limit=$2 state="" i
  for i in $(seq 1 "$limit"); do
    state=$(scontrol show job "$id" -o 2>/dev/null | grep -oE 'JobState=[A-Z_]+' | head -n 1 | cut -d= -f2)
    case $state in COMPLETED) return 0 ;; FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY) break ;; esac
    # A merge waiting on a failed shard never starts: report that instead of waiting out the limit.
    if scontrol show job "$id" -o 2>/dev/null | grep -q 'Reason=DependencyNeverSatisfied'; then state=DependencyNeverSatisfied; break; fi
    sleep 1
  done
  echo "job $id: ${state:-unknown} after ${i}s"; cat "$work"/*.log 2>/dev/null | tail -n 20
  return 1
}

# Runs a verb in one process and as a 4-shard array + merge, then compares the listed files.
check() {
  local name=$1 files=$2
  shift 2
  $TRUTHPROBE "$@" --out "$work/$name-single" >"$work/$name-single.txt" 2>&1 || fail "$name in one process: $(tail -n 1 "$work/$name-single.txt")"
  local submitted merge
  submitted=$(cd "$work" && "$repo/deploy/slurm/submit.sh" 4 "$work/$name-parts" "$work/$name-merged" "$@") || fail "$name: sbatch refused the jobs"
  merge=$(sed -nE 's/.*merge: job ([0-9]+).*/\1/p' <<<"$submitted")
  wait_job "$merge" 240 || fail "$name: the merge job did not complete"
  local f
  for f in $files; do
    cmp -s "$work/$name-single/$f" "$work/$name-merged/$f" || fail "$name: $f differs between one process and 4 shards + merge"
  done
  echo "slurm test: $name: 4-task array + merge job byte-identical to one process ($files)"
}

check score "activations.safetensors scores.csv scores.npy probe_weights.safetensors heatmap.png" \
  score "$model" --tokenizer "$tokenizer" --data "$repo/data/tinystories_context_qa.jsonl" --samples 60
check halueval "items.jsonl" \
  eval halueval "$model" --tokenizer "$tokenizer" --data "$halueval" --limit 16 --seeds 1,2 --skip-long \
  --scores "$work/score-single/scores.npy" --mode contrast --lambda 2
# metrics.json records the run's seconds (the shards' sum after a merge); everything else must match.
diff <(grep -v '"seconds"' "$work/halueval-single/metrics.json") <(grep -v '"seconds"' "$work/halueval-merged/metrics.json") >/dev/null \
  || fail "halueval: metrics.json differs beyond its seconds"
echo "slurm test: passed"
