//! The judge: renders each rubric item's prompt, looks its verdict up in the cache, asks the
//! grader for the ones missing (with retries, a concurrency limit and single flight per key),
//! and weighs the item scores.
//!
//! ## Retries
//!
//! Each item's request is sent at most `1 + retry.retries + retry.unparseable_retries` times:
//!
//! * a **retryable endpoint failure** — a timeout, a connection failure, HTTP 429 or 5xx, a 2xx
//!   body that is not a chat completion — is retried after a backoff of
//!   `min(backoff_ms · 2ⁿ, max_backoff_ms)` for the `n`-th retry (0-based), scaled by the
//!   [`Jitter`]; on 429 the wait is at least the server's `Retry-After`, capped at
//!   `retry_after_cap_ms`. After `retry.retries` such retries the failure is
//!   [`ErrorKind::Endpoint`]. Any other 4xx, and transport failures such as TLS errors, fail
//!   at once.
//! * an **unparseable verdict** is a model output, not a transport failure, so it gets its own
//!   budget: it is retried at once, with the same request, `retry.unparseable_retries` times
//!   (default once), then it is [`ErrorKind::Unparseable`]. A deterministic server will answer
//!   the same again, so the retry helps only against sampling noise or a transient server
//!   fault; it costs one request in the rare bad case. It is never cached, so a later call
//!   asks again.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::json;

use crate::cache::{MemoryCache, VerdictCache};
use crate::client::Client;
use crate::config::{Compiled, Jitter, RetryPolicy, RubricConfig};
use crate::error::{CacheError, ConfigErrors, ErrorKind, ItemRef, JudgeError};
use crate::key::CacheKey;
use crate::prompt::{render, Fenced, Message};
use crate::template::Placeholder;
use crate::verdict::{parse, Verdict, VerdictKind};

/// Whether a judge may ask its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Verdicts missing from the cache are asked for.
    #[default]
    Online,
    /// Every verdict must come from the cache; a miss is [`ErrorKind::OfflineMiss`]. The
    /// endpoint is never contacted.
    Offline,
}

/// One response to score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JudgeRequest<'a> {
    /// The caller's identifier for the task (or sample), named in errors. Not part of the
    /// prompt or the cache key.
    pub task: &'a str,
    /// The task prompt the response answers (`{prompt}`).
    pub prompt: &'a str,
    /// The response under judgement (`{response}`).
    pub response: &'a str,
    /// The gold answer (`{gold}`), for templates that show one.
    pub gold: Option<&'a str>,
}

impl<'a> JudgeRequest<'a> {
    /// A request without a gold answer.
    pub fn new(task: &'a str, prompt: &'a str, response: &'a str) -> JudgeRequest<'a> {
        JudgeRequest { task, prompt, response, gold: None }
    }

    /// The request with a gold answer.
    pub fn with_gold(self, gold: &'a str) -> JudgeRequest<'a> {
        JudgeRequest { gold: Some(gold), ..self }
    }
}

/// One item's score: one reward sub-channel.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemScore {
    /// The item's index in the rubric.
    pub index: usize,
    /// The item's id, if it has one.
    pub id: Option<String>,
    /// The item's weight.
    pub weight: f64,
    /// The score in `[0, 1]` ([`Verdict::score`]).
    pub score: f64,
    /// The verdict it comes from.
    pub verdict: Verdict,
    /// The verdict's cache key.
    pub key: CacheKey,
}

/// A response's scores: every item's, and the weighted total.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgeScore {
    /// The judge's id.
    pub judge: String,
    /// Every item's score, in rubric order.
    pub items: Vec<ItemScore>,
    /// `Σ weightᵢ · scoreᵢ / Σ weightᵢ`, summed in rubric order: in `[0, 1]`.
    pub total: f64,
}

/// Counters since the judge was built. Accounting only: never part of a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JudgeStats {
    /// HTTP requests sent (every attempt counts).
    pub requests: u64,
    /// Items answered from the cache without asking or waiting.
    pub cache_hits: u64,
    /// Items that waited for another thread asking the same key.
    pub coalesced: u64,
}

/// A rubric judge. Cheap to share: `&Judge` is `Send + Sync`, and [`Judge::score`] may be
/// called from any number of threads at once.
pub struct Judge {
    config: RubricConfig,
    compiled: Compiled,
    kinds: Vec<VerdictKind>,
    client: Client,
    cache: Arc<dyn VerdictCache>,
    mode: Mode,
    slots: Slots,
    flights: Flights,
    requests: AtomicU64,
    cache_hits: AtomicU64,
    coalesced: AtomicU64,
}

impl fmt::Debug for Judge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Judge")
            .field("id", &self.config.id)
            .field("client", &self.client)
            .field("mode", &self.mode)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Judge {
    /// A judge for `config`, online, with an empty [`MemoryCache`]. Reads the API key
    /// variable; opens no connection.
    ///
    /// # Errors
    /// [`ConfigErrors`] listing every problem in `config`.
    pub fn new(config: RubricConfig) -> Result<Judge, ConfigErrors> {
        let compiled = config.compile()?;
        let kinds = (0..config.items.len()).filter_map(|i| config.item_kind(i)).collect();
        Ok(Judge {
            client: Client::new(&config.endpoint),
            slots: Slots::new(config.endpoint.concurrency),
            compiled,
            kinds,
            config,
            cache: Arc::new(MemoryCache::new()),
            mode: Mode::Online,
            flights: Flights::default(),
            requests: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            coalesced: AtomicU64::new(0),
        })
    }

    /// The judge with `cache` instead of its own.
    pub fn with_cache(mut self, cache: Arc<dyn VerdictCache>) -> Judge {
        self.cache = cache;
        self
    }

    /// The judge in `mode`.
    pub fn with_mode(mut self, mode: Mode) -> Judge {
        self.mode = mode;
        self
    }

    /// The judge's id.
    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// Its configuration.
    pub fn config(&self) -> &RubricConfig {
        &self.config
    }

    /// The URL requests are posted to.
    pub fn url(&self) -> &str {
        self.client.url()
    }

    /// Its mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Counters since it was built.
    pub fn stats(&self) -> JudgeStats {
        JudgeStats {
            requests: self.requests.load(Ordering::Relaxed),
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
            coalesced: self.coalesced.load(Ordering::Relaxed),
        }
    }

    fn error(&self, request: &JudgeRequest<'_>, item: Option<usize>, kind: ErrorKind) -> JudgeError {
        JudgeError {
            judge: self.config.id.clone(),
            task: request.task.to_string(),
            item: item.map(|index| ItemRef { index, id: self.config.items[index].id.clone() }),
            kind: Box::new(kind),
        }
    }

    fn fenced(&self, request: &JudgeRequest<'_>) -> Result<Fenced, JudgeError> {
        if self.compiled.uses(Placeholder::Gold) && request.gold.is_none() {
            return Err(self.error(request, None, ErrorKind::MissingGold));
        }
        Ok(Fenced::new(request.prompt, request.response, request.gold))
    }

    fn item_messages(&self, fenced: &Fenced, item: usize) -> Vec<Message> {
        render(&self.compiled, fenced, &self.config.items[item].question, self.kinds[item])
    }

    fn item_key(&self, messages: &[Message], item: usize) -> CacheKey {
        CacheKey::derive(&self.config.endpoint.model, &self.config.sampling, messages, self.kinds[item])
    }

    /// The messages sent to the grader for `item` of `request`.
    ///
    /// # Errors
    /// [`ErrorKind::MissingGold`] if the template shows a gold answer and the request has none.
    ///
    /// # Panics
    /// If `item` is not an index of the rubric's items.
    pub fn messages(&self, request: &JudgeRequest<'_>, item: usize) -> Result<Vec<Message>, JudgeError> {
        assert!(item < self.kinds.len(), "item {item} of a rubric with {} items", self.kinds.len());
        Ok(self.item_messages(&self.fenced(request)?, item))
    }

    /// The cache key of `item` of `request`.
    ///
    /// # Errors
    /// As [`Judge::messages`].
    ///
    /// # Panics
    /// As [`Judge::messages`].
    pub fn cache_key(&self, request: &JudgeRequest<'_>, item: usize) -> Result<CacheKey, JudgeError> {
        Ok(self.item_key(&self.messages(request, item)?, item))
    }

    /// Scores `request` on every rubric item. Blocks until every verdict is in. Items missing
    /// from the cache are asked for in parallel (on scoped threads, at most `concurrency` of
    /// them), each new verdict is stored in the cache, and concurrent calls that need the same
    /// key wait for one request instead of sending their own.
    ///
    /// # Errors
    /// The first failing item's [`JudgeError`], in rubric order (the other items' verdicts
    /// are still cached).
    pub fn score(&self, request: &JudgeRequest<'_>) -> Result<JudgeScore, JudgeError> {
        let fenced = self.fenced(request)?;
        let n = self.kinds.len();
        let mut keyed = Vec::with_capacity(n);
        let mut verdicts: Vec<Option<Result<Verdict, ErrorKind>>> = Vec::with_capacity(n);
        for item in 0..n {
            let messages = self.item_messages(&fenced, item);
            let key = self.item_key(&messages, item);
            verdicts.push(match self.cached(&key, item) {
                Ok(Some(v)) => {
                    self.cache_hits.fetch_add(1, Ordering::Relaxed);
                    Some(Ok(v))
                }
                Ok(None) if self.mode == Mode::Offline => Some(Err(ErrorKind::OfflineMiss { key })),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            });
            keyed.push((key, messages));
        }

        let pending: Vec<usize> = (0..n).filter(|&i| verdicts[i].is_none()).collect();
        let workers = pending.len().min(self.config.endpoint.concurrency);
        if workers == 1 {
            for &i in &pending {
                verdicts[i] = Some(self.resolve(i, &keyed[i].0, &keyed[i].1));
            }
        } else if workers > 1 {
            let next = AtomicUsize::new(0);
            let done: Vec<(usize, Result<Verdict, ErrorKind>)> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..workers)
                    .map(|_| {
                        s.spawn(|| {
                            let mut out = Vec::new();
                            loop {
                                let Some(&i) = pending.get(next.fetch_add(1, Ordering::Relaxed)) else {
                                    return out;
                                };
                                out.push((i, self.resolve(i, &keyed[i].0, &keyed[i].1)));
                            }
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
                    .collect()
            });
            for (i, r) in done {
                verdicts[i] = Some(r);
            }
        }

        let mut items = Vec::with_capacity(n);
        let mut weighted = 0.0;
        for (i, (verdict, (key, _))) in verdicts.into_iter().zip(keyed).enumerate() {
            let verdict = match verdict.expect("every item is resolved") {
                Ok(v) => v,
                Err(kind) => return Err(self.error(request, Some(i), kind)),
            };
            let item = &self.config.items[i];
            let score = verdict.score();
            weighted += item.weight * score;
            items.push(ItemScore { index: i, id: item.id.clone(), weight: item.weight, score, verdict, key });
        }
        let total = (weighted / self.compiled.total_weight).clamp(0.0, 1.0);
        Ok(JudgeScore { judge: self.config.id.clone(), items, total })
    }

    /// The cached verdict for `key`, checked against the item's kind.
    fn cached(&self, key: &CacheKey, item: usize) -> Result<Option<Verdict>, ErrorKind> {
        match self.cache.get(key)? {
            Some(v) if !v.value.fits(self.kinds[item]) => Err(ErrorKind::Cache(CacheError::Mismatch {
                key: *key,
                value: v.value,
                kind: self.kinds[item],
            })),
            found => Ok(found),
        }
    }

    /// The verdict for one missed key: from the cache if another thread stored it meanwhile,
    /// else asked for (one thread per key at a time) and stored.
    fn resolve(&self, item: usize, key: &CacheKey, messages: &[Message]) -> Result<Verdict, ErrorKind> {
        loop {
            match self.flights.claim(key) {
                Claim::Follower(flight) => {
                    flight.wait();
                    self.coalesced.fetch_add(1, Ordering::Relaxed);
                    if let Some(v) = self.cached(key, item)? {
                        return Ok(v);
                    }
                    // The leader failed: try ourselves.
                }
                Claim::Leader(_flight) => {
                    if let Some(v) = self.cached(key, item)? {
                        self.cache_hits.fetch_add(1, Ordering::Relaxed);
                        return Ok(v);
                    }
                    let fresh = self.ask(self.kinds[item], key, messages)?;
                    self.cache.put(key, &fresh)?;
                    // Insert-if-absent: another process may have stored a verdict first.
                    return Ok(self.cached(key, item)?.unwrap_or(fresh));
                }
            }
        }
    }

    /// Asks the grader, with retries.
    fn ask(&self, kind: VerdictKind, key: &CacheKey, messages: &[Message]) -> Result<Verdict, ErrorKind> {
        let s = &self.config.sampling;
        let mut body = json!({
            "model": self.config.endpoint.model,
            "messages": messages,
            "temperature": s.temperature,
            "max_tokens": s.max_tokens,
            "n": 1,
            "stream": false,
        });
        if let Some(top_p) = s.top_p {
            body["top_p"] = json!(top_p);
        }
        if let Some(seed) = s.seed {
            body["seed"] = json!(seed);
        }
        let body = body.to_string();
        let policy = &self.config.retry;
        let (mut attempts, mut retried, mut reparsed) = (0u32, 0u32, 0u32);
        loop {
            attempts += 1;
            let answer = {
                let _slot = self.slots.acquire();
                self.requests.fetch_add(1, Ordering::Relaxed);
                self.client.complete(&body)
            };
            match answer {
                Ok(text) => match parse(&text, kind) {
                    Ok(value) => return Ok(Verdict { value, text }),
                    Err(_) if reparsed < policy.unparseable_retries => reparsed += 1,
                    Err(verdict) => return Err(ErrorKind::Unparseable { attempts, verdict }),
                },
                Err(failed) if failed.failure.is_retryable() && retried < policy.retries => {
                    std::thread::sleep(backoff(policy, retried, key, failed.retry_after));
                    retried += 1;
                }
                Err(failed) => {
                    return Err(ErrorKind::Endpoint {
                        url: self.client.url().to_string(),
                        attempts,
                        failure: failed.failure,
                    })
                }
            }
        }
    }
}

/// The wait before retry `n` (0-based) of the request with `key`.
pub(crate) fn backoff(
    policy: &RetryPolicy,
    n: u32,
    key: &CacheKey,
    retry_after: Option<Duration>,
) -> Duration {
    let exp = policy.backoff_ms.saturating_mul(1u64 << n.min(40)).min(policy.max_backoff_ms);
    let micros = match policy.jitter {
        Jitter::None => exp.saturating_mul(1000),
        Jitter::Deterministic => {
            let mut h = blake3::Hasher::new_derive_key("gristmill-judge retry jitter v1");
            h.update(&key.0).update(&n.to_le_bytes());
            let bits = u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().expect("8 bytes"));
            // factor = (2^64 + bits) / 2^65 ∈ [0.5, 1), in integer arithmetic.
            let scaled = (u128::from(exp) * 1000 * ((1u128 << 64) + u128::from(bits))) >> 65;
            u64::try_from(scaled).unwrap_or(u64::MAX)
        }
    };
    let wait = Duration::from_micros(micros);
    match retry_after {
        Some(asked) => wait.max(asked.min(Duration::from_millis(policy.retry_after_cap_ms))),
        None => wait,
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A counting semaphore bounding requests in flight.
#[derive(Debug)]
struct Slots {
    free: Mutex<usize>,
    cv: Condvar,
}

impl Slots {
    fn new(n: usize) -> Slots {
        Slots { free: Mutex::new(n), cv: Condvar::new() }
    }

    fn acquire(&self) -> Slot<'_> {
        let mut free = lock(&self.free);
        while *free == 0 {
            free = self.cv.wait(free).unwrap_or_else(PoisonError::into_inner);
        }
        *free -= 1;
        Slot(self)
    }
}

struct Slot<'a>(&'a Slots);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *lock(&self.0.free) += 1;
        self.0.cv.notify_one();
    }
}

/// Keys being asked for right now, so that one thread asks and the others wait.
#[derive(Default)]
struct Flights {
    map: Mutex<HashMap<CacheKey, Arc<Flight>>>,
}

#[derive(Default)]
struct Flight {
    done: Mutex<bool>,
    cv: Condvar,
}

impl Flight {
    fn wait(&self) {
        let mut done = lock(&self.done);
        while !*done {
            done = self.cv.wait(done).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

enum Claim<'a> {
    Leader(Leader<'a>),
    Follower(Arc<Flight>),
}

/// The asking thread's claim on a key; dropping it (on success, failure or panic) wakes the
/// waiters.
struct Leader<'a> {
    flights: &'a Flights,
    key: CacheKey,
    flight: Arc<Flight>,
}

impl Flights {
    fn claim(&self, key: &CacheKey) -> Claim<'_> {
        let mut map = lock(&self.map);
        if let Some(f) = map.get(key) {
            return Claim::Follower(Arc::clone(f));
        }
        let flight = Arc::new(Flight::default());
        map.insert(*key, Arc::clone(&flight));
        Claim::Leader(Leader { flights: self, key: *key, flight })
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        lock(&self.flights.map).remove(&self.key);
        *lock(&self.flight.done) = true;
        self.flight.cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters_deterministically() {
        let key = CacheKey([7; 32]);
        let mut p =
            RetryPolicy { jitter: Jitter::None, backoff_ms: 100, max_backoff_ms: 1000, ..Default::default() };
        let waits: Vec<u128> = (0..6).map(|n| backoff(&p, n, &key, None).as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff(&p, 100, &key, None), Duration::from_millis(1000));
        p.retry_after_cap_ms = 5000;
        assert_eq!(backoff(&p, 0, &key, Some(Duration::from_secs(3))), Duration::from_secs(3));
        assert_eq!(backoff(&p, 0, &key, Some(Duration::from_secs(30))), Duration::from_secs(5));
        assert_eq!(backoff(&p, 3, &key, Some(Duration::from_millis(10))), Duration::from_millis(800));

        p.jitter = Jitter::Deterministic;
        for n in 0..4 {
            let full = Duration::from_millis(100 << n);
            let a = backoff(&p, n, &key, None);
            assert_eq!(a, backoff(&p, n, &key, None), "same key, same wait");
            assert!(a >= full / 2 && a < full, "{a:?} vs {full:?}");
        }
        let spread: std::collections::HashSet<Duration> =
            (0..16u8).map(|k| backoff(&p, 0, &CacheKey([k; 32]), None)).collect();
        assert!(spread.len() > 8, "keys spread their retries: {spread:?}");
    }

    #[test]
    fn judges_are_shareable() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Judge>();
    }
}
