//! How faults that overlap on one target compose.
//!
//! - A target is down while any crash holds it and restarts when the last
//!   one heals; a pause likewise ([`Holds`]).
//! - Slowdowns multiply: while two overlap, the node works `f1 * f2` times
//!   slower; clock skews multiply the same way ([`Factors`]).

/// Faults that hold a target (down, or paused) now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Holds(u32);

impl Holds {
    /// One more fault holds it: true if it is the first (the target goes
    /// down, or stalls, now).
    pub fn hold(&mut self) -> bool {
        self.0 += 1;
        self.0 == 1
    }

    /// A fault that held it heals: true if it was the last (the target
    /// comes back now).
    pub fn release(&mut self) -> bool {
        debug_assert!(self.0 > 0, "a heal without its fault");
        self.0 = self.0.saturating_sub(1);
        self.0 == 0
    }

    /// No fault holds it.
    pub fn free(self) -> bool {
        self.0 == 0
    }
}

/// Factors active on a target (slowdowns, or clock skews), by plan entry,
/// in the order they began, and their product (1.0 without any).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Factors {
    active: Vec<(u32, f64)>,
    product: f64,
}

impl Default for Factors {
    fn default() -> Factors {
        Factors { active: Vec::new(), product: 1.0 }
    }
}

impl Factors {
    /// Plan entry `fault` multiplies by `factor` from now on.
    pub fn begin(&mut self, fault: u32, factor: f64) {
        self.active.push((fault, factor));
        self.product = self.active.iter().map(|s| s.1).product();
    }

    /// Plan entry `fault` heals.
    pub fn end(&mut self, fault: u32) {
        self.active.retain(|s| s.0 != fault);
        self.product = self.active.iter().map(|s| s.1).product();
    }

    /// The product of the active factors.
    #[inline]
    pub fn product(&self) -> f64 {
        self.product
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_count_overlapping_faults() {
        let mut h = Holds::default();
        assert!(h.free());
        assert!(h.hold(), "the first hold takes it down");
        assert!(!h.hold(), "a second one changes nothing");
        assert!(!h.release(), "one still holds it");
        assert!(!h.free());
        assert!(h.release(), "the last heal brings it back");
        assert!(h.free());
    }

    #[test]
    fn factors_multiply_and_heal_by_entry() {
        let mut f = Factors::default();
        assert_eq!(f.product(), 1.0);
        f.begin(3, 2.0);
        f.begin(5, 4.0);
        assert_eq!(f.product(), 8.0);
        f.end(3);
        assert_eq!(f.product(), 4.0, "the heal removes its own factor");
        f.end(7);
        assert_eq!(f.product(), 4.0, "an entry never begun changes nothing");
        f.end(5);
        assert_eq!(f.product(), 1.0);
    }
}
