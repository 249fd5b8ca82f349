# CPU accounting from /proc, in clock ticks (getconf CLK_TCK), for the benchmark's scripts
# (sourced by run.sh and connect_sink.sh). Fields after "(comm) " in /proc/PID/stat: $12
# utime, $13 stime, $14 cutime, $15 cstime.

# proc_cpu_ticks PID: user+sys of one process so far (0 once it is gone).
proc_cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# pg_cpu_ticks POSTMASTER_PID: the PostgreSQL server so far: the postmaster and its live
# children (backends, background processes), plus what the postmaster collected from children
# that exited (cutime+cstime: backends of closed connections). Every server process is a child
# of the postmaster.
pg_cpu_ticks() {
	local child
	{
		awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$1/stat"
		for child in $(pgrep -P "$1" || true); do proc_cpu_ticks "$child"; done
	} | awk '{ s += $1 } END { print s + 0 }'
}

# sys_busy_ticks: busy ticks of the whole machine (everything but idle and iowait), for the load
# of others: the machine is shared, and what others run during a measurement shows here.
sys_busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
