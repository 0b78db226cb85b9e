//! The concurrency limit: `n` numbered slots. A slot's number picks its uid, so two
//! executions never share a uid (and so never share an `RLIMIT_NPROC` count or can signal
//! each other).

use std::sync::{Condvar, Mutex, PoisonError};

#[derive(Debug)]
pub(crate) struct Slots {
    free: Mutex<Vec<usize>>,
    freed: Condvar,
    n: usize,
}

/// A held slot; released on drop.
pub(crate) struct Slot<'a> {
    slots: &'a Slots,
    pub index: usize,
}

impl Slots {
    pub(crate) fn new(n: usize) -> Slots {
        Slots { free: Mutex::new((0..n).rev().collect()), freed: Condvar::new(), n }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.n
    }

    /// Takes a slot, waiting for one if `wait`, else `None` when all are taken.
    pub(crate) fn acquire(&self, wait: bool) -> Option<Slot<'_>> {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(index) = free.pop() {
                return Some(Slot { slots: self, index });
            }
            if !wait {
                return None;
            }
            free = self.freed.wait(free).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.slots.free.lock().unwrap_or_else(PoisonError::into_inner).push(self.index);
        self.slots.freed.notify_one();
    }
}
