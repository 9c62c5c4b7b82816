//! The progress bar of the long-running commands: a bar with ETA on a terminal, plain lines in a batch
//! job's log, nothing with `--quiet`.

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar that can also print lines above itself.
pub struct Progress {
    pub bar: ProgressBar,
    quiet: bool,
}

impl Progress {
    /// A bar drawn with the indicatif `template` (e.g. `"{bar:30} {pos}/{len} rows, ETA {eta}"`),
    /// hidden when `quiet`.
    pub fn new(template: &str, quiet: bool) -> Progress {
        let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(0) };
        bar.set_style(ProgressStyle::with_template(template).expect("a valid progress template"));
        Progress { bar, quiet }
    }

    /// Sets the bar to `done` of `total` units, saying so when a run resumes (`unit`: "pairs", ...).
    pub fn start(&self, total: usize, done: usize, unit: &str) {
        self.bar.set_length(total as u64);
        self.bar.set_position(done as u64);
        if done > 0 {
            self.line(format!("resuming: {done} of {total} {unit} already done"));
        }
    }

    /// A line above the bar; on a non-terminal (a batch job's log) a plain line.
    pub fn line(&self, text: String) {
        if self.quiet {
            return;
        }
        if self.bar.is_hidden() {
            eprintln!("{text}");
        } else {
            self.bar.println(text);
        }
    }
}
