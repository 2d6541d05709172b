#!/usr/bin/env bash
# Submits a truthprobe run as a Slurm job array of N shards plus the merge job that waits for all of them.
# usage: deploy/slurm/submit.sh N RUN_DIR OUT VERB [ARGS...]
#   e.g. deploy/slurm/submit.sh 8 /shared/runs/llava-score /shared/results/llava-score score /shared/models/llava-1.5-7b-hf --data rows.jsonl
# Extra sbatch options (partition, time, memory) go in SBATCH_* variables or TRUTHPROBE_SBATCH_ARGS.
# Prints the two job ids. A failed shard: rerun it alone (sbatch --array=K ... shard.sbatch, same arguments; it
# resumes), then submit merge.sbatch again.
set -euo pipefail
if [ $# -lt 4 ]; then
  echo "usage: $0 N RUN_DIR OUT VERB [ARGS...]" >&2
  exit 2
fi
n=$1 run_dir=$2 out=$3
shift 3
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
read -r -a extra <<<"${TRUTHPROBE_SBATCH_ARGS:-}"
mkdir -p "$run_dir"
array=$(sbatch --parsable "${extra[@]}" --array="0-$((n - 1))" --chdir="$PWD" "$here/shard.sbatch" "$run_dir" "$@")
merge=$(sbatch --parsable "${extra[@]}" --dependency="afterok:${array%%;*}" --chdir="$PWD" "$here/merge.sbatch" "$run_dir" "$out")
echo "shards: job ${array%%;*} (array 0-$((n - 1))); merge: job ${merge%%;*} -> $out"
