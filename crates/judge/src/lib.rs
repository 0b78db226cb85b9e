//! # gristmill-judge
//!
//! A rubric judge: score a model's response to a prompt by asking a grader model — any
//! OpenAI-compatible chat-completions endpoint — one question per rubric item. Each item is a
//! reward sub-channel scored in `[0, 1]`; the judge also returns their weighted total.
//! Standalone (no other gristmill crate), blocking, and safe to call from many threads.
//!
//! ```no_run
//! use gristmill_judge::{Endpoint, Judge, JudgeRequest, RubricConfig, RubricItem};
//!
//! let rubric = RubricConfig::new(
//!     "helpfulness",
//!     Endpoint::new("http://127.0.0.1:8000/v1", "grader-7b"),
//!     vec![
//!         RubricItem::yes_no("Does the response answer the question?").with_id("answers").with_weight(2.0),
//!         RubricItem::scaled("How clear is the response?", 10).with_id("clarity"),
//!     ],
//! );
//! let judge = Judge::new(rubric)?;
//! let request = JudgeRequest::new("task-17", "What is 2 + 2?", "2 + 2 = 4.");
//! let score = judge.score(&request)?;
//! for item in &score.items {
//!     println!("{:?}: {} ({:?})", item.id, item.score, item.verdict.value);
//! }
//! println!("total {}", score.total); // Σ wᵢ·sᵢ / Σ wᵢ
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! With a persistent cache, a replay needs no endpoint at all:
//!
//! ```
//! use std::sync::Arc;
//! use gristmill_judge::{
//!     Endpoint, ErrorKind, Judge, JudgeRequest, MemoryCache, Mode, RubricConfig, RubricItem, Verdict,
//!     VerdictCache, VerdictKind,
//! };
//!
//! let rubric = RubricConfig::new(
//!     "polite",
//!     Endpoint::new("http://127.0.0.1:9/v1", "grader"), // nothing listens there
//!     vec![RubricItem::yes_no("Is the response polite?")],
//! );
//! let cache = Arc::new(MemoryCache::new());
//! let judge = Judge::new(rubric)?.with_cache(cache.clone()).with_mode(Mode::Offline);
//! let request = JudgeRequest::new("t1", "Ask for the salt.", "Could you pass the salt, please?");
//!
//! // A cold cache offline is a typed error naming the item and the key…
//! let err = judge.score(&request).unwrap_err();
//! assert!(matches!(*err.kind, ErrorKind::OfflineMiss { .. }));
//!
//! // …and a warm one answers without a request (here we warm it by hand).
//! let key = judge.cache_key(&request, 0)?;
//! cache.put(&key, &Verdict::parse("Polite.\nVERDICT: yes", VerdictKind::YesNo)?)?;
//! let score = judge.score(&request)?;
//! assert_eq!((score.items[0].score, score.total), (1.0, 1.0));
//! assert_eq!(judge.stats().requests, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Pieces
//!
//! | module | what |
//! |---|---|
//! | [`config`] | the rubric as plain data (serde; TOML example there) and its validation |
//! | [`template`] | prompt templates: `{prompt}`, `{response}`, `{question}`, `{gold}`, `{format}`, `{{`/`}}` |
//! | [`fence`] | how untrusted text is fenced so that it cannot break the prompt's structure |
//! | [`verdict`] | the verdict format (`VERDICT: yes`/`no`, `SCORE: n/m`) and its strict parser |
//! | [`key`] | the content-addressed cache key (BLAKE3) |
//! | [`cache`] | the [`VerdictCache`] seam, [`MemoryCache`] and the append-only [`JsonlCache`] |
//! | [`judge`] | [`Judge::score`]: rendering, caching, retries, the concurrency limit |
//! | [`error`] | typed errors |
//!
//! ## Determinism
//!
//! A score is a pure function of the cached verdicts: once an item's verdict is in the
//! cache, every later call — a replay, another coalition, a resumed run, another thread —
//! gets the same verdict and the same bits, and never asks the grader again. Nothing random
//! and no clock is read; retry jitter is derived from the cache key. What the *grader*
//! answers the first time is up to the grader (temperature 0 and a seed help on servers
//! that honour them).
//!
//! ## HTTP
//!
//! Blocking [`ureq`] 3 (no async runtime). The default `tls` feature enables `https://`
//! through rustls with the webpki roots, the same ureq build gristmill-lm links; without it
//! only `http://` endpoints are accepted. Proxies are taken from the usual environment
//! variables, as ureq does.
//!
//! See `docs/judge.md` in the gristmill repository for the whole design.

#![deny(missing_docs)]

pub mod cache;
mod client;
pub mod config;
pub mod error;
pub mod fence;
pub mod judge;
pub mod key;
mod prompt;
pub mod template;
pub mod verdict;

pub use cache::{JsonlCache, MemoryCache, Recovery, VerdictCache};
pub use config::{Endpoint, Jitter, PromptTemplate, RetryPolicy, RubricConfig, RubricItem, Sampling};
pub use error::{CacheError, ConfigError, ConfigErrors, EndpointFailure, ErrorKind, ItemRef, JudgeError};
pub use fence::BlockLabel;
pub use judge::{ItemScore, Judge, JudgeRequest, JudgeScore, JudgeStats, Mode};
pub use key::CacheKey;
pub use prompt::{Message, Role};
pub use verdict::{
    UnparseableVerdict, Verdict, VerdictKind, VerdictProblem, VerdictValue, VERDICT_FORMAT_VERSION,
};
