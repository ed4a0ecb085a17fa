//! `version-compatible`: every message a service handles is read by an
//! instance whose code understands its schema version. A message above
//! what its instance reads counts once (however often it is retried) as
//! failed, skipped or misread; a parked one counts only if no instance
//! that reads it took it by the end.

use super::*;
use crate::service::{UNREADABLE_FAILED, UNREADABLE_MISREAD, UNREADABLE_PARKED, UNREADABLE_SKIPPED};

/// What one version-compatible invariant follows.
pub(super) struct VersionCheck {
    pub(super) service: usize,
    /// Messages its instances handled (each attempt).
    pub(super) handled: u64,
    /// Messages it could not read, by id: the entity, what was done (an
    /// `UNREADABLE_*` code), the message's version and what its instance read.
    unread: BTreeMap<u64, (EntityId, u8, u16, u16)>,
}

impl VersionCheck {
    pub(super) fn of(inv: &InvariantSpec) -> Option<VersionCheck> {
        let InvariantSpec::VersionCompatible { service, .. } = *inv else { return None };
        Some(VersionCheck { service, handled: 0, unread: BTreeMap::new() })
    }
}

impl Checker {
    /// A message could not be read (`Unreadable`), or a parked one was
    /// taken by an instance that reads it (`Unparked`).
    #[cold]
    #[inline(never)]
    pub(super) fn version_step(&mut self, r: &Record) {
        let entity = EntityId(r.entity);
        let code = (r.aux & 0xFF) as u8;
        if r.kind == RecordKind::Unreadable && code != UNREADABLE_PARKED {
            self.setback(entity, SETBACK_UNREADABLE);
        }
        let Some(&service) = self.node_services.get(r.node as usize) else { return };
        if !self.counted_at((entity.0 as usize).wrapping_sub(1)) {
            return;
        }
        for v in self.versions.iter_mut().filter(|v| v.service == service) {
            if r.kind == RecordKind::Unparked {
                v.unread.remove(&r.msg);
            } else {
                let (version, reads) = ((r.aux >> 8) as u16, (r.aux >> 24) as u16);
                v.unread.entry(r.msg).or_insert((entity, code, version, reads));
            }
        }
    }

    pub(super) fn judge_versions(name: String, v: &VersionCheck) -> Verdict {
        let count = |code: u8| v.unread.values().filter(|u| u.1 == code).count() as u64;
        let mut counts = BTreeMap::new();
        counts.insert("attempts", v.handled);
        counts.insert("failed", count(UNREADABLE_FAILED));
        counts.insert("skipped", count(UNREADABLE_SKIPPED));
        counts.insert("misread", count(UNREADABLE_MISREAD));
        counts.insert("parked_never_read", count(UNREADABLE_PARKED));
        let why = || "the service handled no message".to_string();
        let example = v.unread.values().next().map(|u| u.0);
        Verdict::new(name, v.unread.len() as u64, counts, v.handled, why, example)
    }

    /// For the story: what happened to the first message of `entity` that
    /// the `i`-th version-compatible invariant's service could not read:
    /// (what was done, its version, what its instance read).
    pub fn unread_of(&self, i: usize, entity: EntityId) -> Option<(u8, u16, u16)> {
        let v = self.versions.get(i)?;
        v.unread.values().find(|u| u.0 == entity).map(|u| (u.1, u.2, u.3))
    }
}
