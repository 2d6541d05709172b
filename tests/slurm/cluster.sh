#!/usr/bin/env bash
# A single-node Slurm cluster on this machine for the sharding test: munge plus slurmctld and one slurmd, all
# under a scratch folder. Source it; `slurm_start DIR` starts the cluster (installing Debian's slurm-wlm and munge
# when they are missing and apt can), `slurm_stop` stops it. Returns 77 when Slurm cannot be had here.
slurm_start() {
  local dir=$1
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
      echo "slurm: slurm-wlm and munge are not installed and cannot be (needs root and apt-get)" >&2
      return 77
    fi
    echo "slurm: installing slurm-wlm and munge (Debian packages)..." >&2
    if ! timeout 300 env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge >"$dir/apt.log" 2>&1; then
      echo "slurm: apt-get install failed (no package mirror?); see $dir/apt.log" >&2
      return 77
    fi
  fi
  mkdir -p "$dir/state" "$dir/spool" "$dir/munge" "$dir/log"
  # munge: its own key and socket under DIR, so that a munged already running on the machine is left alone.
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$dir/munge/munge.key"
  SLURM_MUNGE_SOCKET="$dir/munge/socket"
  munged --force --key-file="$dir/munge/munge.key" --socket="$SLURM_MUNGE_SOCKET" --pid-file="$dir/munge/pid" \
    --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed" || return 1
  local node cpus port
  node=$(hostname -s)
  cpus=$(nproc)
  # Ports of our own, from the shell's pid: two test runs on one machine must not share a controller.
  port=$((20000 + ($$ % 20000) * 2))
  cat >"$dir/slurm.conf" <<CONF
ClusterName=truthprobe-test
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$SLURM_MUNGE_SOCKET
CredType=cred/munge
SlurmctldPort=$port
SlurmdPort=$((port + 1))
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=$node Default=YES MaxTime=30 State=UP
CONF
  export SLURM_CONF="$dir/slurm.conf"
  slurmctld -i || return 1
  slurmd || return 1
  local i
  for i in $(seq 1 60); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed)'; then return 0; fi
    sleep 1
  done
  echo "slurm: the node did not come up in 60 s; see $dir/log" >&2
  return 1
}

slurm_stop() {
  local dir=$1 f pid i
  for f in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/pid"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || continue
    # Wait for it to exit: slurmctld saves its state on the way out, into the folder the caller removes next.
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  done
  return 0
}
