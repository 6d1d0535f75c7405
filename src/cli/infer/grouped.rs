//! `infer`'s images once their group is detected ([`crate::cli::batching::Group`]): each one's
//! panel, files, `--jsonl` line and summary, or its failure on stderr, in listing order.

use std::path::Path;

use super::{one, Context, Slot};
use crate::cli::batch::JsonlLog;
use crate::cli::batching::Group;
use crate::error::Error;
use crate::pipeline::Detector;

/// Where `infer`'s images go once detected: the panel, the output folder, the log, the terminal.
pub(super) struct Run<'r, 'g> {
    pub det: &'r mut Detector<'g>,
    pub panel: &'r mut Vec<Slot<'g>>,
    pub ctx: &'r Context<'r>,
    pub log: Option<&'r mut JsonlLog>,
    pub bar: &'r indicatif::ProgressBar,
}

impl Run<'_, '_> {
    /// Detect the group's images and finish each (outputs, log line, summary); returns how many
    /// failed, each named on stderr.
    pub fn finish(&mut self, group: &mut Group) -> usize {
        let mut failed = 0;
        for (q, d) in group.detect(self.det, self.ctx.args.tile.then_some(self.ctx.args.tile_overlap)) {
            let done = d.and_then(|d| {
                let decoded = &q.read.as_ref().expect("detected images were decoded").0;
                let (line, rep) = one(self.det, self.panel, q.input, &q.stem, self.ctx, decoded, d)?;
                match (self.log.as_mut(), &q.sha) {
                    (Some(l), Some(sha)) => l.append(rep, sha).map(|_| line),
                    _ => Ok(line),
                }
            });
            match done {
                Ok(line) => self.bar.suspend(|| println!("{line}")),
                Err(e) => {
                    failed += 1;
                    self.fail(q.input, &e);
                }
            }
            self.bar.inc(1);
        }
        failed
    }

    /// Name a failed input on stderr with its reason.
    pub fn fail(&self, input: &Path, e: &Error) {
        // Name the input once: most errors already carry it.
        let shown = input.display().to_string();
        let line = if e.message.contains(&shown) { e.to_string() } else { format!("{shown}: {e}") };
        self.bar.suspend(|| eprintln!("wgpu-forge: {line}"));
    }
}
