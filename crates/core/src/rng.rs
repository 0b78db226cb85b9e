//! Keyed, counter-based randomness.
//!
//! Every random draw in gristmill comes from a stream named by
//! `(root_seed, purpose, step, index)`. Two draws with the same key see the same numbers on
//! any thread, in any order, so results never depend on scheduling. There is no global or
//! thread-local generator anywhere in the workspace.
//!
//! ```
//! use gristmill_core::rng::{Purpose, stream};
//! use rand::Rng;
//! let a: u64 = stream(7, Purpose::SAMPLE, 3, 11).random();
//! let b: u64 = stream(7, Purpose::SAMPLE, 3, 11).random();
//! assert_eq!(a, b);
//! ```

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The generator every stream uses. Named explicitly (not `StdRng`) because its algorithm
/// is part of the determinism contract: changing it changes every stored digest.
pub type KeyedRng = ChaCha8Rng;

/// What a stream is used for. A purpose separates streams that share a step and index,
/// e.g. task generation and response sampling for the same sample slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Purpose(pub u64);

impl Purpose {
    /// Builds a purpose from a name (FNV-1a of its bytes), usable in `const` context.
    pub const fn named(name: &str) -> Purpose {
        let bytes = name.as_bytes();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut i = 0;
        while i < bytes.len() {
            h ^= bytes[i] as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
            i += 1;
        }
        Purpose(h)
    }
    /// Generating training tasks.
    pub const TASK: Purpose = Purpose::named("task");
    /// Choosing which source a training task comes from (curriculum sampling).
    pub const SOURCE: Purpose = Purpose::named("source");
    /// Generating the gold evaluation suite.
    pub const EVAL: Purpose = Purpose::named("eval");
    /// Sampling a policy's response.
    pub const SAMPLE: Purpose = Purpose::named("sample");
    /// Whether a hint is shown.
    pub const HINT: Purpose = Purpose::named("hint");
    /// Randomness inside a piece's score (e.g. a noisy verifier's flips).
    pub const PIECE: Purpose = Purpose::named("piece");
    /// Building a piece (e.g. generating a reward model's preference pairs).
    pub const BUILD: Purpose = Purpose::named("build");
    /// Initialising model parameters.
    pub const INIT: Purpose = Purpose::named("init");
    /// Multi-turn episode starts and environment noise.
    pub const EPISODE: Purpose = Purpose::named("episode");

    /// A purpose specialised by a label, e.g. one stream family per piece id.
    pub fn with(self, label: &str) -> Purpose {
        Purpose(mix(self.0, Purpose::named(label).0))
    }
}

/// SplitMix64 finaliser: a bijective avalanche on 64 bits. Written by hand because it is the
/// key-derivation function of the determinism contract and must never change under us.
const fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Combines two words into one, order-sensitively.
pub const fn mix(a: u64, b: u64) -> u64 {
    splitmix(splitmix(a) ^ b.rotate_left(17))
}

/// The stream for `(root_seed, purpose, step, index)`.
pub fn stream(root_seed: u64, purpose: Purpose, step: u64, index: u64) -> KeyedRng {
    let k0 = mix(root_seed, purpose.0);
    let k1 = mix(k0, step);
    let k2 = mix(k1, index);
    let mut seed = [0u8; 32];
    for (i, word) in [k0, k1, k2, mix(k2, 0x5eed)].iter().enumerate() {
        seed[i * 8..i * 8 + 8].copy_from_slice(&word.to_le_bytes());
    }
    ChaCha8Rng::from_seed(seed)
}

/// A seed derived from a key, for components that take a plain `u64` seed.
pub fn derive_seed(root_seed: u64, purpose: Purpose, step: u64, index: u64) -> u64 {
    mix(mix(mix(root_seed, purpose.0), step), index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn same_key_same_numbers_and_keys_are_separated() {
        let draw = |r, p, s, i| -> [u64; 4] {
            let mut g = stream(r, p, s, i);
            [g.random(), g.random(), g.random(), g.random()]
        };
        assert_eq!(draw(1, Purpose::TASK, 2, 3), draw(1, Purpose::TASK, 2, 3));
        let base = draw(1, Purpose::TASK, 2, 3);
        assert_ne!(base, draw(2, Purpose::TASK, 2, 3));
        assert_ne!(base, draw(1, Purpose::SAMPLE, 2, 3));
        assert_ne!(base, draw(1, Purpose::TASK, 3, 3));
        assert_ne!(base, draw(1, Purpose::TASK, 2, 4));
        // Swapping step and index must not collide.
        assert_ne!(draw(1, Purpose::TASK, 3, 2), base);
    }

    #[test]
    fn purposes_are_distinct() {
        let all = [
            Purpose::TASK,
            Purpose::SOURCE,
            Purpose::EVAL,
            Purpose::SAMPLE,
            Purpose::HINT,
            Purpose::PIECE,
            Purpose::BUILD,
            Purpose::INIT,
            Purpose::EPISODE,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_ne!(Purpose::PIECE.with("a"), Purpose::PIECE.with("b"));
    }
}
