//! # gristmill-core
//!
//! The vocabulary every other gristmill crate speaks: [`Task`](task::Task)s drawn from
//! [`TaskSource`](task::TaskSource)s, [`Policy`](policy::Policy) responses, reward
//! [`pieces`](piece), multi-turn [`Episode`](episode::Episode)s, keyed randomness
//! ([`rng`]), and the TOML environment [`spec`].
//!
//! This crate knows nothing of learning, storage or HTTP. Its one hard rule is the
//! determinism contract: every random draw is keyed by `(root_seed, purpose, step, index)`.
//!
//! ```
//! use gristmill_core::spec::EnvSpec;
//! let spec = EnvSpec::parse("name = 'x'\n[[source]]\nid = 'a'\nfamily = 'addition'\n", "inline").unwrap();
//! assert_eq!(spec.sources[0].family, "addition");
//! assert!(EnvSpec::parse("name = 'x'\nbogus = 1\n", "inline").is_err());
//! ```
#![warn(missing_docs)]

pub mod digest;
pub mod episode;
pub mod error;
pub mod params;
pub mod piece;
pub mod policy;
pub mod rng;
pub mod spec;
pub mod task;

pub use error::{ParseError, SpecError, SpecProblem, TaskError};
