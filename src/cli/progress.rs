//! The progress bar of the long-running commands: a bar with ETA on a terminal, plain lines at a steady
//! interval in a batch job's log (stderr not a terminal, e.g. Slurm's), nothing with `--quiet`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Seconds between plain progress lines when stderr is not a terminal (default 30).
pub const PROGRESS_SECONDS_VAR: &str = "LOSSCAPE_PROGRESS_SECONDS";

/// A progress bar that can also print lines above itself.
pub struct Progress {
    pub bar: ProgressBar,
    quiet: bool,
    unit: String,
    /// In plain mode: the interval, the start and the time of the last line.
    plain: Option<(Duration, Instant, Mutex<Instant>)>,
}

impl Progress {
    /// A bar drawn with the indicatif `template` (e.g. `"{bar:30} {pos}/{len} rows, ETA {eta}"`) counting
    /// `unit`s, hidden when `quiet`; where stderr is not a terminal, a plain line every
    /// `LOSSCAPE_PROGRESS_SECONDS` (30 s) instead.
    pub fn new(template: &str, unit: &str, quiet: bool) -> Progress {
        let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(0) };
        bar.set_style(ProgressStyle::with_template(template).expect("a valid progress template"));
        let every = std::env::var(PROGRESS_SECONDS_VAR).ok().and_then(|v| v.trim().parse::<f64>().ok());
        let every = Duration::from_secs_f64(every.filter(|s| s.is_finite() && *s >= 0.0).unwrap_or(30.0));
        let now = Instant::now();
        let plain = (!quiet && bar.is_hidden()).then(|| (every, now, Mutex::new(now)));
        Progress { bar, quiet, unit: unit.to_string(), plain }
    }

    /// Sets the bar to `done` of `total` units, saying so when a run resumes.
    pub fn start(&self, total: usize, done: usize) {
        self.bar.set_length(total as u64);
        self.bar.set_position(done as u64);
        if done > 0 {
            self.line(format!("resuming: {done} of {total} {} already done", self.unit));
        }
    }

    /// Adds `n` units done.
    pub fn advance(&self, n: u64) {
        self.bar.inc(n);
        self.plain_line();
    }

    /// Sets the units done to `done`.
    pub fn set(&self, done: u64) {
        self.bar.set_position(done);
        self.plain_line();
    }

    /// A line above the bar, even with `--quiet` (a warning about the results); on a non-terminal (a
    /// batch job's log) a plain line.
    pub fn warn(&self, text: String) {
        if self.bar.is_hidden() {
            eprintln!("{text}");
        } else {
            self.bar.println(text);
        }
    }

    /// A line above the bar, as [`Progress::warn`], but not with `--quiet`.
    pub fn line(&self, text: String) {
        if !self.quiet {
            self.warn(text);
        }
    }

    /// In plain mode, `pos/len unit (pct), elapsed, ETA  message` when the interval has passed since the
    /// last such line, or the work is complete.
    fn plain_line(&self) {
        let Some((every, started, last)) = &self.plain else { return };
        let (pos, len) = (self.bar.position(), self.bar.length().unwrap_or(0));
        let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
        if last.elapsed() < *every && pos < len {
            return;
        }
        *last = Instant::now();
        let elapsed = started.elapsed().as_secs_f64();
        let pct = if len > 0 { 100.0 * pos as f64 / len as f64 } else { 0.0 };
        let eta = if pos > 0 && len > pos {
            format!(", ETA {:.0} s", elapsed * (len - pos) as f64 / pos as f64)
        } else {
            String::new()
        };
        let msg = self.bar.message();
        let msg = if msg.is_empty() { String::new() } else { format!("  {msg}") };
        eprintln!("progress: {pos}/{len} {} ({pct:.0} %), {elapsed:.0} s elapsed{eta}{msg}", self.unit);
    }
}
