//! Helpers the families share: the integer answer rule, feature encoding, surface choice.

use gristmill_core::rng::mix;

/// The documented rule of every family whose answer is a plain decimal integer.
pub(crate) const INTEGER_RULE: &str =
    "The text after the last `Answer:` marker (case-insensitive) up to the \
end of its line, trimmed and with one trailing period removed, must be a decimal integer (optional sign). \
Anything else is malformed; an integer outside the answer space is out of space.";

/// The instruction that ends every integer-answer prompt.
pub(crate) const INTEGER_INSTRUCTION: &str = "End your response with a line of the form `Answer: <integer>`.";

/// Canonical text of an integer answer (the `TaskSource` default).
pub(crate) use gristmill_core::task::render_integer_answer as render_integer;

/// Appends the decimal text of `v` (the same text as `{v}` formatting, without `fmt`'s
/// machinery: prompts are written millions of times per second).
#[inline]
pub(crate) fn push_int(out: &mut String, v: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(v));
}

/// A piece of prompt text: a string, or an integer written in decimal.
pub(crate) trait PromptPart {
    fn push_to(self, out: &mut String);
}

impl PromptPart for &str {
    #[inline]
    fn push_to(self, out: &mut String) {
        out.push_str(self);
    }
}

impl PromptPart for &String {
    #[inline]
    fn push_to(self, out: &mut String) {
        out.push_str(self);
    }
}

macro_rules! integer_parts {
    ($($t:ty),*) => {$(
        impl PromptPart for $t {
            #[inline]
            fn push_to(self, out: &mut String) {
                push_int(out, self);
            }
        }
    )*};
}
integer_parts!(u32, u64, i64, usize);

/// Appends each part to a `String` in order:
/// `prompt!(out; "What is ", a, " + ", b, "?")` writes what
/// `write!(out, "What is {a} + {b}?")` would, at a fraction of the cost.
macro_rules! prompt {
    ($out:expr; $($part:expr),+ $(,)?) => {{
        let out: &mut String = $out;
        $( $crate::common::PromptPart::push_to($part, out); )+
    }};
}
pub(crate) use prompt;

/// The `family`, `answers` and `feature_dim` methods of a built-in family's `TaskSource`,
/// which differ only in their values: `source_shape!(|s| answers: AnswerSpace::inclusive(0,
/// s.max as i64), features: 2 + s.places)`, with `s` bound to `self` in both expressions.
macro_rules! source_shape {
    (|$s:ident| answers: $answers:expr, features: $features:expr $(,)?) => {
        fn family(&self) -> &'static str {
            INFO.name
        }
        #[allow(unused_variables)]
        fn answers(&self) -> AnswerSpace {
            let $s = self;
            $answers
        }
        #[allow(unused_variables)]
        fn feature_dim(&self) -> usize {
            let $s = self;
            $features
        }
    };
}
pub(crate) use source_shape;

/// Appends a one-hot block of width `n` with a 1 at `idx` (all zeros if `idx >= n`, which
/// callers rule out; the guard keeps encoding total).
pub(crate) fn one_hot(out: &mut Vec<f64>, n: usize, idx: usize) {
    debug_assert!(idx < n, "one-hot index {idx} out of width {n}");
    let start = out.len();
    out.resize(start + n, 0.0);
    if idx < n {
        out[start + idx] = 1.0;
    }
}

/// Decimal digit of `v` at position `pos` (0 = units).
pub(crate) fn digit(v: u64, pos: u32) -> usize {
    ((v / 10u64.pow(pos)) % 10) as usize
}

/// Number of decimal digits of `v` (1 for 0).
pub(crate) fn decimal_len(v: u64) -> u32 {
    v.checked_ilog10().map_or(1, |l| l + 1)
}

/// A hash of a task's numeric content, used to choose its surface wording.
///
/// Why not draw the wording from the rng: the train/eval partition is by a hash of the prompt,
/// so two wordings of the same numbers could land on opposite sides, and a learned policy
/// (which reads features, not wording) would then see its eval tasks during training. Tying
/// the wording to the numbers makes the partition split problems, not phrasings.
pub(crate) fn surface_hash(words: &[u64]) -> u64 {
    words.iter().fold(0x5u64, |h, &w| mix(h, w))
}

/// Trims wrapping characters a model often puts around a short answer: backticks, quotes,
/// asterisks (markdown bold), dollar signs (inline math) and whitespace.
pub(crate) fn strip_wrapping(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || matches!(c, '`' | '"' | '\'' | '*' | '$'))
}

/// A single-turn family's catalog entry: every built-in family has single-turn tasks and one
/// knob table, and differs only in its name, doc, answer format and constructor.
pub(crate) const fn single_turn(
    name: &'static str,
    doc: &'static str,
    answer_format: &'static str,
    knobs: &'static [gristmill_core::params::ParamSpec],
    build: fn(&gristmill_core::params::Params) -> Box<dyn gristmill_core::task::TaskSource>,
) -> gristmill_core::task::FamilyInfo {
    gristmill_core::task::FamilyInfo { name, doc, answer_format, multi_turn: false, knobs, build }
}

/// Sets a body's gold answer and starts its feature vector: cleared, and `None` when the
/// caller skips features (the encoding draws no randomness, so nothing else depends on it);
/// otherwise the vector holding its constant bias `1.0`, for the family to fill.
pub(crate) fn gold_and_features(
    body: &mut gristmill_core::task::TaskBody,
    gold: i64,
    features: gristmill_core::task::Features,
) -> Option<&mut Vec<f64>> {
    body.gold = gold;
    let f = &mut body.features;
    f.clear();
    if features == gristmill_core::task::Features::Skip {
        return None;
    }
    f.push(1.0);
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_and_lengths() {
        assert_eq!(digit(407, 0), 7);
        assert_eq!(digit(407, 1), 0);
        assert_eq!(digit(407, 2), 4);
        assert_eq!(digit(407, 3), 0);
        assert_eq!(decimal_len(0), 1);
        assert_eq!(decimal_len(9), 1);
        assert_eq!(decimal_len(10), 2);
        assert_eq!(decimal_len(1999), 4);
    }

    #[test]
    fn one_hot_blocks() {
        let mut v = vec![1.0];
        one_hot(&mut v, 3, 2);
        one_hot(&mut v, 2, 0);
        assert_eq!(v, [1.0, 0.0, 0.0, 1.0, 1.0, 0.0]);
    }

    #[test]
    fn prompt_parts_write_what_format_writes() {
        let mut out = String::from("stale");
        out.clear();
        prompt!(&mut out; "a=", 0u64, ", b=", u64::MAX, ", c=", -17i64, ", d=", i64::MIN, ", e=", 7usize, ".");
        assert_eq!(out, format!("a={}, b={}, c={}, d={}, e={}.", 0, u64::MAX, -17, i64::MIN, 7));
        let mut answer = String::from("stale");
        render_integer(-5, &mut answer);
        assert_eq!(answer, "Answer: -5");
    }

    #[test]
    fn wrapping_is_stripped() {
        assert_eq!(strip_wrapping(" **`<`** "), "<");
        assert_eq!(strip_wrapping("$42$"), "42");
        assert_eq!(strip_wrapping("«x»"), "«x»");
    }
}
