//! Keyed, counter-based randomness.
//!
//! Every random draw in gristmill comes from a stream named by
//! `(root_seed, purpose, step, index)`. Two draws with the same key see the same numbers on
//! any thread, in any order, so results never depend on scheduling. There is no global or
//! thread-local generator anywhere in the workspace.
//!
//! Streams are SplitMix64 counters keyed by a SplitMix-derived 64-bit key ([`KeyedRng`]):
//! cheap enough to open one per sample, per piece, per decision.
//!
//! ```
//! use gristmill_core::rng::{Purpose, stream};
//! use rand::Rng;
//! let a: u64 = stream(7, Purpose::SAMPLE, 3, 11).random();
//! let b: u64 = stream(7, Purpose::SAMPLE, 3, 11).random();
//! assert_eq!(a, b);
//! ```

use rand::RngCore;

/// The Weyl increment of SplitMix64 (the golden ratio in 64-bit fixed point).
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// The generator every stream uses: SplitMix64 run as a counter-based generator. The `n`-th
/// word (from 1) of the stream keyed `k` is `splitmix(k + n·γ)`, a pure function of the key
/// and the counter.
///
/// Written by hand, not taken from a crate, because its algorithm *is* the determinism
/// contract: every stored digest depends on it, so it must never change under us (rand's
/// `StdRng` explicitly may). SplitMix64 (Steele, Lea & Flood, OOPSLA 2014) passes BigCrush;
/// it is not cryptographic, which nothing here needs. It replaced ChaCha8 because streams here
/// are short — most keys draw one to five words — and ChaCha8 spent more time setting up
/// a stream and filling a 256-byte block than the rest of a rollout did (BENCHMARKS.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedRng {
    counter: u64,
}

impl KeyedRng {
    /// The stream whose key is `key` (normally derived by [`stream`] or [`StreamPrefix`]).
    pub const fn from_key(key: u64) -> KeyedRng {
        KeyedRng { counter: key }
    }
}

impl RngCore for KeyedRng {
    #[inline]
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    #[inline]
    fn next_u64(&mut self) -> u64 {
        self.counter = self.counter.wrapping_add(GAMMA);
        finalize(self.counter)
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

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

/// The SplitMix64 output function (Stafford's "Mix13"): a bijective avalanche on 64 bits.
#[inline]
const fn finalize(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One SplitMix64 step from `z`: the key-derivation round of the determinism contract.
#[inline]
const fn splitmix(z: u64) -> u64 {
    finalize(z.wrapping_add(GAMMA))
}

/// Combines two words into one, order-sensitively.
#[inline]
pub const fn mix(a: u64, b: u64) -> u64 {
    splitmix(splitmix(a) ^ b.rotate_left(17))
}

/// The stream for `(root_seed, purpose, step, index)`.
#[inline]
pub fn stream(root_seed: u64, purpose: Purpose, step: u64, index: u64) -> KeyedRng {
    KeyedRng::from_key(derive_seed(root_seed, purpose, step, index))
}

/// A seed derived from a key, for components that take a plain `u64` seed. It is also the
/// key of [`stream`]`(root_seed, purpose, step, index)`.
#[inline]
pub fn derive_seed(root_seed: u64, purpose: Purpose, step: u64, index: u64) -> u64 {
    StreamPrefix::memoized(root_seed, purpose, step).key(index)
}

/// The streams `(root_seed, purpose, step, ·)` with the shared part of the key derived once.
///
/// `StreamPrefix::new(r, p, s).at(i)` is bit-identical to `stream(r, p, s, i)`; a loop over
/// indices pays one SplitMix round per stream instead of six.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamPrefix {
    /// `splitmix(mix(mix(root, purpose), step))`: the index-independent half of the last mix.
    pre: u64,
}

impl StreamPrefix {
    /// The prefix of `(root_seed, purpose, step)`.
    #[inline]
    pub const fn new(root_seed: u64, purpose: Purpose, step: u64) -> StreamPrefix {
        StreamPrefix { pre: splitmix(mix(mix(root_seed, purpose.0), step)) }
    }
    /// [`new`](StreamPrefix::new), looked up in a small per-thread memo first.
    ///
    /// Hot paths open streams for a handful of `(root, purpose, step)` triples millions of
    /// times per step (one per sample, per piece), and deriving the prefix is five of the six
    /// SplitMix rounds of a key. The memo is a direct-mapped table of exact
    /// `(root, purpose, step) → prefix` entries: a cache of a pure function, holding no
    /// random state, so no result can depend on it (tested against [`new`](StreamPrefix::new)).
    #[inline(always)]
    pub fn memoized(root_seed: u64, purpose: Purpose, step: u64) -> StreamPrefix {
        let slot = (root_seed ^ purpose.0.rotate_left(21) ^ step.rotate_left(42)).wrapping_mul(GAMMA)
            >> (64 - MEMO_BITS);
        PREFIX_MEMO.with(|memo| {
            let cell = &memo[slot as usize];
            let (r, p, s, pre) = cell.get();
            if (r, p, s) == (root_seed, purpose.0, step) {
                return StreamPrefix { pre };
            }
            let fresh = StreamPrefix::new(root_seed, purpose, step);
            cell.set((root_seed, purpose.0, step, fresh.pre));
            fresh
        })
    }
    /// The key of the stream at `index` (its [`derive_seed`]).
    #[inline]
    pub const fn key(&self, index: u64) -> u64 {
        splitmix(self.pre ^ index.rotate_left(17))
    }
    /// The stream at `index`.
    #[inline]
    pub const fn at(&self, index: u64) -> KeyedRng {
        KeyedRng::from_key(self.key(index))
    }
    /// The first uniform in `[0, 1)` of the stream at `index` (53 bits, as `rand` draws it).
    #[inline]
    pub fn uniform(&self, index: u64) -> f64 {
        use rand::Rng;
        self.at(index).random()
    }
}

/// log2 of the memo's slots: room for the dozen or so triples a rollout step uses.
const MEMO_BITS: u32 = 5;

/// A valid entry to start every slot with, so a lookup never sees an invalid one.
const MEMO_SEED: (u64, u64, u64, u64) = (0, 0, 0, StreamPrefix::new(0, Purpose(0), 0).pre);

thread_local! {
    static PREFIX_MEMO: [std::cell::Cell<(u64, u64, u64, u64)>; 1 << MEMO_BITS] =
        const { [const { std::cell::Cell::new(MEMO_SEED) }; 1 << MEMO_BITS] };
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
    fn splitmix64_reference_values() {
        // SplitMix64 seeded with 1234567 (the reference sequence of Vigna's splitmix64.c):
        // the generator must stay exactly this algorithm, or every stored digest changes.
        let mut g = KeyedRng::from_key(1_234_567);
        let want: [u64; 5] = [
            6_457_827_717_110_365_317,
            3_203_168_211_198_807_973,
            9_817_491_932_198_370_423,
            4_593_380_528_125_082_431,
            16_408_922_859_458_223_821,
        ];
        for w in want {
            assert_eq!(g.next_u64(), w);
        }
    }

    #[test]
    fn prefix_streams_equal_direct_streams() {
        for (r, s) in [(0u64, 0u64), (7, 3), (u64::MAX, 1 << 40)] {
            let prefix = StreamPrefix::new(r, Purpose::SAMPLE, s);
            for i in [0u64, 1, 2, 1000, u64::MAX] {
                assert_eq!(prefix.at(i), stream(r, Purpose::SAMPLE, s, i));
                let u: f64 = stream(r, Purpose::SAMPLE, s, i).random();
                assert_eq!(prefix.uniform(i).to_bits(), u.to_bits());
            }
        }
        // The memo returns what the derivation does, for triples that share and evict slots.
        for r in 0..50u64 {
            for s in 0..50u64 {
                let p = Purpose(r.wrapping_mul(0x1234_5678_9abc_def1) ^ s);
                assert_eq!(StreamPrefix::memoized(r, p, s), StreamPrefix::new(r, p, s));
                assert_eq!(StreamPrefix::memoized(r, p, s), StreamPrefix::new(r, p, s));
            }
        }
        assert_eq!(StreamPrefix::memoized(0, Purpose(0), 0), StreamPrefix::new(0, Purpose(0), 0));
        assert_eq!(
            derive_seed(9, Purpose::HINT, 4, 2),
            mix(mix(mix(9, Purpose::HINT.0), 4), 2),
            "the key of a stream is the triple mix of DESIGN.md's (root, purpose, step, index)"
        );
        // The stream key is the derived seed: one derivation, two spellings.
        let mut g = stream(5, Purpose::TASK, 6, 7);
        assert_eq!(g.next_u64(), KeyedRng::from_key(derive_seed(5, Purpose::TASK, 6, 7)).next_u64());
    }

    #[test]
    fn uniforms_of_neighbouring_streams_look_independent() {
        // First draws of streams at consecutive indices (the pattern every rollout uses):
        // bucket counts within 5 sigma of uniform, and no correlation between neighbours.
        // Deterministic inputs, so these bounds either always hold or always fail.
        let prefix = StreamPrefix::new(42, Purpose::SAMPLE, 0);
        let n = 200_000u64;
        let mut buckets = [0u64; 16];
        let (mut sum_xy, mut sum_x, mut sum_x2) = (0.0, 0.0, 0.0);
        let mut prev = prefix.uniform(0);
        for i in 1..=n {
            let u = prefix.uniform(i);
            buckets[(u * 16.0) as usize] += 1;
            sum_x += u;
            sum_x2 += u * u;
            sum_xy += u * prev;
            prev = u;
        }
        let expected = n as f64 / 16.0;
        let sd = (expected * (1.0 - 1.0 / 16.0)).sqrt();
        for b in buckets {
            assert!((b as f64 - expected).abs() < 5.0 * sd, "{buckets:?}");
        }
        let nf = n as f64;
        let mean = sum_x / nf;
        let var = sum_x2 / nf - mean * mean;
        let corr = (sum_xy / nf - mean * mean) / var;
        assert!(corr.abs() < 5.0 / nf.sqrt(), "lag-1 correlation {corr}");
        // Every output bit is set about half the time.
        let mut g = stream(1, Purpose::TASK, 0, 0);
        let mut ones = [0u32; 64];
        for _ in 0..20_000 {
            let w = g.next_u64();
            for (b, c) in ones.iter_mut().enumerate() {
                *c += (w >> b & 1) as u32;
            }
        }
        for c in ones {
            assert!((f64::from(c) - 10_000.0).abs() < 5.0 * 70.72, "{ones:?}");
        }
    }

    #[test]
    fn fill_bytes_is_the_little_endian_word_stream() {
        let mut a = stream(3, Purpose::BUILD, 1, 2);
        let mut b = a.clone();
        let mut buf = [0u8; 13];
        a.fill_bytes(&mut buf);
        let (w0, w1) = (b.next_u64().to_le_bytes(), b.next_u64().to_le_bytes());
        assert_eq!(&buf[..8], &w0);
        assert_eq!(&buf[8..], &w1[..5]);
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
