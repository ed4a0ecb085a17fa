//! Schema versions under a rolling deploy.
//!
//! Each instance runs code of one schema version: it stamps it on what it
//! publishes and reads every version up to it (new code reads old events;
//! old code does not read new ones). A message above what its instance
//! reads is failed, skipped or parked, as the service says, or, when it
//! says nothing, misread: handled as its own version, the fields it does
//! not know read as 0. A `RollingDeploy` restarts the service's instances
//! one at a time, each coming back at the new version; a parked message
//! waits, in the service's database, for an instance that reads it, which
//! takes it when it comes back from its upgrade.

use super::{Source, World};
use crate::service::{Message, UNREADABLE_PARKED};
use crate::trace::RecordKind;

impl World<'_, '_> {
    /// Node `n` handled `msg`, of a version above what it reads, and did
    /// `code` about it (an `UNREADABLE_*` code): traced, and parked if so.
    #[cold]
    #[inline(never)]
    pub(super) fn unreadable(&mut self, n: u32, msg: &Message, code: u8) {
        let reads = self.nodes[n as usize].versions as u16;
        let aux = u64::from(code) | u64::from(msg.version) << 8 | u64::from(reads) << 24;
        self.trace(RecordKind::Unreadable, n, msg, aux);
        if code == UNREADABLE_PARKED {
            let si = self.nodes[n as usize].service as usize;
            self.parked[si].insert(msg.id.0, *msg);
        }
    }

    /// Node `n` is down for its upgrade to schema `version`: it comes back
    /// running it.
    pub(super) fn upgrade(&mut self, n: u32, version: u16) {
        let node = &mut self.nodes[n as usize];
        node.versions = u32::from(version) << 16 | u32::from(version);
    }

    /// Node `n` takes, in id order, the parked messages of its service it
    /// now reads.
    pub(super) fn unpark(&mut self, n: u32) {
        let node = &self.nodes[n as usize];
        let (si, reads) = (node.service as usize, node.versions as u16);
        if self.parked[si].is_empty() || !node.up {
            return;
        }
        let readable: Vec<u64> = self.parked[si].values().filter(|m| m.version <= reads).map(|m| m.id.0).collect();
        for id in readable {
            let msg = self.parked[si].remove(&id).expect("listed");
            self.trace(RecordKind::Unparked, n, &msg, u64::from(reads));
            self.enqueue(n, msg, Source::Push);
        }
    }

    /// The parked messages no instance took.
    pub(super) fn still_parked(&self) -> impl Iterator<Item = &Message> {
        self.parked.iter().flat_map(|p| p.values())
    }
}
