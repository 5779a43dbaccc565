#!/usr/bin/env bash
# Start a SLURM on localhost: munge, MariaDB + slurmdbd (so sacct works),
# slurmctld and one slurmd per node. For development and CI of the `slurm`
# launcher.
#
# Layouts: one node named after the host (the default), or `--nodes N` (2-4)
# nodes n1..nN on this one machine, one slurmd each (Debian's slurmd is built
# with multiple-slurmd support). Both "nodes" share the host name, 127.0.0.1,
# the file system and the real cores: see slurm/README.md for what this cannot
# catch.
#
# Idempotent: installs the Debian packages if missing, (re)writes the configs,
# starts only the daemons that are not running (restarts those whose config
# changed; switching layouts is such a change, and stops the other layout's
# slurmd) and returns once `sinfo` shows every node up and `sacct` answers.
# No systemd: daemons are started directly. Needs root.
#
#   bash slurm/start_cluster.sh             # start / check (one node)
#   bash slurm/start_cluster.sh --nodes 2   # start / check / switch to two nodes
#   bash slurm/stop_cluster.sh              # stop (either layout)
#
# Knobs (environment): FCAP_SLURM_NODES (default 1; --nodes wins),
# FCAP_SLURM_CLUSTER (cluster name, default fcap), FCAP_SLURM_PARTITION
# (default debug), FCAP_SLURM_WAIT_S (default 90).
set -euo pipefail

NODES=${FCAP_SLURM_NODES:-1}
while (($#)); do
    case $1 in
        --nodes) NODES=${2:-}; shift 2 || { echo "--nodes needs a value" >&2; exit 2; } ;;
        --nodes=*) NODES=${1#--nodes=}; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "start_cluster.sh: unknown argument '$1' (known: --nodes N)" >&2; exit 2 ;;
    esac
done
[[ $NODES =~ ^[1-4]$ ]] || { echo "start_cluster.sh: --nodes must be 1 to 4, got '$NODES'" >&2; exit 2; }

CLUSTER=${FCAP_SLURM_CLUSTER:-fcap}
PARTITION=${FCAP_SLURM_PARTITION:-debug}
WAIT_S=${FCAP_SLURM_WAIT_S:-90}
DB_PASS=fcap-slurm-local   # localhost-only MariaDB bound to 127.0.0.1
CONF_DIR=/etc/slurm
LOG_DIR=/var/log/slurm
PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)

say() { echo "[start_cluster] $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

[[ $(id -u) == 0 ]] || die "must run as root (daemons and /etc/slurm)"

# One instance at a time: CI and a developer may both call this. Daemons are
# started with 9>&- so they do not inherit (and hold) the lock.
exec 9>/run/fcap-slurm.lock
flock -w 300 9 || die "another start_cluster.sh holds /run/fcap-slurm.lock"

# Is the process in PIDFILE alive and named COMM?
alive() {  # pidfile comm
    local pid
    [[ -s $1 ]] || return 1
    pid=$(<"$1")
    [[ -r /proc/$pid/comm ]] && [[ $(</proc/"$pid"/comm) == "$2"* ]]
}

# Stop the process in PIDFILE (by its id) and wait until it is gone.
stop_pid() {  # pidfile comm
    alive "$1" "$2" || return 0
    local pid; pid=$(<"$1")
    say "stopping $2 (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do [[ -d /proc/$pid ]] || return 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
}

# Wait up to WAIT_S seconds for "$@" to succeed.
wait_for() {  # description command...
    local what=$1; shift
    local deadline=$((SECONDS + WAIT_S))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
    say "$what: ok"
}

# Write FILE from stdin only if its content changed; return 0 when it did.
write_if_changed() {  # file mode
    local tmp; tmp=$(mktemp)
    cat >"$tmp"
    if [[ -f $1 ]] && cmp -s "$tmp" "$1"; then rm -f "$tmp"; return 1; fi
    install -m "$2" "$tmp" "$1"; rm -f "$tmp"
    return 0
}

# --- packages ---------------------------------------------------------------
missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # policy-rc.d may refuse to start services in containers; that is fine here.
    apt-get install -y -qq "${missing[@]}" >/tmp/fcap-slurm-apt.log 2>&1 \
        || { tail -20 /tmp/fcap-slurm-apt.log >&2; die "apt-get install failed"; }
fi

# --- host name must resolve (slurmctld checks SlurmctldHost against it) -------
HOST=$(hostname -s)
if ! getent hosts "$HOST" >/dev/null; then
    say "adding $HOST to /etc/hosts"
    echo "127.0.0.1 $HOST" >>/etc/hosts
fi

# The layout: node names, and each slurmd's pid file and `slurmd` arguments.
# One node keeps the single-node names (/run/slurmd.pid, no -N) it always had.
if ((NODES == 1)); then
    NODE_NAMES=("$HOST")
else
    NODE_NAMES=()
    for i in $(seq "$NODES"); do NODE_NAMES+=("n$i"); done
    # Jobs use the first node's name as MASTER_ADDR: it must resolve (to this host).
    for name in "${NODE_NAMES[@]}"; do
        if ! getent hosts "$name" >/dev/null; then
            say "adding $name to /etc/hosts"
            echo "127.0.0.1 $name" >>/etc/hosts
        fi
    done
fi
slurmd_pidfile() { ((NODES == 1)) && echo /run/slurmd.pid || echo "/run/slurmd-$1.pid"; }

mkdir -p "$CONF_DIR" "$LOG_DIR" /var/spool/slurmctld /var/spool/slurmd /run/mysqld
for name in "${NODE_NAMES[@]}"; do ((NODES == 1)) || mkdir -p "/var/spool/slurmd-$name"; done
chown mysql:mysql /run/mysqld

# --- munge (must run as user munge; it rejects a root-owned key) -------------
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge /etc/munge
if [[ ! -s /etc/munge/munge.key ]]; then
    say "creating /etc/munge/munge.key"
    runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    say "starting munged"
    runuser -u munge -- /usr/sbin/munged --force 9>&-
    wait_for "munge" bash -c 'munge -n | unmunge' || die "munged did not start"
fi

# --- MariaDB + accounting database --------------------------------------------
[[ -d /var/lib/mysql/mysql ]] || mariadb-install-db --user=mysql >/dev/null
if ! mariadb-admin --protocol=socket ping >/dev/null 2>&1; then
    say "starting mariadbd"
    setsid /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 \
        --pid-file=/run/mysqld/mysqld.pid --socket=/run/mysqld/mysqld.sock \
        </dev/null >>"$LOG_DIR/mariadb.log" 2>&1 9>&- &
    wait_for "mariadb" mariadb-admin --protocol=socket ping \
        || { tail -20 "$LOG_DIR/mariadb.log" >&2; die "mariadbd did not start"; }
fi
mariadb --protocol=socket <<SQL
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
SQL

# --- configs --------------------------------------------------------------------
dbd_changed=0
write_if_changed "$CONF_DIR/slurmdbd.conf" 0600 <<EOF && dbd_changed=1
# Written by fcap slurm/start_cluster.sh
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=/run/slurmdbd.pid
LogFile=$LOG_DIR/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF

# The node lines come from `slurmd -C` so CPUs/memory match what slurmd sees
# (a larger claim drains the node). UpTime is not a config key. With several
# nodes each claims the whole machine: SLURM sees NODES x the real cores.
HARDWARE=$(slurmd -C | head -1 | sed -E "s/^NodeName=[^ ]+ //")
if ((NODES == 1)); then
    SLURMD_FILES="SlurmdSpoolDir=/var/spool/slurmd
SlurmdPidFile=/run/slurmd.pid
SlurmdLogFile=$LOG_DIR/slurmd.log"
    NODE_LINES="NodeName=$HOST NodeAddr=127.0.0.1 $HARDWARE"
    LAYOUT="single-node test cluster on localhost"
else
    # %n: the node name, so each slurmd on this host has its own files.
    SLURMD_FILES="SlurmdSpoolDir=/var/spool/slurmd-%n
SlurmdPidFile=/run/slurmd-%n.pid
SlurmdLogFile=$LOG_DIR/slurmd-%n.log"
    NODE_LINES=""
    for i in $(seq "$NODES"); do
        NODE_LINES+="NodeName=n$i NodeHostname=$HOST NodeAddr=127.0.0.1 Port=$((17000 + i)) $HARDWARE"$'\n'
    done
    NODE_LINES=${NODE_LINES%$'\n'}
    LAYOUT="$NODES-node test cluster, every node on this host (slurmd -N n<i>)"
fi
ctl_changed=0
write_if_changed "$CONF_DIR/slurm.conf" 0644 <<EOF && ctl_changed=1
# Written by fcap slurm/start_cluster.sh: $LAYOUT.
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# Requeue speed: a requeued job becomes eligible cred_expire+1 s later (default 120).
AuthInfo=cred_expire=5
StateSaveLocation=/var/spool/slurmctld
SlurmctldPidFile=/run/slurmctld.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
$SLURMD_FILES
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# The main loop (default every 60 s) is what starts a requeued job once eligible.
SchedulerParameters=bf_interval=1,sched_interval=1
JobRequeue=1
ReturnToService=2
MailProg=/bin/true
KillWait=5
MinJobAge=600
InactiveLimit=0
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
$(sed 's/$/ State=UNKNOWN/' <<<"$NODE_LINES")
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

# --- slurmdbd, then the cluster in accounting, then slurmctld and slurmd --------
((dbd_changed)) && stop_pid /run/slurmdbd.pid slurmdbd
if ! alive /run/slurmdbd.pid slurmdbd; then
    say "starting slurmdbd"
    /usr/sbin/slurmdbd 9>&-
fi
wait_for "slurmdbd" sacctmgr -n show cluster \
    || { tail -20 "$LOG_DIR/slurmdbd.log" >&2; die "slurmdbd does not answer"; }
if ! sacctmgr -n -P show cluster format=cluster | grep -qx "$CLUSTER"; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
fi

# Every slurmd pid file of either layout; those not of this layout are stopped
# (a switch of layouts), all of them when slurm.conf changed.
wanted=()
for name in "${NODE_NAMES[@]}"; do wanted+=("$(slurmd_pidfile "$name")"); done
for pidfile in /run/slurmd.pid /run/slurmd-*.pid; do
    [[ -e $pidfile ]] || continue
    if ((ctl_changed)) || [[ " ${wanted[*]} " != *" $pidfile "* ]]; then
        stop_pid "$pidfile" slurmd
    fi
done
((ctl_changed)) && stop_pid /run/slurmctld.pid slurmctld
if ! alive /run/slurmctld.pid slurmctld; then
    say "starting slurmctld"
    /usr/sbin/slurmctld 9>&-
fi
for name in "${NODE_NAMES[@]}"; do
    if ! alive "$(slurmd_pidfile "$name")" slurmd; then
        say "starting slurmd for node $name"
        if ((NODES == 1)); then /usr/sbin/slurmd 9>&-; else /usr/sbin/slurmd -N "$name" 9>&-; fi
    fi
done

node_up() {  # name
    local state
    state=$(sinfo -h -n "$1" -o %T 2>/dev/null) || return 1
    case $state in
        idle | mixed | allocated | completing) return 0 ;;
        down* | drain*)  # a restart may leave it down; ReturnToService=2 usually fixes it
            scontrol update NodeName="$1" State=RESUME >/dev/null 2>&1 || true
            return 1 ;;
        *) return 1 ;;
    esac
}
for name in "${NODE_NAMES[@]}"; do
    wait_for "node $name up" node_up "$name" || {
        sinfo -N -l >&2 || true; tail -20 "$LOG_DIR/slurmctld.log" "$LOG_DIR"/slurmd*.log >&2
        die "node $name not up after ${WAIT_S}s"
    }
done
# sacct answers only once slurmctld has registered with slurmdbd.
sacct_ok() { out=$(sacct -n -X -S now-1minutes 2>&1) && ! grep -qi error <<<"$out"; }
wait_for "sacct" sacct_ok || die "sacct does not work: $(sacct -n -X 2>&1 | head -3)"
say "cluster '$CLUSTER' ready: $(sinfo -h -o '%P %D nodes (%N) %T %c cpus')"
