//! The process's own families, named as Prometheus's client libraries name them (`process_*`),
//! read from `/proc/self` at each scrape.

use crate::text::{Exposition, Kind};

/// Writes the process's CPU time, resident memory, open file descriptors and start time;
/// a family whose source cannot be read (not Linux) is left out.
pub fn write_process(out: &mut Exposition) {
    let stat = std::fs::read_to_string("/proc/self/stat").ok();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .as_deref()
        .and_then(|s| s.rsplit_once(')'))
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    let ticks = clock_ticks();
    if let (Some(utime), Some(stime)) = (field(14), field(15)) {
        let name = "process_cpu_seconds_total";
        out.family(
            name,
            "User and system CPU time spent, in seconds.",
            Kind::Counter,
        );
        out.sample(name, "", &[], (utime + stime) as f64 / ticks);
    }
    if let Some(kib) = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
    {
        let name = "process_resident_memory_bytes";
        out.family(name, "Resident memory size in bytes.", Kind::Gauge);
        out.sample(name, "", &[], kib * 1024);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        let name = "process_open_fds";
        out.family(name, "Number of open file descriptors.", Kind::Gauge);
        out.sample(name, "", &[], fds.count());
    }
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<u64>().ok())
    });
    if let (Some(boot), Some(start)) = (boot, field(22)) {
        let name = "process_start_time_seconds";
        out.family(
            name,
            "Start time of the process since the Unix epoch, in seconds.",
            Kind::Gauge,
        );
        out.sample(name, "", &[], boot as f64 + start as f64 / ticks);
    }
}

/// Clock ticks per second, the unit of `/proc/self/stat`'s times: `USER_HZ`, which Linux
/// fixes at 100 for user space on every architecture Shoal runs on.
fn clock_ticks() -> f64 {
    100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_memory_fds_and_a_start_time() {
        let mut out = Exposition::new();
        write_process(&mut out);
        let text = out.finish();
        // A test process may not have used a clock tick of CPU yet.
        for (family, least) in [
            ("process_cpu_seconds_total ", 0.0),
            ("process_resident_memory_bytes ", 1.0),
            ("process_open_fds ", 1.0),
            ("process_start_time_seconds ", 1.0),
        ] {
            let line = text.lines().find(|l| l.starts_with(family));
            let value: f64 = line.and_then(|l| l[family.len()..].parse().ok()).unwrap();
            assert!(value >= least, "{family} {value}\n{text}");
        }
    }
}
