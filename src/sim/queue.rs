//! The event queue.
//!
//! Ordering guarantee: events pop in order of their time; events scheduled
//! for the same instant pop in the order they were scheduled (a sequence
//! number assigned at push breaks the tie). Nothing else, in particular no
//! property of the event payload, influences the order. This is what makes a
//! run a pure function of its scenario and seed.

use super::time::SimTime;

/// One scheduled event. The key packs (time, sequence) into one integer, so
/// the ordering is a single comparison.
struct Entry<E> {
    key: u128,
    event: E,
}

/// Children per node. A 4-ary heap is shallower than a binary one and its
/// four children sit in one or two cache lines: fewer levels, fewer misses.
const ARITY: usize = 4;

/// A priority queue of events keyed by (time, insertion sequence).
pub struct EventQueue<E> {
    heap: Vec<Entry<E>>,
    seq: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    /// An empty queue.
    pub fn new() -> Self {
        EventQueue { heap: Vec::with_capacity(1024), seq: 0 }
    }

    /// Schedules `event` at `time`, after every event already scheduled for that instant.
    #[inline]
    pub fn push(&mut self, time: SimTime, event: E) {
        let key = u128::from(time.0) << 64 | u128::from(self.seq);
        self.seq += 1;
        // Sift up: swap with the parent while the parent is later.
        let mut i = self.heap.len();
        self.heap.push(Entry { key, event });
        while i > 0 {
            let parent = (i - 1) / ARITY;
            if self.heap[parent].key <= key {
                break;
            }
            self.heap.swap(i, parent);
            i = parent;
        }
    }

    /// Removes and returns the earliest event.
    #[inline]
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        let last = self.heap.pop()?;
        if self.heap.is_empty() {
            return Some((SimTime((last.key >> 64) as u64), last.event));
        }
        // Put the last entry at the root and sift it down: at each level
        // move the smallest child up while it is smaller.
        let top = std::mem::replace(&mut self.heap[0], last);
        let len = self.heap.len();
        let key = self.heap[0].key;
        let mut i = 0;
        loop {
            let first = ARITY * i + 1;
            if first >= len {
                break;
            }
            let end = (first + ARITY).min(len);
            let mut min = first;
            for c in first + 1..end {
                if self.heap[c].key < self.heap[min].key {
                    min = c;
                }
            }
            if self.heap[min].key >= key {
                break;
            }
            self.heap.swap(i, min);
            i = min;
        }
        Some((SimTime((top.key >> 64) as u64), top.event))
    }

    /// The time of the earliest event, if any.
    pub fn peek_time(&self) -> Option<SimTime> {
        self.heap.first().map(|e| SimTime((e.key >> 64) as u64))
    }

    /// Number of scheduled events.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_by_time_then_insertion_order() {
        let mut q = EventQueue::new();
        q.push(SimTime(5), "c");
        q.push(SimTime(1), "a");
        q.push(SimTime(5), "d");
        q.push(SimTime(3), "b");
        q.push(SimTime(5), "e");
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).map(|(_, e)| e).collect();
        assert_eq!(order, ["a", "b", "c", "d", "e"]);
    }

    #[test]
    fn ties_keep_insertion_order_at_scale() {
        // Many events at one instant, interleaved with others: the heap must
        // not reorder equal times, whatever its internal layout.
        let mut q = EventQueue::new();
        for i in 0..1000u32 {
            q.push(SimTime(u64::from(i % 3)), i);
        }
        let mut last: Option<(SimTime, u32)> = None;
        while let Some((t, i)) = q.pop() {
            if let Some((lt, li)) = last {
                assert!(lt < t || (lt == t && li < i), "{lt:?}/{li} before {t:?}/{i}");
            }
            last = Some((t, i));
        }
    }
}
