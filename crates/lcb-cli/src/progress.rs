//! A progress bar on standard error, drawn only when it is a terminal.

use indicatif::{ProgressBar, ProgressStyle};
use lcb_core::Progress;

pub struct StepBar {
    bar: ProgressBar,
}

impl StepBar {
    pub fn new(label: &str) -> Self {
        let bar = ProgressBar::new(1);
        bar.set_style(
            ProgressStyle::with_template("{prefix:>14} [{bar:30}] step {pos}/{len} {elapsed}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        Self { bar }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for StepBar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for StepBar {
    fn advance(&self, done: usize, total: usize) {
        self.bar.set_length(total as u64);
        self.bar.set_position(done as u64);
    }
}
