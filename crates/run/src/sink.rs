//! Where a run's record goes: the seam between the run loop and storage.
//!
//! A [`Run`](crate::Run) hands its sink every step's metrics and, every `checkpoint_every`
//! steps (and at the end, and after a failure), a checkpoint. [`StoreSink`] writes both into
//! the SQLite run store in one transaction, so a kill leaves both or neither; [`NoSink`]
//! keeps nothing (coalition runs, benches).

use gristmill_store::{RunId, Store, StoreError};

/// Receives a run's record.
pub trait RunSink {
    /// One finished step's metrics (`name`, value).
    fn record_step(&mut self, step: u64, metrics: Vec<(String, f64)>) -> Result<(), StoreError>;
    /// A checkpoint's bytes after `steps_done` steps with digest `digest`: everything
    /// recorded so far must be durable once this returns. The bytes are the trainer's own
    /// versioned format ([`Checkpoint`](crate::Checkpoint) for gristmill-learn's policies,
    /// another crate's for the language-model trainer); the sink does not read them.
    fn checkpoint(&mut self, steps_done: u64, bytes: &[u8], digest: &str) -> Result<(), StoreError>;
}

/// Keeps nothing.
pub struct NoSink;

impl RunSink for NoSink {
    fn record_step(&mut self, _: u64, _: Vec<(String, f64)>) -> Result<(), StoreError> {
        Ok(())
    }
    fn checkpoint(&mut self, _: u64, _: &[u8], _: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Writes into a run store: metrics are buffered and land with each checkpoint, in one
/// transaction.
pub struct StoreSink<'a> {
    store: &'a mut Store,
    run: RunId,
    pending: Vec<(u64, Vec<(String, f64)>)>,
}

impl<'a> StoreSink<'a> {
    /// A sink for run `run` of `store`.
    pub fn new(store: &'a mut Store, run: RunId) -> Self {
        StoreSink { store, run, pending: Vec::new() }
    }

    /// The store.
    pub fn store(&mut self) -> &mut Store {
        self.store
    }
}

impl RunSink for StoreSink<'_> {
    fn record_step(&mut self, step: u64, metrics: Vec<(String, f64)>) -> Result<(), StoreError> {
        self.pending.push((step, metrics));
        Ok(())
    }

    fn checkpoint(&mut self, steps_done: u64, bytes: &[u8], digest: &str) -> Result<(), StoreError> {
        let pending = std::mem::take(&mut self.pending);
        let run = self.run;
        self.store.batch(|b| -> Result<(), StoreError> {
            for (step, values) in &pending {
                b.put_step_metrics(run, *step, values)?;
            }
            b.put_checkpoint(run, steps_done, bytes, digest)?;
            b.set_progress(run, steps_done)?;
            Ok(())
        })
    }
}
