//! Task keys on the wire.
//!
//! A wire key names one task of one environment and lets whoever holds the environment (the
//! HTTP server, the Python package) regenerate it without state ([`Environment::keyed_task`]):
//!
//! | key | task | score randomness (`ScoreKey`) |
//! |---|---|---|
//! | `t-<seed hex>-<step>-<index>` | training slot `index` of step `step` under root seed `seed`: `env.training_task(&env.sampling_distribution(), hint probability, seed, step, index)`, hint line included as in-process training would show it | `{seed, step, index: sample}` |
//! | `e-<index>` | task `index` of the gold suite (`env.eval_suite()[index]`), never hinted | `{seed: eval.seed, step: 0, index: sample}` |
//!
//! `sample` is the scorer's optional sample index; it defaults to the task's `index`. In
//! the engine's rollouts response `g` to task `b` has sample index `b · G + g`
//! (`gristmill_engine::sample_index`), so a client that passes that reproduces a rollout's
//! reward vectors exactly.
//!
//! Every key has exactly one spelling, the one [`WireKey`]'s `Display` writes: seeds are lowercase
//! hexadecimal without leading zeros, step and index decimal without leading zeros (`0`
//! itself is written `0`); no signs, spaces, upper case or extra parts. A key in that
//! grammar whose number does not fit a `u64` is well-formed but names no task.

use std::fmt;
use std::str::FromStr;

use gristmill_core::piece::ScoreKey;
use gristmill_core::task::{Split, Task, TaskKey};

use crate::{EngineError, Environment};

/// A parsed wire task key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireKey {
    /// A training task: slot `index` of step `step` under root seed `seed`.
    Train {
        /// Root seed.
        seed: u64,
        /// Training step.
        step: u64,
        /// Slot within the step.
        index: u64,
    },
    /// Task `index` of the gold eval suite.
    Eval {
        /// Position in the suite.
        index: u64,
    },
}

impl WireKey {
    /// The task index (the default score `sample`).
    pub fn index(&self) -> u64 {
        match *self {
            WireKey::Train { index, .. } | WireKey::Eval { index } => index,
        }
    }
}

impl fmt::Display for WireKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WireKey::Train { seed, step, index } => write!(f, "t-{seed:x}-{step}-{index}"),
            WireKey::Eval { index } => write!(f, "e-{index}"),
        }
    }
}

/// Longest key accepted (a train key with three maximal numbers is 2 + 16 + 1 + 20 + 1 + 20).
const MAX_KEY_LEN: usize = 64;

/// Why a text is not a task key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// Not in the key grammar (`bad_task_key`).
    Format(String),
    /// In the grammar, but a number does not fit a `u64`, so no task has it
    /// (`unknown_task_key`).
    OutOfRange(String),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Format(why) | KeyError::OutOfRange(why) => f.write_str(why),
        }
    }
}

/// Digits in their one spelling: non-empty, no leading zero unless the number is 0.
fn canonical(part: &str, digit: impl Fn(u8) -> bool) -> bool {
    !part.is_empty() && part.bytes().all(digit) && (part == "0" || !part.starts_with('0'))
}

fn hex(part: &str) -> Result<u64, KeyError> {
    if part.len() > 16 || !canonical(part, |b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(KeyError::Format(
            "seed must be 1 to 16 lowercase hex digits without leading zeros".into(),
        ));
    }
    u64::from_str_radix(part, 16).map_err(|e| KeyError::Format(format!("seed: {e}")))
}

fn dec(part: &str, what: &str) -> Result<u64, KeyError> {
    if part.len() > 20 || !canonical(part, |b| b.is_ascii_digit()) {
        return Err(KeyError::Format(format!("{what} must be decimal digits without leading zeros")));
    }
    part.parse().map_err(|_| KeyError::OutOfRange(format!("{what} {part} is larger than 2^64 - 1")))
}

impl FromStr for WireKey {
    /// Why the key is not a task key.
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, KeyError> {
        let format = |why: &str| KeyError::Format(why.to_string());
        if text.len() > MAX_KEY_LEN {
            return Err(KeyError::Format(format!("longer than {MAX_KEY_LEN} bytes")));
        }
        let mut parts = text.split('-');
        let kind = parts.next().unwrap_or("");
        let fields = [parts.next(), parts.next(), parts.next(), parts.next()];
        match (kind, fields) {
            ("t", [Some(seed), Some(step), Some(index), None]) => {
                let seed = hex(seed);
                let step = dec(step, "step");
                let index = dec(index, "index");
                // A format error anywhere outranks a number out of range.
                for r in [&seed, &step, &index] {
                    if let Err(e @ KeyError::Format(_)) = r {
                        return Err(e.clone());
                    }
                }
                Ok(WireKey::Train { seed: seed?, step: step?, index: index? })
            }
            ("t", _) => Err(format("a training key has the form `t-<seed hex>-<step>-<index>`")),
            ("e", [Some(index), None, None, None]) => Ok(WireKey::Eval { index: dec(index, "index")? }),
            ("e", _) => Err(format("an eval key has the form `e-<index>`")),
            _ => Err(format("must start with `t-` (training task) or `e-` (gold eval task)")),
        }
    }
}

impl Environment {
    /// Regenerates the task a wire key names: a training slot as in-process training draws
    /// it (the spec's sampling distribution, its hint probability), or a gold-suite task.
    pub fn keyed_task(&self, key: WireKey) -> Result<Task, EngineError> {
        match key {
            WireKey::Train { seed, step, index } => self.training_task(
                &self.sampling_distribution(),
                self.hint().map(|h| h.probability),
                seed,
                step,
                index,
            ),
            WireKey::Eval { index } => {
                let eval = &self.spec.spec().eval;
                let sources = self.spec.eval_sources();
                if index >= eval.size as u64 || sources.is_empty() {
                    return Err(EngineError::NoSuchEvalTask { index, size: eval.size as u64 });
                }
                let source = sources[(index % sources.len() as u64) as usize] as u32;
                self.task(TaskKey { seed: eval.seed, source, index, split: Split::Eval })
            }
        }
    }

    /// The randomness key pieces score the response to `key`'s task with; `sample` defaults
    /// to the task's index (see the module documentation).
    pub fn keyed_score_key(&self, key: WireKey, sample: Option<u64>) -> ScoreKey {
        let index = sample.unwrap_or(key.index());
        match key {
            WireKey::Train { seed, step, .. } => ScoreKey { seed, step, index },
            WireKey::Eval { .. } => ScoreKey { seed: self.spec.spec().eval.seed, step: 0, index },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_garbage_is_refused() {
        for k in [
            WireKey::Train { seed: 0xdead_beef, step: 3, index: 17 },
            WireKey::Train { seed: u64::MAX, step: u64::MAX, index: u64::MAX },
            WireKey::Eval { index: 0 },
        ] {
            assert_eq!(k.to_string().parse::<WireKey>(), Ok(k));
        }
        assert_eq!("t-deadbeef-3-17".parse(), Ok(WireKey::Train { seed: 0xdead_beef, step: 3, index: 17 }));
        assert_eq!(WireKey::Eval { index: 5 }.to_string(), "e-5");
        for bad in [
            "",
            "t",
            "t-",
            "t-1-2",
            "t-1-2-3-4",
            "t-xyz-1-2",
            "t-1-+2-3",
            "t-1-2- 3",
            "t-11111111111111111-1-1",
            "e-",
            "e--1",
            "e-1-2",
            "x-1",
            "T-1-2-3",
            // One spelling per key: no upper case, no padding.
            "t-DEADBEEF-3-17",
            "t-Deadbeef-3-17",
            "t-0deadbeef-3-17",
            "t-00-1-1",
            "t-1-03-1",
            "t-1-3-017",
            "t-1-00-0",
            "e-07",
            "e-00",
        ] {
            assert!(
                matches!(bad.parse::<WireKey>(), Err(KeyError::Format(_))),
                "{bad:?} parsed: {:?}",
                bad.parse::<WireKey>()
            );
        }
        assert_eq!("t-0-0-0".parse(), Ok(WireKey::Train { seed: 0, step: 0, index: 0 }));
        assert_eq!("e-0".parse(), Ok(WireKey::Eval { index: 0 }));
        // In the grammar but past u64: well-formed, names no task.
        for far in ["t-1-18446744073709551616-0", "t-1-0-99999999999999999999", "e-18446744073709551616"] {
            assert!(matches!(far.parse::<WireKey>(), Err(KeyError::OutOfRange(_))), "{far:?}");
        }
        // A format error wins over a number out of range.
        assert!(matches!("t-X-99999999999999999999-0".parse::<WireKey>(), Err(KeyError::Format(_))));
        assert!("t-1-1-".repeat(20).parse::<WireKey>().is_err());
    }
}
