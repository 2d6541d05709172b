#!/usr/bin/env bash
# Runs the sharded job and then its merge on the current kubectl context:
#   deploy/k8s/run.sh            (edit indexed-job.yaml / merge-job.yaml first: image, model, data, shard count)
# A failed index is retried up to backoffLimitPerIndex times and resumes from its part folder; only it reruns.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kubectl apply -f "$here/indexed-job.yaml"
kubectl wait --for=condition=complete --timeout=48h job/truthprobe-score
kubectl apply -f "$here/merge-job.yaml"
kubectl wait --for=condition=complete --timeout=2h job/truthprobe-score-merge
kubectl logs job/truthprobe-score-merge
