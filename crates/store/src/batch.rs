//! Writes, grouped in one transaction.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::time::Duration;

use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::Value;

use crate::error::{Context, StoreError};
use crate::lease::{self, Acquired, Lease, LeaseHolder};
use crate::packed;
use crate::record::{CheckpointRetention, NewRun, RunId, RunStatus};
use crate::{check_digest, json_text, parse_json, require_run, run_status, text_digest, to_i64};

/// A group of writes that commit together or not at all.
///
/// Get one from [`Store::batch`](crate::Store::batch). Every write method of [`Store`](crate::Store)
/// is a one-call batch; use a batch yourself when several writes belong together, e.g. a step's
/// metrics, the progress counter and a checkpoint, so that a crash never leaves a checkpoint
/// without the metrics leading up to it.
///
/// The transaction is `BEGIN IMMEDIATE`: it takes the write lock up front, so it either waits
/// (up to the busy timeout) or fails at the start, never halfway through with a lock upgrade
/// error.
pub struct Batch<'s> {
    pub(crate) tx: Transaction<'s>,
    pub(crate) retention: CheckpointRetention,
    /// One timestamp for the whole batch: everything it writes happened "at once".
    pub(crate) now_ms: i64,
    pub(crate) lease_timeout: Duration,
    /// The leases the handle holds (run → the holder's nonce), as this batch changes them; the
    /// handle adopts this map only if the batch commits.
    pub(crate) leases: RefCell<HashMap<RunId, String>>,
    /// Runs whose lease heartbeat this batch has already renewed.
    pub(crate) renewed: RefCell<HashSet<RunId>>,
    /// Metric name → id, as looked up or added by this batch.
    pub(crate) metric_ids: RefCell<HashMap<String, i64>>,
}

impl Batch<'_> {
    /// Same as [`Store::put_spec`](crate::Store::put_spec), inside this batch.
    pub fn put_spec(&self, hash: &str, name: &str, text: &str) -> Result<String, StoreError> {
        let ctx = || format!("store spec {hash}");
        let digest = text_digest(text);
        self.tx
            .execute(
                "INSERT INTO specs (hash, name, created_at_ms) VALUES (?1, ?2, ?3) ON CONFLICT (hash) DO NOTHING",
                params![hash, name, self.now_ms],
            )
            .ctx(ctx)?;
        let inserted = self
            .tx
            .execute(
                "INSERT INTO spec_texts (spec_hash, digest, text, first_seen_ms) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (spec_hash, digest) DO NOTHING",
                params![hash, digest, text, self.now_ms],
            )
            .ctx(ctx)?;
        if inserted == 0 {
            // Already stored. A different text with the same BLAKE3 digest cannot happen by
            // chance; it would mean the file was edited by hand.
            let same: bool = self
                .tx
                .query_row(
                    "SELECT text = ?3 FROM spec_texts WHERE spec_hash = ?1 AND digest = ?2",
                    params![hash, digest, text],
                    |r| r.get(0),
                )
                .ctx(ctx)?;
            if !same {
                return Err(StoreError::Corrupt(format!(
                    "spec {hash}: the stored text with digest {digest} has other bytes than its digest says"
                )));
            }
        }
        Ok(digest)
    }

    /// Same as [`Store::create_run`](crate::Store::create_run), inside this batch.
    pub fn create_run(&self, run: &NewRun) -> Result<RunId, StoreError> {
        self.insert_run(run, None)
    }

    /// Same as [`Store::create_run_with_spec_text`](crate::Store::create_run_with_spec_text),
    /// inside this batch.
    pub fn create_run_with_spec_text(&self, run: &NewRun, spec_text: &str) -> Result<RunId, StoreError> {
        self.insert_run(run, Some(spec_text))
    }

    fn insert_run(&self, run: &NewRun, spec_text: Option<&str>) -> Result<RunId, StoreError> {
        let steps = to_i64(run.steps, || "steps of a new run".to_string())?;
        // Checked here rather than left to the foreign keys so the error names what is missing.
        let spec_known: Option<i64> = self
            .tx
            .query_row("SELECT 1 FROM specs WHERE hash = ?1", [&run.spec_hash], |r| r.get(0))
            .optional()
            .ctx(|| format!("look up spec {}", run.spec_hash))?;
        if spec_known.is_none() {
            return Err(StoreError::SpecNotFound(run.spec_hash.clone()));
        }
        let spec_text_id: Option<i64> = match spec_text {
            None => None,
            Some(digest) => {
                let id = self
                    .tx
                    .query_row(
                        "SELECT id FROM spec_texts WHERE spec_hash = ?1 AND digest = ?2",
                        [&run.spec_hash, digest],
                        |r| r.get(0),
                    )
                    .optional()
                    .ctx(|| format!("look up text {digest} of spec {}", run.spec_hash))?;
                Some(id.ok_or_else(|| StoreError::SpecTextNotFound {
                    hash: run.spec_hash.clone(),
                    digest: digest.to_string(),
                })?)
            }
        };
        if let Some(parent) = run.parent {
            require_run(&self.tx, parent)?;
        }
        let config = json_text(&run.config, || "config of a new run".to_string())?;
        self.tx
            .execute(
                "INSERT INTO runs (kind, spec_hash, spec_text_id, seed, steps, threads, config, parent_id, \
                 created_at_ms, updated_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
                params![
                    run.kind.as_str(),
                    run.spec_hash,
                    spec_text_id,
                    run.seed as i64, // bit-cast: keeps all 64 bits of the seed
                    steps,
                    run.threads,
                    config,
                    run.parent.map(|p| p.0),
                    self.now_ms
                ],
            )
            .ctx(|| format!("create a {} run of spec {}", run.kind, run.spec_hash))?;
        let id = RunId(self.tx.last_insert_rowid());
        // The creator is the one training it: it holds the lease from the start.
        self.write_lease(id, &LeaseHolder::this_process(), self.now_ms)?;
        Ok(id)
    }

    /// Same as [`Store::acquire_lease`](crate::Store::acquire_lease), inside this batch.
    pub fn acquire_lease(&self, id: RunId, holder: &LeaseHolder) -> Result<Acquired, StoreError> {
        if run_status(&self.tx, id)? == Some(RunStatus::Stopped) {
            // A stopped run is paused, not ended: leasing it takes it up again. It released
            // its lease when it stopped, so the lease below is new.
            self.tx
                .execute(
                    "UPDATE runs SET status = 'running', updated_at_ms = ?2 WHERE id = ?1 AND status = 'stopped'",
                    params![id.0, self.now_ms],
                )
                .ctx(|| format!("reopen stopped run {id}"))?;
        }
        self.require_running(id, "leased for training")?;
        let acquired = match self.lease_row(id)? {
            None => Acquired::New,
            Some(current) if current.holder.nonce == holder.nonce => Acquired::Renewed,
            Some(current) => match lease::staleness(&current, self.now_ms, self.lease_timeout) {
                None => {
                    return Err(StoreError::LeaseHeld {
                        run: id,
                        heartbeat_age_ms: self.now_ms.saturating_sub(current.heartbeat_at_ms),
                        holder: Box::new(current.holder),
                    })
                }
                Some(reason) => Acquired::TookOver { previous: current, reason },
            },
        };
        let acquired_at_ms = match &acquired {
            Acquired::Renewed => None, // keeps its acquisition time
            Acquired::New | Acquired::TookOver { .. } => Some(self.now_ms),
        };
        match acquired_at_ms {
            Some(at) => self.write_lease(id, holder, at)?,
            None => {
                self.leases.borrow_mut().insert(id, holder.nonce.clone());
                self.renew(id)?;
            }
        }
        Ok(acquired)
    }

    /// Same as [`Store::release_lease`](crate::Store::release_lease), inside this batch.
    pub fn release_lease(&self, id: RunId) -> Result<(), StoreError> {
        require_run(&self.tx, id)?;
        match self.lease_row(id)? {
            None => {}
            Some(current) if self.holds(&current) => self.delete_lease(id)?,
            Some(current) => {
                return Err(StoreError::LeaseNotHeld {
                    run: id,
                    action: "released",
                    holder: Some(Box::new(current.holder)),
                })
            }
        }
        self.leases.borrow_mut().remove(&id);
        Ok(())
    }

    /// Same as [`Store::heartbeat`](crate::Store::heartbeat), inside this batch.
    pub fn heartbeat(&self, id: RunId) -> Result<(), StoreError> {
        self.require_lease(id, "given a heartbeat")
    }

    /// Same as [`Store::set_progress`](crate::Store::set_progress), inside this batch.
    pub fn set_progress(&self, id: RunId, steps_done: u64) -> Result<(), StoreError> {
        let done = to_i64(steps_done, || format!("steps done of run {id}"))?;
        self.require_lease(id, "given progress")?;
        let changed = self
            .tx
            .execute(
                "UPDATE runs SET steps_done = ?2, updated_at_ms = ?3 WHERE id = ?1 AND status = 'running'",
                params![id.0, done, self.now_ms],
            )
            .ctx(|| format!("record progress of run {id}"))?;
        self.expect_running(id, changed, "given progress")
    }

    /// Same as [`Store::finish_run`](crate::Store::finish_run), inside this batch.
    pub fn finish_run(&self, id: RunId, digest: &str, summary: &Value) -> Result<(), StoreError> {
        check_digest(digest, || format!("digest of run {id}"))?;
        let summary = json_text(summary, || format!("summary of run {id}"))?;
        self.require_lease(id, "marked finished")?;
        let changed = self
            .tx
            .execute(
                "UPDATE runs SET status = 'finished', digest = ?2, summary = ?3, steps_done = steps, \
                 updated_at_ms = ?4 WHERE id = ?1 AND status = 'running'",
                params![id.0, digest, summary, self.now_ms],
            )
            .ctx(|| format!("finish run {id}"))?;
        self.expect_running(id, changed, "marked finished")?;
        self.release_lease(id)
    }

    /// Same as [`Store::fail_run`](crate::Store::fail_run), inside this batch.
    pub fn fail_run(&self, id: RunId, error: &str) -> Result<(), StoreError> {
        self.require_lease(id, "marked failed")?;
        let changed = self
            .tx
            .execute(
                "UPDATE runs SET status = 'failed', error = ?2, updated_at_ms = ?3 \
                 WHERE id = ?1 AND status = 'running'",
                params![id.0, error, self.now_ms],
            )
            .ctx(|| format!("mark run {id} failed"))?;
        self.expect_running(id, changed, "marked failed")?;
        self.release_lease(id)
    }

    /// Same as [`Store::stop_run`](crate::Store::stop_run), inside this batch.
    pub fn stop_run(&self, id: RunId) -> Result<(), StoreError> {
        self.require_lease(id, "marked stopped")?;
        let changed = self
            .tx
            .execute(
                "UPDATE runs SET status = 'stopped', updated_at_ms = ?2 WHERE id = ?1 AND status = 'running'",
                params![id.0, self.now_ms],
            )
            .ctx(|| format!("mark run {id} stopped"))?;
        self.expect_running(id, changed, "marked stopped")?;
        self.release_lease(id)
    }

    /// Same as [`Store::put_step_metrics`](crate::Store::put_step_metrics), inside this batch.
    pub fn put_step_metrics<S: AsRef<str>>(
        &self,
        id: RunId,
        step: u64,
        metrics: &[(S, f64)],
    ) -> Result<(), StoreError> {
        // Refuse before writing anything. The packed bits could hold a NaN, but a metric that
        // is not a number is a bug upstream, better named here than found in a curve.
        if let Some((name, value)) = metrics.iter().find(|(_, v)| !v.is_finite()) {
            return Err(StoreError::NonFinite {
                run: id,
                step,
                name: name.as_ref().to_string(),
                value: *value,
            });
        }
        let step_i = to_i64(step, || format!("step of run {id}"))?;
        self.require_lease(id, "given step metrics")?;
        let ctx = || format!("store step {step} metrics of run {id}");
        let stored: Option<Vec<u8>> = self
            .tx
            .prepare_cached("SELECT packed FROM step_metrics WHERE run_id = ?1 AND step = ?2")
            .and_then(|mut stmt| stmt.query_row(params![id.0, step_i], |r| r.get(0)).optional())
            .ctx(ctx)?;
        let mut entries = match stored {
            None => Vec::with_capacity(metrics.len()),
            Some(blob) => packed::unpack(&blob).ok_or_else(|| {
                StoreError::Corrupt(format!("the packed metrics of run {id}, step {step} are malformed"))
            })?,
        };
        // Merge: a new name is added; a stored one must have the same bits.
        let mut changed = false;
        for (name, value) in metrics {
            let name = name.as_ref();
            let name_id = self.metric_name_id(name)?;
            let bits = value.to_bits();
            match entries.binary_search_by_key(&name_id, |e| e.0) {
                Ok(i) if entries[i].1 == bits => {}
                Ok(i) => {
                    return Err(StoreError::MetricConflict {
                        run: id,
                        step,
                        name: name.to_string(),
                        stored: f64::from_bits(entries[i].1),
                        new: *value,
                    })
                }
                Err(i) => {
                    entries.insert(i, (name_id, bits));
                    changed = true;
                }
            }
        }
        if changed {
            self.tx
                .prepare_cached(
                    "INSERT INTO step_metrics (run_id, step, packed) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (run_id, step) DO UPDATE SET packed = excluded.packed",
                )
                .and_then(|mut stmt| stmt.execute(params![id.0, step_i, packed::pack(&entries)]))
                .ctx(ctx)?;
        }
        Ok(())
    }

    /// The id of a metric name in `metric_names`, adding the name if it is new. Memoised for
    /// the batch (not longer: a name added by a batch that rolls back does not exist).
    fn metric_name_id(&self, name: &str) -> Result<i64, StoreError> {
        if let Some(&id) = self.metric_ids.borrow().get(name) {
            return Ok(id);
        }
        let ctx = || format!("look up metric name {name:?}");
        let found: Option<i64> = self
            .tx
            .prepare_cached("SELECT id FROM metric_names WHERE name = ?1")
            .and_then(|mut stmt| stmt.query_row([name], |r| r.get(0)).optional())
            .ctx(ctx)?;
        let id = match found {
            Some(id) => id,
            None => {
                self.tx
                    .prepare_cached("INSERT INTO metric_names (name) VALUES (?1)")
                    .and_then(|mut stmt| stmt.execute([name]))
                    .ctx(|| format!("add metric name {name:?}"))?;
                self.tx.last_insert_rowid()
            }
        };
        self.metric_ids.borrow_mut().insert(name.to_string(), id);
        Ok(id)
    }

    /// Same as [`Store::put_piece_summary`](crate::Store::put_piece_summary), inside this batch.
    pub fn put_piece_summary(
        &self,
        id: RunId,
        piece_id: &str,
        kind: &str,
        summary: &Value,
    ) -> Result<(), StoreError> {
        let text = json_text(summary, || format!("summary of piece {piece_id} in run {id}"))?;
        require_run(&self.tx, id)?;
        self.tx
            .execute(
                "INSERT INTO piece_summaries (run_id, piece_id, kind, summary, updated_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (run_id, piece_id) DO UPDATE SET \
                 kind = excluded.kind, summary = excluded.summary, updated_at_ms = excluded.updated_at_ms",
                params![id.0, piece_id, kind, text, self.now_ms],
            )
            .ctx(|| format!("store summary of piece {piece_id} in run {id}"))?;
        Ok(())
    }

    /// Same as [`Store::put_checkpoint`](crate::Store::put_checkpoint), inside this batch.
    pub fn put_checkpoint(&self, id: RunId, step: u64, bytes: &[u8], digest: &str) -> Result<(), StoreError> {
        check_digest(digest, || format!("checkpoint digest of run {id} at step {step}"))?;
        let step_i = to_i64(step, || format!("checkpoint step of run {id}"))?;
        self.require_lease(id, "given a checkpoint")?;
        let ctx = || format!("store checkpoint of run {id} at step {step}");
        let inserted = self
            .tx
            .execute(
                "INSERT INTO checkpoints (run_id, step, bytes, digest, created_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (run_id, step) DO NOTHING",
                params![id.0, step_i, bytes, digest, self.now_ms],
            )
            .ctx(ctx)?;
        if inserted == 0 {
            let same: bool = self
                .tx
                .query_row(
                    "SELECT bytes = ?3 AND digest = ?4 FROM checkpoints WHERE run_id = ?1 AND step = ?2",
                    params![id.0, step_i, bytes, digest],
                    |r| r.get(0),
                )
                .ctx(ctx)?;
            if !same {
                return Err(StoreError::CheckpointConflict { run: id, step });
            }
        }
        self.apply_checkpoint_retention(id, self.retention)?;
        Ok(())
    }

    /// Same as [`Store::apply_checkpoint_retention`](crate::Store::apply_checkpoint_retention),
    /// inside this batch.
    pub fn apply_checkpoint_retention(
        &self,
        id: RunId,
        retention: CheckpointRetention,
    ) -> Result<usize, StoreError> {
        match retention {
            CheckpointRetention::All => {
                require_run(&self.tx, id)?;
                Ok(0)
            }
            CheckpointRetention::Last(keep) => self.prune_checkpoints(id, keep),
            CheckpointRetention::LastAndEvery { last, every } => {
                self.require_lease_while_running(id, "pruned of checkpoints")?;
                let last = i64::try_from(last.get()).unwrap_or(i64::MAX);
                let every = i64::try_from(every.get()).unwrap_or(i64::MAX);
                // Steps are non-negative (CHECKed), so integer division numbers the spans.
                self.tx
                    .execute(
                        "DELETE FROM checkpoints WHERE run_id = ?1 \
                         AND step NOT IN (SELECT step FROM checkpoints WHERE run_id = ?1 \
                                          ORDER BY step DESC LIMIT ?2) \
                         AND step NOT IN (SELECT min(step) FROM checkpoints WHERE run_id = ?1 \
                                          GROUP BY step / ?3)",
                        params![id.0, last, every],
                    )
                    .ctx(|| format!("prune checkpoints of run {id}"))
            }
        }
    }

    /// Same as [`Store::prune_checkpoints`](crate::Store::prune_checkpoints), inside this batch.
    pub fn prune_checkpoints(&self, id: RunId, keep_last: NonZeroUsize) -> Result<usize, StoreError> {
        self.require_lease_while_running(id, "pruned of checkpoints")?;
        let keep = i64::try_from(keep_last.get()).unwrap_or(i64::MAX);
        self.tx
            .execute(
                "DELETE FROM checkpoints WHERE run_id = ?1 AND step NOT IN \
                 (SELECT step FROM checkpoints WHERE run_id = ?1 ORDER BY step DESC LIMIT ?2)",
                params![id.0, keep],
            )
            .ctx(|| format!("prune checkpoints of run {id}"))
    }

    /// Same as [`Store::put_result`](crate::Store::put_result), inside this batch.
    pub fn put_result(&self, id: RunId, name: &str, body: &Value) -> Result<(), StoreError> {
        let text = json_text(body, || format!("result {name} of run {id}"))?;
        require_run(&self.tx, id)?;
        self.tx
            .execute(
                "INSERT INTO results (run_id, name, body, created_at_ms, updated_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (run_id, name) DO UPDATE SET \
                 body = excluded.body, updated_at_ms = excluded.updated_at_ms",
                params![id.0, name, text, self.now_ms],
            )
            .ctx(|| format!("store result {name} of run {id}"))?;
        Ok(())
    }

    /// Same as [`Store::put_artifact`](crate::Store::put_artifact), inside this batch.
    pub fn put_artifact(
        &self,
        hash: &str,
        kind: &str,
        name: &str,
        body: &Value,
        source_run: Option<RunId>,
    ) -> Result<(), StoreError> {
        let text = json_text(body, || format!("body of artifact {hash}"))?;
        if let Some(run) = source_run {
            require_run(&self.tx, run)?;
        }
        let ctx = || format!("store artifact {hash}");
        let stored: Option<(String, String)> = self
            .tx
            .query_row("SELECT kind, body FROM artifacts WHERE hash = ?1", [hash], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .ctx(ctx)?;
        match stored {
            Some((stored_kind, stored_body)) => {
                // Compared as values, not text, so key order (serde_json's `preserve_order`
                // feature) cannot make the same artifact look different.
                let same = stored_kind == kind
                    && (stored_body == text
                        || parse_json(&stored_body, || format!("body of artifact {hash}"))? == *body);
                if same {
                    Ok(())
                } else {
                    Err(StoreError::ArtifactConflict(hash.to_string()))
                }
            }
            None => {
                self.tx
                    .execute(
                        "INSERT INTO artifacts (hash, kind, name, body, source_run_id, created_at_ms) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![hash, kind, name, text, source_run.map(|r| r.0), self.now_ms],
                    )
                    .ctx(ctx)?;
                Ok(())
            }
        }
    }

    /// Fails unless the run exists and is running: [`StoreError::RunNotFound`],
    /// [`StoreError::NotRunning`] naming `action`.
    fn require_running(&self, id: RunId, action: &'static str) -> Result<(), StoreError> {
        match run_status(&self.tx, id)? {
            None => Err(StoreError::RunNotFound(id)),
            Some(RunStatus::Running) => Ok(()),
            Some(status) => Err(StoreError::NotRunning { id, status, action }),
        }
    }

    /// The check of every write that changes a run: the run exists, is running, and this
    /// handle holds its lease — whose heartbeat the write then renews (once per batch).
    fn require_lease(&self, id: RunId, action: &'static str) -> Result<(), StoreError> {
        self.require_running(id, action)?;
        self.require_held_lease(id, action)
    }

    /// Like [`require_lease`](Self::require_lease) for a running run; an ended run has no
    /// lease holder to ask, so it passes.
    fn require_lease_while_running(&self, id: RunId, action: &'static str) -> Result<(), StoreError> {
        match run_status(&self.tx, id)? {
            None => Err(StoreError::RunNotFound(id)),
            Some(RunStatus::Running) => self.require_held_lease(id, action),
            Some(_) => Ok(()),
        }
    }

    fn require_held_lease(&self, id: RunId, action: &'static str) -> Result<(), StoreError> {
        match self.lease_row(id)? {
            Some(current) if self.holds(&current) => self.renew(id),
            current => {
                Err(StoreError::LeaseNotHeld { run: id, action, holder: current.map(|l| Box::new(l.holder)) })
            }
        }
    }

    /// Whether this handle holds `lease` (acquired it, and nobody took it over since).
    fn holds(&self, lease: &Lease) -> bool {
        self.leases.borrow().get(&lease.run) == Some(&lease.holder.nonce)
    }

    /// Moves the heartbeat of a lease this handle holds to now, once per batch.
    fn renew(&self, id: RunId) -> Result<(), StoreError> {
        if self.renewed.borrow_mut().insert(id) {
            self.tx
                .execute(
                    "UPDATE leases SET heartbeat_at_ms = ?2 WHERE run_id = ?1",
                    params![id.0, self.now_ms],
                )
                .ctx(|| format!("renew the lease of run {id}"))?;
        }
        Ok(())
    }

    fn lease_row(&self, id: RunId) -> Result<Option<Lease>, StoreError> {
        read_lease(&self.tx, id)
    }

    /// Gives the lease of run `id` to `holder` (replacing any other), acquired at `acquired_at_ms`.
    fn write_lease(&self, id: RunId, holder: &LeaseHolder, acquired_at_ms: i64) -> Result<(), StoreError> {
        self.tx
            .execute(
                "INSERT INTO leases (run_id, nonce, pid, host, boot_id, start_ticks, acquired_at_ms, \
                 heartbeat_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (run_id) DO UPDATE SET \
                 nonce = excluded.nonce, pid = excluded.pid, host = excluded.host, boot_id = excluded.boot_id, \
                 start_ticks = excluded.start_ticks, acquired_at_ms = excluded.acquired_at_ms, \
                 heartbeat_at_ms = excluded.heartbeat_at_ms",
                params![
                    id.0,
                    holder.nonce,
                    holder.pid,
                    holder.host,
                    holder.boot_id,
                    holder.start_ticks.map(|t| i64::try_from(t).unwrap_or(i64::MAX)),
                    acquired_at_ms,
                    self.now_ms
                ],
            )
            .ctx(|| format!("lease run {id} to {holder}"))?;
        self.leases.borrow_mut().insert(id, holder.nonce.clone());
        self.renewed.borrow_mut().insert(id);
        Ok(())
    }

    fn delete_lease(&self, id: RunId) -> Result<(), StoreError> {
        self.tx
            .execute("DELETE FROM leases WHERE run_id = ?1", [id.0])
            .ctx(|| format!("release the lease of run {id}"))?;
        Ok(())
    }

    /// Turns "no row updated" of a status-guarded UPDATE into the right error.
    fn expect_running(&self, id: RunId, changed: usize, action: &'static str) -> Result<(), StoreError> {
        if changed > 0 {
            return Ok(());
        }
        match run_status(&self.tx, id)? {
            None => Err(StoreError::RunNotFound(id)),
            Some(status) => Err(StoreError::NotRunning { id, status, action }),
        }
    }
}

/// The lease of run `id` as stored, if any.
pub(crate) fn read_lease(conn: &rusqlite::Connection, id: RunId) -> Result<Option<Lease>, StoreError> {
    let row = conn
        .query_row(
            "SELECT nonce, pid, host, boot_id, start_ticks, acquired_at_ms, heartbeat_at_ms FROM leases \
             WHERE run_id = ?1",
            [id.0],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            },
        )
        .optional()
        .ctx(|| format!("read the lease of run {id}"))?;
    row.map(|(nonce, pid, host, boot_id, start_ticks, acquired_at_ms, heartbeat_at_ms)| {
        let pid = u32::try_from(pid)
            .map_err(|_| StoreError::Corrupt(format!("the lease of run {id} has pid {pid}")))?;
        let start_ticks = start_ticks.map(|t| t as u64); // CHECKed non-negative
        Ok(Lease {
            run: id,
            holder: LeaseHolder { pid, host, nonce, boot_id, start_ticks },
            acquired_at_ms,
            heartbeat_at_ms,
        })
    })
    .transpose()
}
