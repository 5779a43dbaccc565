#!/usr/bin/env bash
# Stop the localhost SLURM started by slurm/start_cluster.sh, in either layout
# (each daemon by the pid in its pidfile; every node's slurmd). Jobs still
# running are cancelled first. Safe to run twice.
set -uo pipefail

say() { echo "[stop_cluster] $*" >&2; }

stop_pid() {  # pidfile comm
    local pid
    [[ -s $1 ]] || return 0
    pid=$(<"$1")
    [[ -r /proc/$pid/comm && $(</proc/"$pid"/comm) == "$2"* ]] || return 0
    say "stopping $2 (pid $pid)"
    kill "$pid" 2>/dev/null
    for _ in $(seq 100); do [[ -d /proc/$pid ]] || return 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
}

if command -v scancel >/dev/null && [[ -s /run/slurmctld.pid ]]; then
    scancel --user=root 2>/dev/null || true
fi
for pidfile in /run/slurmd.pid /run/slurmd-*.pid; do  # one node, or n1..nN
    [[ -e $pidfile ]] && stop_pid "$pidfile" slurmd
done
stop_pid /run/slurmctld.pid slurmctld
stop_pid /run/slurmdbd.pid slurmdbd
stop_pid /run/mysqld/mysqld.pid mariadbd
stop_pid /run/munge/munged.pid munged
say "stopped"
