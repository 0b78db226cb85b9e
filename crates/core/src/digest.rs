//! Content digests: a run's result digest and a spec's content hash.
//!
//! The digest feeds every stored number's exact bits, in a fixed order, to BLAKE3. Two runs
//! have equal digests exactly when every number matches bit for bit (up to hash collisions).

/// An incremental digest over numbers and strings.
///
/// Words are gathered in a buffer and handed to BLAKE3 a few kilobytes at a time: BLAKE3's
/// output does not depend on how its input is chunked, and one large update costs far less
/// than many eight-byte ones.
#[derive(Debug, Clone)]
pub struct Digest {
    hasher: blake3::Hasher,
    buffer: Vec<u8>,
}

impl Default for Digest {
    fn default() -> Self {
        Digest { hasher: blake3::Hasher::new(), buffer: Vec::with_capacity(Self::FLUSH_AT + 64) }
    }
}

impl Digest {
    /// Buffer size at which bytes go to the hasher.
    const FLUSH_AT: usize = 8192;

    /// A fresh digest.
    pub fn new() -> Self {
        Self::default()
    }
    #[inline]
    fn bytes(&mut self, b: &[u8]) {
        if self.buffer.len() + b.len() > Self::FLUSH_AT {
            self.hasher.update(&self.buffer);
            self.buffer.clear();
            if b.len() > Self::FLUSH_AT {
                self.hasher.update(b);
                return;
            }
        }
        self.buffer.extend_from_slice(b);
    }
    /// Adds a float's exact bits (so `-0.0` and `0.0` differ, as do NaN payloads).
    pub fn f64(&mut self, v: f64) -> &mut Self {
        self.bytes(&v.to_bits().to_le_bytes());
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
        self.bytes(&v.to_le_bytes());
        self
    }
    /// Adds a signed integer.
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.bytes(&v.to_le_bytes());
        self
    }
    /// Adds a string, length-prefixed so concatenations cannot collide.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64);
        self.bytes(s.as_bytes());
        self
    }
    /// The hex digest.
    pub fn hex(&self) -> String {
        let mut h = self.hasher.clone();
        h.update(&self.buffer);
        h.finalize().to_hex().to_string()
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

    #[test]
    fn buffering_does_not_change_the_hash() {
        // Across the flush boundary, and with one input larger than the buffer: the digest
        // must equal BLAKE3 of the plain concatenation.
        let mut d = Digest::new();
        let mut plain = Vec::new();
        for i in 0..3000u64 {
            d.u64(i);
            plain.extend_from_slice(&i.to_le_bytes());
        }
        let big = "x".repeat(20_000);
        d.str(&big);
        plain.extend_from_slice(&(big.len() as u64).to_le_bytes());
        plain.extend_from_slice(big.as_bytes());
        d.f64(-0.0);
        plain.extend_from_slice(&(-0.0f64).to_bits().to_le_bytes());
        assert_eq!(d.hex(), blake3::hash(&plain).to_hex().to_string());
        // `hex` does not consume: more input still counts.
        let before = d.hex();
        d.u64(1);
        assert_ne!(d.hex(), before);
    }
}
