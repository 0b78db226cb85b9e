//! Judge verdicts cached in the run store: the [`VerdictCache`] a command hands its
//! environment, so that a replay, a coalition run, a resumed run or a re-run of the same
//! command never asks a grader twice (and a replay in `mode = "offline"` needs none).

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use gristmill_core::spec::ValidSpec;
use gristmill_engine::Services;
use gristmill_judge::{CacheError, CacheKey, Verdict, VerdictCache};
use gristmill_store::Store;

/// The store's content-cache namespace for judge verdicts.
pub const NAMESPACE: &str = "judge-verdict";

/// Verdicts in the run store, over a connection of their own (rollout threads call it while
/// the command's connection records the run).
pub struct StoreVerdicts {
    store: Mutex<Store>,
}

impl StoreVerdicts {
    /// Opens the store at `db` for verdicts.
    pub fn open(db: &Path) -> anyhow::Result<StoreVerdicts> {
        Ok(StoreVerdicts { store: Mutex::new(Store::open(db)?) })
    }
}

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> CacheError {
    CacheError::Backend(Box::new(e))
}

impl VerdictCache for StoreVerdicts {
    fn get(&self, key: &CacheKey) -> Result<Option<Verdict>, CacheError> {
        let store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        match store.cached(NAMESPACE, &key.to_hex()).map_err(backend)? {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text).map(Some).map_err(backend),
        }
    }

    fn put(&self, key: &CacheKey, verdict: &Verdict) -> Result<(), CacheError> {
        let text = serde_json::to_string(verdict).map_err(backend)?;
        let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        store.cache_put(NAMESPACE, &key.to_hex(), &text).map_err(backend)?;
        Ok(())
    }
}

/// The services a command gives the environment of `valid`: the store's verdict cache when
/// the spec has a judge (no second connection otherwise).
pub fn services(db: &Path, valid: &ValidSpec) -> anyhow::Result<Services> {
    let has_judge = valid.piece_kinds().iter().any(|k| k.name == "judge");
    Ok(Services {
        verdicts: if has_judge {
            Some(Arc::new(StoreVerdicts::open(db)?) as Arc<dyn VerdictCache>)
        } else {
            None
        },
    })
}
