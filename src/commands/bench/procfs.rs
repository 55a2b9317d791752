//! CPU time and memory of a process, from Linux's /proc.

/// CPU time (user + system) of process `pid` (or this process), in seconds.
pub(crate) fn cpu_seconds(pid: Option<u32>) -> f64 {
    let Ok(stat) = std::fs::read_to_string(proc_file(pid, "stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) in parentheses.
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat; 12 and 13 after the ")". Linux reports
    // them in clock ticks of 1/100 s (USER_HZ).
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident memory of process `pid` (or this process), KiB (VmHWM).
pub(crate) fn peak_rss_kib(pid: Option<u32>) -> u64 {
    status_kib(pid, "VmHWM:")
}

/// Resident memory of process `pid` (or this process) now, KiB (VmRSS).
pub(crate) fn rss_kib(pid: Option<u32>) -> u64 {
    status_kib(pid, "VmRSS:")
}

fn status_kib(pid: Option<u32>, field: &str) -> u64 {
    std::fs::read_to_string(proc_file(pid, "status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

fn proc_file(pid: Option<u32>, name: &str) -> String {
    match pid {
        Some(pid) => format!("/proc/{pid}/{name}"),
        None => format!("/proc/self/{name}"),
    }
}
