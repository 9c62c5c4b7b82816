//! What the device was asked to do, counted since it was opened: the dispatch and submission counts
//! the GPU engine is designed around (`docs/backends.md`), checked by tests on any adapter.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};

/// Running totals, updated by the GPU layer as it works.
#[derive(Default, Debug)]
pub(super) struct Counters {
    pub dispatches: AtomicU64,
    pub submissions: AtomicU64,
    pub readbacks: AtomicU64,
    pub buffers: AtomicU64,
    pub bind_groups: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Counts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counts {
            dispatches: get(&self.dispatches),
            submissions: get(&self.submissions),
            readbacks: get(&self.readbacks),
            buffers_created: get(&self.buffers),
            bind_groups_created: get(&self.bind_groups),
        }
    }
}

/// Totals at one moment; subtract two to count what happened between them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Compute dispatches submitted.
    pub dispatches: u64,
    /// Queue submissions (compute passes, copies, read-back copies).
    pub submissions: u64,
    /// Blocking read-backs to the host.
    pub readbacks: u64,
    /// Buffers created (storage, uniform, staging, query resolve).
    pub buffers_created: u64,
    /// Bind groups created.
    pub bind_groups_created: u64,
}

impl std::ops::Sub for Counts {
    type Output = Counts;
    fn sub(self, o: Counts) -> Counts {
        Counts {
            dispatches: self.dispatches - o.dispatches,
            submissions: self.submissions - o.submissions,
            readbacks: self.readbacks - o.readbacks,
            buffers_created: self.buffers_created - o.buffers_created,
            bind_groups_created: self.bind_groups_created - o.bind_groups_created,
        }
    }
}
