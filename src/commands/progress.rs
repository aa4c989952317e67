//! The progress bar `apply` draws on stderr: an observer of the executor.

use crate::exec::Observer;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar of the ops that call the API, labelled with the stage; drawn only once there is work.
#[derive(Debug)]
pub struct Bar(ProgressBar);

impl Bar {
    pub fn stderr() -> Bar {
        Bar(ProgressBar::hidden())
    }
}

impl Observer for Bar {
    fn started(&self, ops: u64) {
        if ops == 0 {
            return;
        }
        self.0.set_length(ops);
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} {bar:30} {pos}/{len} {msg} [{elapsed}]")
        {
            self.0.set_style(style);
        }
        self.0.set_draw_target(ProgressDrawTarget::stderr());
    }

    fn stage(&self, label: &'static str) {
        self.0.set_message(label);
    }

    fn op_done(&self) {
        self.0.inc(1);
    }

    fn finished(&self) {
        self.0.finish_and_clear();
    }
}
