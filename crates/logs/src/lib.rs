//! Per-app logs on disk: guest stdout/stderr and runtime events, timestamped and bounded.
//!
//! Each app has `DIR/<namespace>/<name>.log` and at most one older `<name>.log.1`; when the
//! current file would pass half the app's budget it becomes `.1` (replacing the older one), so
//! an app never holds more than its budget on disk however much it writes.
//! A line is `<RFC 3339 timestamp> <stream> <text>`, where stream is `stdout`, `stderr` or
//! `shoal` (events such as traps, limit hits and denied capabilities). Lines are buffered in
//! memory and written out within [`FLUSH_EVERY`] (see [`flush`]); a read sees every line
//! written before it.

mod flush;

pub use flush::{BUFFERED, FLUSH_EVERY};

use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Longest line kept; longer lines are cut and marked.
pub const MAX_LINE: usize = 16 * 1024;

/// Writers already open, by (namespace, name).
type OpenLogs = HashMap<(String, String), Arc<AppLog>>;

/// The directory of every app's log.
#[derive(Clone, Debug)]
pub struct LogDir {
    root: PathBuf,
    budget: u64,
    open: Arc<Mutex<OpenLogs>>,
    writer: Arc<flush::Writer>,
}

/// One app's log, appended to by all of its instances.
#[derive(Debug)]
pub struct AppLog {
    path: PathBuf,
    half_budget: u64,
    state: Mutex<LogState>,
    flusher: Arc<flush::Flusher>,
}

#[derive(Debug, Default)]
struct LogState {
    /// The file and its length, once opened.
    file: Option<(File, u64)>,
    /// Lines not yet in the file.
    buffered: String,
    /// The log was removed: its lines go nowhere.
    removed: bool,
}

impl LogDir {
    /// Logs under `root`, each app allowed `budget` bytes on disk.
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn open(root: PathBuf, budget: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(&root)?;
        Ok(Self {
            root,
            budget: budget.max(2 * MAX_LINE as u64),
            open: Arc::default(),
            writer: Arc::new(flush::Writer::start()?),
        })
    }

    /// Writes every log's buffered lines to its file now (a node does as it stops).
    pub fn flush(&self) {
        self.writer.flusher.flush();
    }

    fn path(&self, namespace: &str, name: &str) -> PathBuf {
        self.root.join(namespace).join(format!("{name}.log"))
    }

    /// [`LogDir::path`] for names that come from a request: only a log of this directory, a
    /// scope of one or two labels (`NAMESPACE`, `NAMESPACE/JOB`) and a label as the name, so
    /// no absolute path and no `..` ever leaves the directory.
    fn checked_path(&self, namespace: &str, name: &str) -> std::io::Result<PathBuf> {
        let scope: Vec<&str> = namespace.split('/').collect();
        if scope.len() > 2 || !scope.iter().chain([&name]).all(|l| is_label(l)) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "no log is named {namespace:?}/{name:?}: a scope is NAMESPACE or NAMESPACE/JOB and a name a lowercase label"
                ),
            ));
        }
        Ok(self.path(namespace, name))
    }

    /// The writer of app `namespace/name`'s log (shared, opened on first use).
    pub fn app(&self, namespace: &str, name: &str) -> Arc<AppLog> {
        let mut open = self.open.lock().expect("log table poisoned");
        open.entry((namespace.to_string(), name.to_string()))
            .or_insert_with(|| {
                Arc::new(AppLog {
                    path: self.path(namespace, name),
                    half_budget: self.budget / 2,
                    state: Mutex::default(),
                    flusher: self.writer.flusher.clone(),
                })
            })
            .clone()
    }

    /// The app's log lines, oldest first: those at or after `since`, then the last `tail`.
    ///
    /// # Errors
    /// A log file exists but cannot be read.
    pub fn read(
        &self,
        namespace: &str,
        name: &str,
        since: Option<DateTime<Utc>>,
        tail: Option<usize>,
    ) -> std::io::Result<Vec<String>> {
        let current = self.checked_path(namespace, name)?;
        let key = (namespace.to_string(), name.to_string());
        let log = self
            .open
            .lock()
            .expect("log table poisoned")
            .get(&key)
            .cloned();
        if let Some(log) = log {
            log.flush();
        }
        let mut lines = Vec::new();
        for path in [rotated(&current), current] {
            match File::open(&path) {
                Ok(f) => lines.extend(BufReader::new(f).lines().map_while(Result::ok)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(since) = since {
            lines.retain(|l| line_time(l).is_none_or(|t| t >= since));
        }
        if let Some(n) = tail {
            let skip = lines.len().saturating_sub(n);
            lines.drain(..skip);
        }
        Ok(lines)
    }

    /// The writer of run `run` of job `namespace/job`: `DIR/<namespace>/<job>/<run>.log`, so
    /// each run has its own budget and a job's logs go together.
    pub fn job_run(&self, namespace: &str, job: &str, run: u64) -> Arc<AppLog> {
        self.app(&job_scope(namespace, job), &run.to_string())
    }

    /// Removes the log of one run of a job.
    pub fn remove_job_run(&self, namespace: &str, job: &str, run: u64) {
        self.remove(&job_scope(namespace, job), &run.to_string());
    }

    /// Removes the logs of every run of a job.
    pub fn remove_job(&self, namespace: &str, job: &str) {
        let scope = job_scope(namespace, job);
        self.open
            .lock()
            .expect("log table poisoned")
            .retain(|(ns, _), log| {
                let keep = *ns != scope;
                if !keep {
                    log.remove();
                }
                keep
            });
        let _ = std::fs::remove_dir_all(self.root.join(scope));
    }

    /// Removes an app's log files.
    pub fn remove(&self, namespace: &str, name: &str) {
        let current = self.path(namespace, name);
        let log = self
            .open
            .lock()
            .expect("log table poisoned")
            .remove(&(namespace.to_string(), name.to_string()));
        if let Some(log) = log {
            log.remove();
        }
        let _ = std::fs::remove_file(rotated(&current));
        let _ = std::fs::remove_file(current);
    }
}

/// A DNS-1123 label (what object names and run numbers are): lowercase letters, digits and
/// `-`, at most 63, starting and ending with a letter or digit.
fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Where the logs of job `namespace/job` live, as the `namespace` argument of [`LogDir::read`]
/// (with the run number as its `name`).
pub fn job_scope(namespace: &str, job: &str) -> String {
    format!("{namespace}/{job}")
}

fn rotated(path: &Path) -> PathBuf {
    path.with_extension("log.1")
}

/// The timestamp a log line starts with.
pub fn line_time(line: &str) -> Option<DateTime<Utc>> {
    let stamp = line.split(' ').next()?;
    DateTime::parse_from_rfc3339(stamp)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl AppLog {
    /// Appends one line from `stream` (to the file within [`FLUSH_EVERY`]); IO errors are
    /// reported through tracing and the lines dropped, because a full disk must not fail the
    /// guest's request.
    pub fn write_line(self: &Arc<Self>, stream: &str, text: &[u8]) {
        let text = String::from_utf8_lossy(&text[..text.len().min(MAX_LINE)]);
        let cut = if text.len() >= MAX_LINE {
            " [line cut]"
        } else {
            ""
        };
        let mut state = self.state.lock().expect("log file poisoned");
        if state.removed {
            return;
        }
        let before = state.buffered.len();
        let _ = writeln!(
            state.buffered,
            "{} {stream} {}{cut}",
            Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            text.trim_end_matches(['\n', '\r'])
        );
        // What is written out at once stays within half the budget, as a file does.
        let limit = BUFFERED.min(usize::try_from(self.half_budget).unwrap_or(usize::MAX));
        if state.buffered.len() > limit {
            if before > 0 {
                self.write_out(&mut state, before);
            }
            if state.buffered.len() > limit {
                let all = state.buffered.len();
                self.write_out(&mut state, all);
            }
            return;
        }
        if before == 0 {
            drop(state);
            if !self.flusher.mark(self.clone()) {
                self.flush();
            }
        }
    }

    /// Writes the buffered lines to the file.
    fn flush(&self) {
        let mut state = self.state.lock().expect("log file poisoned");
        let all = state.buffered.len();
        if all > 0 && !state.removed {
            self.write_out(&mut state, all);
        }
    }

    /// Drops the buffered lines and every later one: the log is gone.
    fn remove(&self) {
        let mut state = self.state.lock().expect("log file poisoned");
        state.removed = true;
        state.buffered = String::new();
        state.file = None;
    }

    /// Writes the first `n` buffered bytes (whole lines) out and forgets them.
    fn write_out(&self, state: &mut LogState, n: usize) {
        let LogState { file, buffered, .. } = state;
        if let Err(e) = self.append(file, &buffered.as_bytes()[..n]) {
            tracing::warn!(path = %self.path.display(), "cannot write app log: {e}");
            *file = None;
        }
        buffered.drain(..n);
    }

    fn append(&self, slot: &mut Option<(File, u64)>, lines: &[u8]) -> std::io::Result<()> {
        if slot.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            let len = file.metadata()?.len();
            *slot = Some((file, len));
        }
        let (file, len) = slot.as_mut().expect("opened above");
        if *len + lines.len() as u64 > self.half_budget {
            std::fs::rename(&self.path, rotated(&self.path))?;
            *file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            *len = 0;
        }
        file.write_all(lines)?;
        *len += lines.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_never_leaves_the_log_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(
            outside.join("secret.log"),
            "2026-01-01T00:00:00Z stdout secret\n",
        )
        .unwrap();
        let dir = LogDir::open(tmp.path().join("logs"), 1 << 20).unwrap();
        let abs = outside.to_str().unwrap();
        for (scope, name) in [
            (abs, "secret"),
            ("../outside", "secret"),
            ("..", "outside/secret"),
            ("default", "../../outside/secret"),
            ("a/b/c", "x"),
            ("", "x"),
            ("Default", "x"),
        ] {
            let err = dir.read(scope, name, None, None).unwrap_err();
            assert_eq!(
                err.kind(),
                std::io::ErrorKind::InvalidInput,
                "{scope} {name}"
            );
        }
        dir.app("default", "web").write_line("stdout", b"hello");
        assert_eq!(dir.read("default", "web", None, None).unwrap().len(), 1);
        dir.job_run("default", "report", 3)
            .write_line("stdout", b"run");
        assert_eq!(
            dir.read(&job_scope("default", "report"), "3", None, None)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn bounded_rotation_and_reading() {
        let dir = tempfile::tempdir().unwrap();
        let logs = LogDir::open(dir.path().to_path_buf(), 64 * 1024).unwrap();
        let log = logs.app("default", "a");
        for i in 0..10_000 {
            log.write_line("stdout", format!("line {i}").as_bytes());
        }
        let on_disk: u64 = std::fs::read_dir(dir.path().join("default"))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(on_disk <= 64 * 1024, "{on_disk} bytes on disk");
        let last = logs.read("default", "a", None, Some(2)).unwrap();
        assert_eq!(last.len(), 2);
        assert!(last[1].ends_with(" stdout line 9999"), "{last:?}");
        assert!(line_time(&last[0]).is_some());
        let future = Utc::now() + chrono::Duration::minutes(1);
        assert!(
            logs.read("default", "a", Some(future), None)
                .unwrap()
                .is_empty()
        );
        assert!(
            logs.read("default", "missing", None, None)
                .unwrap()
                .is_empty()
        );
        logs.remove("default", "a");
        assert!(logs.read("default", "a", None, None).unwrap().is_empty());
    }

    #[test]
    fn lines_reach_the_file_by_themselves_and_all_of_them_when_the_directory_goes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("default").join("a.log");
        let logs = LogDir::open(dir.path().to_path_buf(), 1 << 20).unwrap();
        let log = logs.app("default", "a");
        log.write_line("stdout", b"first");
        // Without a read: the writer thread writes it out (within FLUSH_EVERY).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !std::fs::read_to_string(&file)
            .unwrap_or_default()
            .contains("stdout first")
        {
            assert!(std::time::Instant::now() < deadline, "never written out");
            std::thread::yield_now();
        }
        for i in 0..1000 {
            log.write_line("stdout", format!("line {i}").as_bytes());
        }
        drop(logs);
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(text.lines().count(), 1001, "{text}");
        assert!(text.ends_with(" stdout line 999\n"), "{text}");
        // The log outlives its directory: a line written after is written at once.
        log.write_line("stdout", b"late");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.ends_with(" stdout late\n"), "{text}");
    }

    #[test]
    fn a_removed_logs_lines_go_nowhere_and_its_successor_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let logs = LogDir::open(dir.path().to_path_buf(), 1 << 20).unwrap();
        let old = logs.app("default", "a");
        old.write_line("stdout", b"kept");
        assert_eq!(logs.read("default", "a", None, None).unwrap().len(), 1);
        old.write_line("stdout", b"pending");
        logs.remove("default", "a");
        old.write_line("stdout", b"after");
        logs.flush();
        assert!(!dir.path().join("default").join("a.log").exists());
        let new = logs.app("default", "a");
        new.write_line("stdout", b"new");
        let lines = logs.read("default", "a", None, None).unwrap();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].ends_with(" stdout new"), "{lines:?}");
    }
}
