//! `base_conversion`: write a decimal number in another base.
//!
//! **Knobs.** `base` (2..=16, default 2); `max_value` (15..=1999, default 127): `n` is
//! uniform in `0 ..= max_value`.
//!
//! **Answer space.** `0 ..= max_value` (128 answers at default knobs). The answer's value
//! is `n` itself; only its text is in base `base`: [`render_answer`] writes base-`base`
//! digits (lowercase letters above 9, no prefix) and [`parse_answer`] reads them back.
//!
//! **Features** (`2 + 10·L`, where `L` is the number of decimal digits of `max_value`; 32
//! at default): bias; `n / max_value`; then a one-hot of each decimal digit of `n`, units
//! first. In answer space the task is the identity on `n`, which a log-linear policy can
//! represent from the scaled value or the digit one-hots; the difficulty for a language
//! model is all in the rendering.
//!
//! [`render_answer`]: gristmill_core::task::TaskSource::render_answer
//! [`parse_answer`]: gristmill_core::task::TaskSource::parse_answer

use gristmill_core::params::{ParamSpec, Params};
use gristmill_core::rng::KeyedRng;
use gristmill_core::task::{answer_text, AnswerSpace, FamilyInfo, Features, TaskBody, TaskSource};
use gristmill_core::ParseError;
use rand::Rng;

use crate::common::{
    decimal_len, digit, gold_and_features, one_hot, prompt, single_turn, source_shape, strip_wrapping,
};

const KNOBS: &[ParamSpec] = &[
    ParamSpec::int("base", 2, 16, 2, "the target base"),
    ParamSpec::int("max_value", 15, 1999, 127, "largest number to convert (numbers are 0 ..= max_value)"),
];

const RULE: &str = "The text after the last `Answer:` marker (case-insensitive) up to the end of its \
line, trimmed, with one trailing period and any wrapping backticks, quotes, asterisks or dollar signs \
removed, must be the number written in the task's base: an optional sign, an optional prefix matching \
the base (`0b` for 2, `0o` for 8, `0x` for 16), then digits of that base (letters a-f in either case \
above 9); spaces and underscores between digits are ignored. A digit not in the base is malformed; a \
well-formed number outside the answer space is out of space.";

/// The `base_conversion` family.
pub const INFO: FamilyInfo = single_turn(
    "base_conversion",
    "Writes a decimal number in 0..=`max_value` in base `base` (2..=16) (\"Write the decimal \
number 45 in base 3.\"). The scored answer is the number's value; the response must spell it in \
the target base, and is parsed back from base-`base` digits. Features: bias, the scaled number, \
and one-hot decimal digits.",
    RULE,
    KNOBS,
    build,
);

fn build(params: &Params) -> Box<dyn TaskSource> {
    let max = params.int("max_value").clamp(15, 1999) as u64;
    Box::new(BaseConversionSource {
        base: params.int("base").clamp(2, 16) as u32,
        max,
        places: decimal_len(max),
    })
}

/// A configured `base_conversion` source.
#[derive(Debug, Clone)]
pub struct BaseConversionSource {
    base: u32,
    max: u64,
    places: u32,
}

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// How the prompt names the digits of base `b` (index `b`; bases 0 and 1 do not exist).
const DIGIT_RANGES: [&str; 17] = [
    "",
    "",
    "digits 0-1",
    "digits 0-2",
    "digits 0-3",
    "digits 0-4",
    "digits 0-5",
    "digits 0-6",
    "digits 0-7",
    "digits 0-8",
    "digits 0-9",
    "digits 0-9 and a",
    "digits 0-9 and a-b",
    "digits 0-9 and a-c",
    "digits 0-9 and a-d",
    "digits 0-9 and a-e",
    "digits 0-9 and a-f",
];

impl BaseConversionSource {
    /// Writes `v`'s magnitude in the source's base into `out`.
    fn write_digits(&self, out: &mut String, v: u64) {
        // 64 binary digits is the longest any u64 needs.
        let mut buf = [0u8; 64];
        let mut i = buf.len();
        let mut v = v;
        loop {
            i -= 1;
            buf[i] = DIGITS[(v % self.base as u64) as usize];
            v /= self.base as u64;
            if v == 0 {
                break;
            }
        }
        out.extend(buf[i..].iter().map(|&b| b as char));
    }

    fn digit_range(&self) -> &'static str {
        DIGIT_RANGES[self.base as usize]
    }
}

impl TaskSource for BaseConversionSource {
    source_shape!(|s| answers: AnswerSpace::inclusive(0, s.max as i64), features: 2 + 10 * s.places as usize);

    fn generate_into(&self, rng: &mut KeyedRng, body: &mut TaskBody, features: Features) {
        let n = rng.random_range(0..=self.max);
        let b = self.base;
        let prompt = &mut body.prompt;
        prompt.clear();
        prompt!(
            prompt;
            "Write the decimal number ", n, " in base ", b,
            ".\nEnd your response with a line of the form `Answer: <the number in base ", b, ">`, using ",
            self.digit_range(), " and no prefix.",
        );
        let Some(f) = gold_and_features(body, n as i64, features) else { return };
        f.push(n as f64 / self.max as f64);
        for p in 0..self.places {
            one_hot(f, 10, digit(n, p));
        }
    }

    fn render_answer_into(&self, value: i64, out: &mut String) {
        out.clear();
        out.push_str("Answer: ");
        if value < 0 {
            out.push('-');
        }
        self.write_digits(out, value.unsigned_abs());
    }

    fn parse_answer(&self, text: &str) -> Result<i64, ParseError> {
        let raw = answer_text(text)?;
        let malformed = || ParseError::Malformed(raw.to_string());
        let s = strip_wrapping(raw);
        if s.is_empty() {
            return Err(ParseError::Missing);
        }
        let (negative, s) = match s.as_bytes()[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let prefix = match self.base {
            2 => Some("0b"),
            8 => Some("0o"),
            16 => Some("0x"),
            _ => None,
        };
        let s = match prefix {
            // `get` rather than slicing: the text may start with a multi-byte character.
            Some(p) if s.get(..2).is_some_and(|h| h.eq_ignore_ascii_case(p)) => &s[2..],
            _ => s,
        };
        // Accumulate in i128 and saturate: any overflowing string is far outside the space.
        let mut value: i128 = 0;
        let mut any = false;
        for c in s.chars() {
            if c == ' ' || c == '_' {
                continue;
            }
            let d = c.to_digit(self.base).ok_or_else(malformed)?;
            value = (value * self.base as i128 + d as i128).min(i64::MAX as i128);
            any = true;
        }
        if !any {
            return Err(malformed());
        }
        let value = if negative { -value } else { value } as i64;
        if self.answers().contains(value) {
            Ok(value)
        } else {
            Err(ParseError::OutOfSpace(raw.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(base: u32) -> BaseConversionSource {
        BaseConversionSource { base, max: 1999, places: 4 }
    }

    #[test]
    fn renders_in_base() {
        assert_eq!(src(2).render_answer(45), "Answer: 101101");
        assert_eq!(src(3).render_answer(45), "Answer: 1200");
        assert_eq!(src(16).render_answer(255), "Answer: ff");
        assert_eq!(src(16).render_answer(0), "Answer: 0");
        assert_eq!(src(7).render_answer(-8), "Answer: -11");
        assert_eq!(src(2).render_answer(i64::MIN).len(), "Answer: -".len() + 64);
    }

    #[test]
    fn parses_base_digits_with_prefixes_and_separators() {
        assert_eq!(src(2).parse_answer("Answer: 0b1011_0001"), Ok(177));
        assert_eq!(src(2).parse_answer("Answer: `1 0 1`."), Ok(5));
        assert_eq!(src(16).parse_answer("answer: 0XfF"), Ok(255));
        assert_eq!(src(16).parse_answer("Answer: +7D0"), Err(ParseError::OutOfSpace("+7D0".into())));
        assert_eq!(src(2).parse_answer("Answer: 102"), Err(ParseError::Malformed("102".into())));
        assert_eq!(src(10).parse_answer("Answer: 0x10"), Err(ParseError::Malformed("0x10".into())));
        assert_eq!(src(2).parse_answer("Answer: -1"), Err(ParseError::OutOfSpace("-1".into())));
        assert_eq!(src(2).parse_answer("Answer: 0b"), Err(ParseError::Malformed("0b".into())));
        assert_eq!(src(2).parse_answer("Answer: -"), Err(ParseError::Malformed("-".into())));
        let huge = format!("Answer: {}", "1".repeat(300));
        assert!(matches!(src(2).parse_answer(&huge), Err(ParseError::OutOfSpace(_))));
        assert_eq!(src(2).parse_answer("101"), Err(ParseError::Missing));
    }
}
