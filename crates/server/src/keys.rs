//! Task keys on the wire.
//!
//! A wire key names one task of one environment and lets the server regenerate it without
//! state:
//!
//! | key | task | score randomness (`ScoreKey`) |
//! |---|---|---|
//! | `t-<seed hex>-<step>-<index>` | training slot `index` of step `step` under root seed `seed`: `env.training_task(&env.sampling_distribution(), hint probability, seed, step, index)`, hint line included as in-process training would show it | `{seed, step, index: sample}` |
//! | `e-<index>` | task `index` of the gold suite (`env.eval_suite()[index]`), never hinted | `{seed: eval.seed, step: 0, index: sample}` |
//!
//! `sample` is the score request's optional field; it defaults to the task's `index`. In
//! the engine's rollouts response `g` to task `b` has sample index `b · G + g`
//! (`gristmill_engine::sample_index`), so a client that passes that reproduces a rollout's
//! reward vectors exactly.
//!
//! Seeds are lowercase hexadecimal without padding; step and index are decimal; all three
//! are `u64`. Parsing is strict: only those digits, no signs, no spaces, no extra parts.

use std::fmt;
use std::str::FromStr;

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

fn hex(part: &str) -> Option<u64> {
    if part.is_empty() || part.len() > 16 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(part, 16).ok()
}

fn dec(part: &str) -> Option<u64> {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

impl FromStr for WireKey {
    /// Why the key is not in the format.
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.len() > MAX_KEY_LEN {
            return Err(format!("longer than {MAX_KEY_LEN} bytes"));
        }
        let mut parts = text.split('-');
        let kind = parts.next().unwrap_or("");
        let rest: Vec<&str> = parts.collect();
        match (kind, rest.as_slice()) {
            ("t", [seed, step, index]) => Ok(WireKey::Train {
                seed: hex(seed).ok_or("seed must be 1 to 16 hex digits")?,
                step: dec(step).ok_or("step must be a decimal u64")?,
                index: dec(index).ok_or("index must be a decimal u64")?,
            }),
            ("t", _) => Err("a training key has the form `t-<seed hex>-<step>-<index>`".into()),
            ("e", [index]) => Ok(WireKey::Eval { index: dec(index).ok_or("index must be a decimal u64")? }),
            ("e", _) => Err("an eval key has the form `e-<index>`".into()),
            _ => Err("must start with `t-` (training task) or `e-` (gold eval task)".into()),
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
            "t-1-99999999999999999999-1",
            "e-",
            "e--1",
            "e-1-2",
            "x-1",
            "T-1-2-3",
        ] {
            assert!(bad.parse::<WireKey>().is_err(), "{bad:?} parsed");
        }
        assert!("t-1-1-".repeat(20).parse::<WireKey>().is_err());
    }
}
