//! A byte-level BPE tokenizer built from GGUF metadata (`tokenizer.ggml.*`).
//!
//! Supported: `tokenizer.ggml.model = "gpt2"` (GPT-2 style byte-level BPE, used by SmolLM2,
//! Llama 3, Qwen, StarCoder and most recent llama-family models). The vocabulary is
//! `tokenizer.ggml.tokens`, the merges `tokenizer.ggml.merges` (rank = position), and
//! `tokenizer.ggml.token_type` marks control tokens (type 3) and user-defined tokens (type 4),
//! which are matched literally and never merged.
//!
//! Pre-tokenization follows llama.cpp's `smollm` / `starcoder` rule: every numeric character
//! is its own piece (so numbers are read digit by digit), then the GPT-2 pattern
//! `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` splits each
//! piece. The pattern is matched by hand (the lookahead rules out a plain regex crate); `\p{L}`
//! is taken as Rust's `char::is_alphabetic` minus numerics, which differs from the Unicode
//! letter category only on some combining marks. Whatever the split, encoding is lossless —
//! [`Tokenizer::decode`] of [`Tokenizer::encode`] gives the text back byte for byte — for
//! every text whose bytes all have tokens. Some vocabularies lack a few byte tokens (SmolLM2
//! has none for the control characters U+0004, U+0006, U+0013, U+0014, U+0016, U+001D and for
//! bytes that never occur in UTF-8); such bytes are dropped, as llama.cpp and Hugging Face
//! tokenizers do.

use std::collections::HashMap;

/// Why a tokenizer could not be built from the metadata.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenizerError {
    /// The tokenizer model is not byte-level BPE.
    #[error("tokenizer model `{0}` is not supported (only `gpt2` byte-level BPE is)")]
    UnsupportedModel(String),
    /// A merge rule is not two tokens separated by one space, or names unknown tokens.
    #[error("merge rule {rank} (`{rule}`) is malformed: {why}")]
    BadMerge {
        /// Position of the rule.
        rank: usize,
        /// The rule text.
        rule: String,
        /// What is wrong.
        why: &'static str,
    },
    /// No single-byte token at all: this is not a byte-level vocabulary.
    #[error("the vocabulary has no single-byte tokens; it is not byte-level BPE")]
    NotByteLevel,
    /// The vocabulary is empty or the type list does not match it.
    #[error("bad vocabulary: {0}")]
    BadVocab(String),
}

/// Marks a byte without a token of its own.
const NO_TOKEN: u32 = u32::MAX;

/// GGUF token types (llama.cpp's `llama_token_type`).
const TYPE_CONTROL: i32 = 3;
const TYPE_USER_DEFINED: i32 = 4;

/// A byte-level BPE tokenizer.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    tokens: Vec<String>,
    token_to_id: HashMap<String, u32>,
    /// (left, right) → (rank, merged id).
    merges: HashMap<(u32, u32), (u32, u32)>,
    /// The token of each byte, or [`NO_TOKEN`] when the vocabulary lacks it.
    byte_ids: [u32; 256],
    char_to_byte: HashMap<char, u8>,
    /// Ids of control tokens (type 3).
    control: Vec<bool>,
    /// Literal tokens matched before BPE (control and user-defined), longest first.
    specials: Vec<(String, u32)>,
}

/// GPT-2's reversible map from bytes to printable characters.
pub(crate) fn bytes_to_unicode() -> [char; 256] {
    let mut out = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..256u32 {
        let printable = (b'!' as u32..=b'~' as u32).contains(&b)
            || (0xA1..=0xAC).contains(&b)
            || (0xAE..=0xFF).contains(&b);
        let c = if printable {
            b
        } else {
            n += 1;
            255 + n
        };
        out[b as usize] = char::from_u32(c).unwrap_or('\u{FFFD}');
    }
    out
}

impl Tokenizer {
    /// Builds a tokenizer from the GGUF lists. `token_types` may be empty (all normal).
    ///
    /// # Errors
    /// [`TokenizerError`] when the lists are inconsistent.
    pub fn new(
        model: &str,
        tokens: Vec<String>,
        token_types: Vec<i32>,
        merges: &[String],
    ) -> Result<Tokenizer, TokenizerError> {
        if model != "gpt2" {
            return Err(TokenizerError::UnsupportedModel(model.to_string()));
        }
        if tokens.is_empty() || tokens.len() > u32::MAX as usize {
            return Err(TokenizerError::BadVocab(format!("{} tokens", tokens.len())));
        }
        if !token_types.is_empty() && token_types.len() != tokens.len() {
            return Err(TokenizerError::BadVocab(format!(
                "{} token types for {} tokens",
                token_types.len(),
                tokens.len()
            )));
        }
        let mut token_to_id = HashMap::with_capacity(tokens.len());
        for (i, t) in tokens.iter().enumerate() {
            token_to_id.entry(t.clone()).or_insert(i as u32);
        }
        let b2u = bytes_to_unicode();
        let mut byte_ids = [NO_TOKEN; 256];
        let mut char_to_byte = HashMap::with_capacity(256);
        for (b, c) in b2u.iter().enumerate() {
            char_to_byte.insert(*c, b as u8);
            byte_ids[b] = token_to_id.get(&c.to_string()).copied().unwrap_or(NO_TOKEN);
        }
        if byte_ids.iter().all(|&i| i == NO_TOKEN) {
            return Err(TokenizerError::NotByteLevel);
        }
        let mut merge_map = HashMap::with_capacity(merges.len());
        for (rank, rule) in merges.iter().enumerate() {
            let bad = |why| TokenizerError::BadMerge { rank, rule: rule.clone(), why };
            let (l, r) = rule.split_once(' ').ok_or_else(|| bad("no space"))?;
            let id = |s: &str| token_to_id.get(s).copied();
            let (li, ri) = (
                id(l).ok_or_else(|| bad("unknown left token"))?,
                id(r).ok_or_else(|| bad("unknown right token"))?,
            );
            let merged = id(&format!("{l}{r}")).ok_or_else(|| bad("merged token not in vocabulary"))?;
            merge_map.entry((li, ri)).or_insert((rank as u32, merged));
        }
        let ty = |i: usize| token_types.get(i).copied().unwrap_or(1);
        let control: Vec<bool> = (0..tokens.len()).map(|i| ty(i) == TYPE_CONTROL).collect();
        let mut specials: Vec<(String, u32)> = (0..tokens.len())
            .filter(|&i| matches!(ty(i), TYPE_CONTROL | TYPE_USER_DEFINED) && !tokens[i].is_empty())
            .map(|i| (tokens[i].clone(), i as u32))
            .collect();
        specials.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        Ok(Tokenizer { tokens, token_to_id, merges: merge_map, byte_ids, char_to_byte, control, specials })
    }

    /// Number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// The id of a token given by its vocabulary string (e.g. `<|im_end|>`).
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.token_to_id.get(token).copied()
    }

    /// The vocabulary string of a token.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(|s| s.as_str())
    }

    /// Whether `id` is a control token (end of turn, begin of text, …).
    pub fn is_control(&self, id: u32) -> bool {
        self.control.get(id as usize).copied().unwrap_or(false)
    }

    /// Encodes plain text: special-token strings in it are treated as ordinary text.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 1);
        self.encode_into(text, &mut out);
        out
    }

    /// Encodes text in which special-token strings (e.g. `<|im_start|>`) stand for their
    /// tokens, as a chat template renders them.
    pub fn encode_with_special(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        let mut plain_start = 0;
        let mut i = 0;
        while i < text.len() {
            let rest = &text[i..];
            if let Some((s, id)) = self.specials.iter().find(|(s, _)| rest.starts_with(s.as_str())) {
                self.encode_into(&text[plain_start..i], &mut out);
                out.push(*id);
                i += s.len();
                plain_start = i;
            } else {
                i += rest.chars().next().map_or(1, char::len_utf8);
            }
        }
        self.encode_into(&text[plain_start..], &mut out);
        out
    }

    fn encode_into(&self, text: &str, out: &mut Vec<u32>) {
        for piece in pre_tokenize(text) {
            self.bpe(piece, out);
        }
    }

    fn bpe(&self, piece: &str, out: &mut Vec<u32>) {
        let mut syms: Vec<u32> = piece.bytes().map(|b| self.byte_ids[b as usize]).collect();
        loop {
            let best = syms
                .windows(2)
                .enumerate()
                .filter_map(|(i, w)| self.merges.get(&(w[0], w[1])).map(|&(rank, id)| (rank, i, id)))
                .min();
            match best {
                Some((_, i, id)) => {
                    syms[i] = id;
                    syms.remove(i + 1);
                }
                None => break,
            }
        }
        // Bytes the vocabulary lacks are dropped, as llama.cpp and Hugging Face do.
        out.extend(syms.into_iter().filter(|&s| s != NO_TOKEN));
    }

    /// The bytes a token stands for (control tokens: their literal text).
    pub fn token_bytes(&self, id: u32, out: &mut Vec<u8>) {
        let Some(t) = self.tokens.get(id as usize) else { return };
        if self.specials.iter().any(|(_, s)| *s == id) {
            out.extend_from_slice(t.as_bytes());
            return;
        }
        for c in t.chars() {
            match self.char_to_byte.get(&c) {
                Some(b) => out.push(*b),
                None => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
    }

    /// Decodes tokens to text (invalid UTF-8, e.g. a cut multi-byte character, becomes U+FFFD).
    /// Control tokens are written as their literal text unless `skip_control`.
    pub fn decode(&self, ids: &[u32], skip_control: bool) -> String {
        let mut bytes = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            if skip_control && self.is_control(id) {
                continue;
            }
            self.token_bytes(id, &mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

fn is_letter(c: char) -> bool {
    c.is_alphabetic() && !c.is_numeric()
}

/// Splits text into pre-tokens (see the module doc).
pub(crate) fn pre_tokenize(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    // Digits are isolated first; the GPT-2 pattern then runs inside each non-digit run.
    let mut run_start = 0;
    for (i, c) in text.char_indices() {
        if c.is_numeric() {
            gpt2_split(&text[run_start..i], &mut out);
            out.push(&text[i..i + c.len_utf8()]);
            run_start = i + c.len_utf8();
        }
    }
    gpt2_split(&text[run_start..], &mut out);
    out
}

/// The GPT-2 pattern, matched left to right with the regex's alternation order.
fn gpt2_split<'a>(s: &'a str, out: &mut Vec<&'a str>) {
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let n = chars.len();
    let at = |k: usize| if k < n { chars[k].0 } else { s.len() };
    let mut i = 0;
    while i < n {
        let c = chars[i].1;
        // 's|'t|'re|'ve|'m|'ll|'d
        if c == '\'' {
            let rest = &s[at(i + 1)..];
            let contraction = ["s", "t", "re", "ve", "m", "ll", "d"].iter().find(|p| rest.starts_with(**p));
            if let Some(p) = contraction {
                let j = i + 1 + p.len();
                out.push(&s[at(i)..at(j)]);
                i = j;
                continue;
            }
        }
        // ` ?X+` for X in letters, numbers, other (not space/letter/number).
        let start = i;
        let body = if c == ' ' && i + 1 < n { i + 1 } else { i };
        let class = |ch: char| -> u8 {
            if is_letter(ch) {
                0
            } else if ch.is_numeric() {
                1
            } else if ch.is_whitespace() {
                3
            } else {
                2
            }
        };
        let k = class(chars[body].1);
        if k != 3 {
            let mut j = body + 1;
            while j < n && class(chars[j].1) == k {
                j += 1;
            }
            out.push(&s[at(start)..at(j)]);
            i = j;
            continue;
        }
        // Whitespace: `\s+(?!\S)` then `\s+`.
        let mut j = i;
        while j < n && chars[j].1.is_whitespace() {
            j += 1;
        }
        if j < n && j - i > 1 {
            j -= 1; // leave the last space to prefix the next word
        }
        out.push(&s[at(i)..at(j)]);
        i = j;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pre_tokenizer_follows_the_gpt2_pattern() {
        assert_eq!(pre_tokenize("Hello world"), vec!["Hello", " world"]);
        assert_eq!(pre_tokenize("a  b"), vec!["a", " ", " b"]);
        assert_eq!(pre_tokenize("a\n\nb"), vec!["a", "\n", "\n", "b"]);
        assert_eq!(pre_tokenize("x  \n"), vec!["x", "  \n"]);
        assert_eq!(
            pre_tokenize("What is 23 + 58?"),
            vec!["What", " is", " ", "2", "3", " +", " ", "5", "8", "?"]
        );
        assert_eq!(pre_tokenize("don't"), vec!["don", "'t"]);
        assert_eq!(pre_tokenize("héllo, wörld!!"), vec!["héllo", ",", " wörld", "!!"]);
        assert_eq!(pre_tokenize(""), Vec::<&str>::new());
        let text = "mixed 12ab\t\tfoo  'x";
        assert_eq!(pre_tokenize(text).concat(), text);
    }

    #[test]
    fn byte_map_is_a_bijection() {
        let m = bytes_to_unicode();
        let set: std::collections::HashSet<char> = m.iter().copied().collect();
        assert_eq!(set.len(), 256);
        assert_eq!(m[b' ' as usize], 'Ġ');
        assert_eq!(m[b'\n' as usize], 'Ċ');
    }

    /// A toy vocabulary: all bytes, plus merges for "he", "ll", "hell", "hello" and a control token.
    fn toy() -> Tokenizer {
        let b2u = bytes_to_unicode();
        let mut tokens: Vec<String> = vec!["<|end|>".into()];
        tokens.extend(b2u.iter().map(|c| c.to_string()));
        tokens.extend(["he", "ll", "hell", "hello"].map(String::from));
        let mut types = vec![1; tokens.len()];
        types[0] = TYPE_CONTROL;
        let merges = ["h e", "l l", "he ll", "hell o"].map(String::from);
        Tokenizer::new("gpt2", tokens, types, &merges).unwrap()
    }

    #[test]
    fn toy_bpe_merges_by_rank_and_round_trips() {
        let t = toy();
        let hello = t.token_id("hello").unwrap();
        assert_eq!(t.encode("hello"), vec![hello]);
        let ids = t.encode_with_special("hello<|end|>hello");
        assert_eq!(ids, vec![hello, 0, hello]);
        assert_eq!(t.decode(&ids, false), "hello<|end|>hello");
        assert_eq!(t.decode(&ids, true), "hellohello");
        // Without special parsing the control string is plain text.
        assert_eq!(t.decode(&t.encode("<|end|>"), false), "<|end|>");
        assert!(!t.encode("<|end|>").contains(&0));
        for s in ["", "héllo wörld 🚀\n\tend", "a'll 12,345.6"] {
            assert_eq!(t.decode(&t.encode(s), false), s);
        }
    }

    #[test]
    fn bad_metadata_is_reported() {
        assert!(matches!(
            Tokenizer::new("llama", vec!["a".into()], vec![], &[]),
            Err(TokenizerError::UnsupportedModel(_))
        ));
        assert!(matches!(
            Tokenizer::new("gpt2", vec!["<a>".into()], vec![], &[]),
            Err(TokenizerError::NotByteLevel)
        ));
        let b2u = bytes_to_unicode();
        let tokens: Vec<String> = b2u.iter().map(|c| c.to_string()).collect();
        let err = Tokenizer::new("gpt2", tokens, vec![], &["ab".into()]).unwrap_err();
        assert!(matches!(err, TokenizerError::BadMerge { rank: 0, .. }), "{err}");
    }
}
