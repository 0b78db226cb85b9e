//! Content digests: a run's result digest and a spec's content hash.
//!
//! The digest feeds every stored number's exact bits, in a fixed order, to BLAKE3. Two runs
//! have equal digests exactly when every number matches bit for bit (up to hash collisions).

/// An incremental digest over numbers and strings.
#[derive(Debug, Clone, Default)]
pub struct Digest {
    hasher: blake3::Hasher,
}

impl Digest {
    /// A fresh digest.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a float's exact bits (so `-0.0` and `0.0` differ, as do NaN payloads).
    pub fn f64(&mut self, v: f64) -> &mut Self {
        self.hasher.update(&v.to_bits().to_le_bytes());
        self
    }
    /// Adds many floats.
    pub fn f64s(&mut self, vs: &[f64]) -> &mut Self {
        self.u64(vs.len() as u64);
        for v in vs {
            self.f64(*v);
        }
        self
    }
    /// Adds an integer.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.hasher.update(&v.to_le_bytes());
        self
    }
    /// Adds a signed integer.
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.hasher.update(&v.to_le_bytes());
        self
    }
    /// Adds a string, length-prefixed so concatenations cannot collide.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64);
        self.hasher.update(s.as_bytes());
        self
    }
    /// The hex digest.
    pub fn hex(&self) -> String {
        self.hasher.finalize().to_hex().to_string()
    }
}

/// Hex BLAKE3 hash of bytes (used for spec content hashes and artifact versions).
pub fn content_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_sees_every_bit() {
        let a = Digest::new().f64(0.0).hex();
        let b = Digest::new().f64(-0.0).hex();
        assert_ne!(a, b);
        let c = Digest::new().str("ab").str("c").hex();
        let d = Digest::new().str("a").str("bc").hex();
        assert_ne!(c, d);
        assert_eq!(Digest::new().f64s(&[1.0, 2.0]).hex(), Digest::new().f64s(&[1.0, 2.0]).hex());
    }
}
