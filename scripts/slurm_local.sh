#!/usr/bin/env bash
# A one-node SLURM cluster on localhost, for CI and for trying sweeps on a laptop/VM.
#
#   scripts/slurm_local.sh install   # apt-get slurm-wlm + munge (skipped when present)
#   scripts/slurm_local.sh start     # install if needed, write slurm.conf, start daemons, wait for idle
#   scripts/slurm_local.sh status    # exit 0 only when the controller answers and the node is usable
#   scripts/slurm_local.sh stop      # stop slurmd, slurmctld (and slurmdbd/mariadb if we started them)
#
# No systemd and no cgroups (containers/VMs): daemons are started by hand as root, with
# proctrack/linuxproc and task/none. Two partitions: `local` (default) and `local-high`, a
# higher PriorityTier that preempts `local` jobs by requeueing them (preemption tests).
#
# Accounting (slurmdbd + MariaDB, ~12 s more on first install) makes `sacct` work, so Submitit's
# `job.state` is real instead of UNKNOWN. On by default; SUITE_SLURM_ACCOUNTING=0 skips it (the
# sweep layer does not need it: it asks `squeue` and its own state files).
#
# Environment: SUITE_SLURM_DIR (state/config dir, default /tmp/suite-slurm),
# SUITE_SLURM_CPUS (default: nproc), SUITE_SLURM_MEM_MB (default: 80% of MemTotal),
# SUITE_SLURM_ACCOUNTING (1|0, default 1).
set -euo pipefail

DIR=${SUITE_SLURM_DIR:-/tmp/suite-slurm}
CONF=$DIR/slurm.conf
NODE=$(hostname -s)
CPUS=${SUITE_SLURM_CPUS:-$(nproc)}
MEM_MB=${SUITE_SLURM_MEM_MB:-$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)}
ACCOUNTING=${SUITE_SLURM_ACCOUNTING:-1}
export SLURM_CONF=$CONF

log() { echo "slurm_local: $*" >&2; }
die() { log "error: $*"; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts daemons)"; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

cmd_install() {
  local pkgs=() acct=()
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sinfo >/dev/null \
    || pkgs+=(slurm-wlm)
  command -v munged >/dev/null || pkgs+=(munge)
  if [ "$ACCOUNTING" = 1 ]; then
    command -v slurmdbd >/dev/null || acct+=(slurmdbd)
    command -v mariadbd >/dev/null || acct+=(mariadb-server)
  fi
  if [ ${#pkgs[@]} -eq 0 ] && [ ${#acct[@]} -eq 0 ]; then
    log "packages present, skipping install"
    return 0
  fi
  need_root
  log "installing ${pkgs[*]} ${acct[*]}"
  apt-get update -qq
  if [ ${#pkgs[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  fi
  if [ ${#acct[@]} -gt 0 ] && ! DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "${acct[@]}" >/dev/null; then
    log "warning: could not install ${acct[*]}; running without accounting (job states come from squeue)"
    ACCOUNTING=0
  fi
}

write_conf() {
  mkdir -p "$DIR"/{state,spool,log,run}
  local acct="AccountingStorageType=accounting_storage/none"
  if [ "$ACCOUNTING" = 1 ]; then
    acct="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=6819"
  fi
  cat >"$CONF.tmp" <<EOF
# written by scripts/slurm_local.sh: one node, no systemd, no cgroups
ClusterName=suite-local
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
AuthInfo=cred_expire=10
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
$acct
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
ReturnToService=2
JobRequeue=1
MailProg=/bin/true
InactiveLimit=0
KillWait=5
MinJobAge=300
SchedulerParameters=bf_interval=1,sched_interval=2
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
SlurmctldParameters=preempt_send_user_signal
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=local Nodes=$NODE Default=YES MaxTime=INFINITE State=UP PriorityTier=1
PartitionName=local-high Nodes=$NODE Default=NO MaxTime=INFINITE State=UP PriorityTier=10
EOF
  mv "$CONF.tmp" "$CONF"
  # Debian's client tools read /etc/slurm/slurm.conf; keep a foreign file aside instead of clobbering it.
  mkdir -p /etc/slurm
  if [ -e /etc/slurm/slurm.conf ] && [ ! -L /etc/slurm/slurm.conf ]; then
    mv /etc/slurm/slurm.conf "/etc/slurm/slurm.conf.bak.$(date +%s)"
  fi
  ln -sfn "$CONF" /etc/slurm/slurm.conf
}

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge/munge.key 2>/dev/null || true
  chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
  runuser -u munge -- /usr/sbin/munged --force
  for _ in $(seq 50); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  die "munged did not start (see /var/log/munge/munged.log)"
}

start_accounting() {
  [ "$ACCOUNTING" = 1 ] || return 0
  local db=$DIR/mysql sock=$DIR/run/mysqld.sock
  if ! [ -S "$sock" ] || ! mysqladmin --socket="$sock" ping >/dev/null 2>&1; then
    if [ ! -d "$db/mysql" ]; then
      mkdir -p "$db"
      mariadb-install-db --user=root --datadir="$db" --auth-root-authentication-method=normal >/dev/null
    fi
    (mariadbd --user=root --datadir="$db" --socket="$sock" --skip-networking=0 --bind-address=127.0.0.1 \
       --port=3307 --pid-file="$DIR/run/mysqld.pid" >"$DIR/log/mysqld.log" 2>&1 &)
    for _ in $(seq 100); do mysqladmin --socket="$sock" ping >/dev/null 2>&1 && break; sleep 0.2; done
    mysql --socket="$sock" -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db" \
      || die "mariadb did not start (see $DIR/log/mysqld.log)"
  fi
  cat >"$DIR/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
PidFile=$DIR/run/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3307
StorageUser=root
StorageLoc=slurm_acct_db
EOF
  chmod 600 "$DIR/slurmdbd.conf"
  ln -sfn "$DIR/slurmdbd.conf" /etc/slurm/slurmdbd.conf
  if ! pid_alive "$DIR/run/slurmdbd.pid"; then
    /usr/sbin/slurmdbd
    for _ in $(seq 50); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.2; done
  fi
  sacctmgr -i add cluster suite-local >/dev/null 2>&1 || true
}

cluster_up() {
  local states
  states=$(timeout 10 sinfo -h -o %t 2>/dev/null) || return 1
  echo "$states" | grep -Eq '^(idle|mix|alloc|comp)' 
}

cmd_start() {
  need_root
  cmd_install
  if pid_alive "$DIR/run/slurmctld.pid" && pid_alive "$DIR/run/slurmd.pid" && cluster_up; then
    log "already running"
    cmd_partitions
    return 0
  fi
  write_conf
  start_munge
  start_accounting
  pid_alive "$DIR/run/slurmctld.pid" || /usr/sbin/slurmctld
  pid_alive "$DIR/run/slurmd.pid" || /usr/sbin/slurmd -N "$NODE"
  local st=""
  for i in $(seq 150); do
    st=$(timeout 5 sinfo -h -N -o %t 2>/dev/null | head -1 || true)
    case "$st" in
      idle|mix|alloc|comp) break ;;
      down*|drain*|drng*) scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 0.2
  done
  cluster_up || die "node never became idle (state '${st}'); see $DIR/log/slurmctld.log and slurmd.log"
  log "up: $CPUS CPUs, ${MEM_MB} MB, config $CONF"
  cmd_partitions
}

cmd_partitions() { sinfo -h -o %R | sort -u; }

stop_pidfile() {
  local f=$1 name=$2
  if pid_alive "$f"; then
    local pid
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    log "stopped $name"
  fi
  rm -f "$f"
}

cmd_stop() {
  need_root
  stop_pidfile "$DIR/run/slurmd.pid" slurmd
  stop_pidfile "$DIR/run/slurmctld.pid" slurmctld
  stop_pidfile "$DIR/run/slurmdbd.pid" slurmdbd
  stop_pidfile "$DIR/run/mysqld.pid" mariadb
  # munged is left running: it is shared with anything else on the machine that uses munge.
}

cmd_status() {
  if { pid_alive "$DIR/run/slurmctld.pid" || pgrep -x slurmctld >/dev/null; } && cluster_up; then
    sinfo -o "%P %a %D %t %c %m"
    return 0
  fi
  log "not running (sinfo cannot reach a usable node; run scripts/slurm_local.sh start)"
  return 1
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 {install|start|stop|status}" >&2; exit 2 ;;
esac
