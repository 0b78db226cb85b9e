//! The content address of a verdict.
//!
//! A [`CacheKey`] is the BLAKE3 hash (in key-derivation mode, context
//! `"gristmill-judge verdict cache key v1"`) of a length-prefixed, little-endian encoding of
//! everything that decides what the grader is asked and how its answer is read:
//!
//! 1. [`VERDICT_FORMAT_VERSION`];
//! 2. the item's verdict kind (yes/no, or a scale and its maximum);
//! 3. the model name;
//! 4. the sampling parameters: temperature (as f64 bits, `-0` read as `0`), `max_tokens`,
//!    `top_p` and `seed` (each with a presence byte);
//! 5. the fully rendered messages, each as its role and its content.
//!
//! Not in the key: the endpoint URL, the API key, timeouts, retries, concurrency, and the
//! judge's id and the item's id and weight — none of them changes what is asked or how the
//! answer is read, so two judges asking the same grader the same question share verdicts.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::Sampling;
use crate::prompt::{Message, Role};
use crate::verdict::{VerdictKind, VERDICT_FORMAT_VERSION};

/// The BLAKE3 key-derivation context of cache keys.
pub const KEY_CONTEXT: &str = "gristmill-judge verdict cache key v1";

/// A verdict's content address: 32 bytes, written as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(pub [u8; 32]);

impl CacheKey {
    /// The key of asking `model`, with `sampling`, the `messages`, for a verdict of `kind`.
    pub fn derive(model: &str, sampling: &Sampling, messages: &[Message], kind: VerdictKind) -> CacheKey {
        let mut h = blake3::Hasher::new_derive_key(KEY_CONTEXT);
        let bytes = |h: &mut blake3::Hasher, b: &[u8]| {
            h.update(&(b.len() as u64).to_le_bytes());
            h.update(b);
        };
        h.update(&VERDICT_FORMAT_VERSION.to_le_bytes());
        match kind {
            VerdictKind::YesNo => h.update(&[0]),
            VerdictKind::Scale(max) => h.update(&[1]).update(&max.to_le_bytes()),
        };
        bytes(&mut h, model.as_bytes());
        let temperature = if sampling.temperature == 0.0 { 0.0 } else { sampling.temperature };
        h.update(&temperature.to_bits().to_le_bytes());
        h.update(&sampling.max_tokens.to_le_bytes());
        match sampling.top_p {
            None => h.update(&[0]),
            Some(p) => h.update(&[1]).update(&p.to_bits().to_le_bytes()),
        };
        match sampling.seed {
            None => h.update(&[0]),
            Some(s) => h.update(&[1]).update(&s.to_le_bytes()),
        };
        h.update(&(messages.len() as u64).to_le_bytes());
        for m in messages {
            h.update(&[match m.role {
                Role::System => 0,
                Role::User => 1,
            }]);
            bytes(&mut h, m.content.as_bytes());
        }
        CacheKey(*h.finalize().as_bytes())
    }

    /// The 64 hex digits.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        s
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({self})")
    }
}

/// A string that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a cache key is 64 hex digits")]
pub struct BadKey;

impl FromStr for CacheKey {
    type Err = BadKey;

    fn from_str(s: &str) -> Result<CacheKey, BadKey> {
        let s = s.as_bytes();
        if s.len() != 64 {
            return Err(BadKey);
        }
        let digit = |c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(BadKey),
        };
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = digit(s[2 * i])? << 4 | digit(s[2 * i + 1])?;
        }
        Ok(CacheKey(out))
    }
}

impl Serialize for CacheKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for CacheKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<CacheKey, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(model: &str, sampling: &Sampling, user: &str, kind: VerdictKind) -> CacheKey {
        CacheKey::derive(model, sampling, &[Message::system("s"), Message::user(user)], kind)
    }

    #[test]
    fn every_input_changes_the_key() {
        let s = Sampling::default();
        let base = key("m", &s, "u", VerdictKind::YesNo);
        assert_eq!(base, key("m", &s, "u", VerdictKind::YesNo));
        let others = [
            key("m2", &s, "u", VerdictKind::YesNo),
            key("m", &s, "u2", VerdictKind::YesNo),
            key("m", &s, "u", VerdictKind::Scale(10)),
            key("m", &Sampling { temperature: 0.5, ..s.clone() }, "u", VerdictKind::YesNo),
            key("m", &Sampling { max_tokens: 7, ..s.clone() }, "u", VerdictKind::YesNo),
            key("m", &Sampling { top_p: Some(1.0), ..s.clone() }, "u", VerdictKind::YesNo),
            key("m", &Sampling { seed: Some(0), ..s.clone() }, "u", VerdictKind::YesNo),
            CacheKey::derive("m", &s, &[Message::user("s"), Message::user("u")], VerdictKind::YesNo),
            CacheKey::derive("m", &s, &[Message::system("su")], VerdictKind::YesNo),
        ];
        for (i, k) in others.iter().enumerate() {
            assert_ne!(*k, base, "input {i}");
        }
        assert_eq!(key("m", &Sampling { temperature: -0.0, ..s.clone() }, "u", VerdictKind::YesNo), base);
    }

    #[test]
    fn keys_round_trip_as_hex() {
        let k = key("m", &Sampling::default(), "u", VerdictKind::YesNo);
        assert_eq!(k.to_hex().len(), 64);
        assert_eq!(k.to_hex().parse::<CacheKey>(), Ok(k));
        assert_eq!(k.to_hex().to_uppercase().parse::<CacheKey>(), Ok(k));
        assert_eq!("abc".parse::<CacheKey>(), Err(BadKey));
        assert_eq!("g".repeat(64).parse::<CacheKey>(), Err(BadKey));
        let json = serde_json::to_string(&k).unwrap();
        assert_eq!(serde_json::from_str::<CacheKey>(&json).unwrap(), k);
    }
}
