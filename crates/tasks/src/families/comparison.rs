//! `comparison`: whether `a` is less than, equal to or greater than `b`.
//!
//! **Knobs.** `digits` (1..=6, default 3): both numbers have exactly that many digits.
//! `equal_rate` (0..=0.5, default 0.1): probability that `b = a`. `close_rate` (0..=1,
//! default 0.3): probability that `b` is `a` with one digit changed (the hard cases, where
//! only a late digit decides); otherwise `b` is drawn uniformly.
//!
//! **Answer space.** `-1 ..= 1` (3 answers): `<` is −1, `=` is 0, `>` is 1.
//!
//! **Features** (`3 + 19·digits`, 60 at default): bias; for each decimal position, most
//! significant first, a one-hot of the digit difference `a_p − b_p` (19 values, −9..=9);
//! then `a / max` and `b / max`. The sign of `a − b` is the sign of the first nonzero
//! difference; since `a − b = Σ 10^p (a_p − b_p)`, it is linear in the difference one-hots,
//! so a log-linear policy can represent the answer exactly (`logit_y = s·y·(a − b)` up to a
//! margin for `=`).

use gristmill_core::params::{ParamSpec, Params};
use gristmill_core::rng::KeyedRng;
use gristmill_core::task::{answer_text, AnswerSpace, FamilyInfo, Features, TaskBody, TaskSource};
use gristmill_core::ParseError;
use rand::Rng;

use crate::common::{
    digit, gold_and_features, one_hot, prompt, render_integer, single_turn, source_shape, strip_wrapping,
};

const KNOBS: &[ParamSpec] = &[
    ParamSpec::int("digits", 1, 6, 3, "decimal digits of both numbers (exactly that many)"),
    ParamSpec::float("equal_rate", 0.0, 0.5, 0.1, "probability that the two numbers are equal"),
    ParamSpec::float(
        "close_rate",
        0.0,
        1.0,
        0.3,
        "probability that the second number differs from the first in exactly one digit",
    ),
];

/// The documented rule.
const RULE: &str = "The text after the last `Answer:` marker (case-insensitive) up to the end of its \
line, trimmed, with one trailing period and any wrapping backticks, quotes, asterisks or dollar signs \
removed, must be `<`, `=` or `>` (the relation of the first number to the second). Also accepted, \
case-insensitive: `less`, `less than`, `smaller`, `lower`, `fewer` (for <); `==`, `equal`, `equals`, \
`equal to`, `same`, `the same` (for =); `greater`, `greater than`, `larger`, `bigger`, `more`, \
`higher` (for >); and the integers -1, 0, 1. Other integers are out of space; anything else is \
malformed.";

/// The `comparison` family.
pub const INFO: FamilyInfo = single_turn(
    "comparison",
    "Compares two numbers with exactly `digits` digits and answers with `<`, `=` or `>` \
(scored as -1, 0, 1). `equal_rate` sets how often they are equal and `close_rate` how often they \
differ in a single digit, which forces reading past the leading digits. Features: bias, one-hot \
digit differences per position (most significant first), and both numbers scaled to [0, 1].",
    RULE,
    KNOBS,
    build,
);

fn build(params: &Params) -> Box<dyn TaskSource> {
    Box::new(ComparisonSource::new(
        params.int("digits").clamp(1, 6) as u32,
        params.float("equal_rate"),
        params.float("close_rate"),
    ))
}

/// A configured `comparison` source.
#[derive(Debug, Clone)]
pub struct ComparisonSource {
    digits: u32,
    lo: u64,
    hi: u64,
    equal_rate: f64,
    close_rate: f64,
}

/// Accepted words, by answer.
const WORDS: [(&str, i64); 17] = [
    ("less", -1),
    ("less than", -1),
    ("smaller", -1),
    ("lower", -1),
    ("fewer", -1),
    ("==", 0),
    ("equal", 0),
    ("equals", 0),
    ("equal to", 0),
    ("same", 0),
    ("the same", 0),
    ("greater", 1),
    ("greater than", 1),
    ("larger", 1),
    ("bigger", 1),
    ("more", 1),
    ("higher", 1),
];

impl ComparisonSource {
    fn new(digits: u32, equal_rate: f64, close_rate: f64) -> Self {
        let lo = if digits == 1 { 0 } else { 10u64.pow(digits - 1) };
        ComparisonSource {
            digits,
            lo,
            hi: 10u64.pow(digits) - 1,
            equal_rate: equal_rate.clamp(0.0, 1.0),
            close_rate: close_rate.clamp(0.0, 1.0),
        }
    }

    fn draw(&self, rng: &mut KeyedRng) -> (u64, u64) {
        let a = rng.random_range(self.lo..=self.hi);
        if rng.random::<f64>() < self.equal_rate {
            return (a, a);
        }
        if rng.random::<f64>() < self.close_rate {
            let p = rng.random_range(0..self.digits);
            let old = digit(a, p) as u64;
            // The leading digit of a multi-digit number stays nonzero so `b` keeps its length.
            let min = if p + 1 == self.digits && self.digits > 1 { 1 } else { 0 };
            // Draw from the 9 - min digits other than `old`.
            let mut new = rng.random_range(min..9);
            if new >= old {
                new += 1;
            }
            let scale = 10u64.pow(p);
            return (a, a - old * scale + new * scale);
        }
        (a, rng.random_range(self.lo..=self.hi))
    }
}

impl TaskSource for ComparisonSource {
    source_shape!(|s| answers: AnswerSpace::inclusive(-1, 1), features: 3 + 19 * s.digits as usize);

    fn generate_into(&self, rng: &mut KeyedRng, body: &mut TaskBody, features: Features) {
        let (a, b) = self.draw(rng);
        let prompt = &mut body.prompt;
        prompt.clear();
        prompt!(
            prompt;
            "Compare ", a, " and ", b, ": is ", a, " less than, equal to, or greater than ", b,
            "?\nEnd your response with a line of the form `Answer: <symbol>`, where the symbol is `<`, `=` or `>`.",
        );
        let Some(f) = gold_and_features(body, a.cmp(&b) as i64, features) else { return };
        for p in (0..self.digits).rev() {
            one_hot(f, 19, digit(a, p) + 9 - digit(b, p));
        }
        f.push(a as f64 / self.hi as f64);
        f.push(b as f64 / self.hi as f64);
    }

    fn render_answer_into(&self, value: i64, out: &mut String) {
        match value {
            -1 => out.replace_range(.., "Answer: <"),
            0 => out.replace_range(.., "Answer: ="),
            1 => out.replace_range(.., "Answer: >"),
            // Out of space: render the integer, which parses back as out of space.
            v => render_integer(v, out),
        }
    }

    fn parse_answer(&self, text: &str) -> Result<i64, ParseError> {
        let raw = answer_text(text)?;
        let s = strip_wrapping(raw);
        match s {
            "<" => return Ok(-1),
            "=" => return Ok(0),
            ">" => return Ok(1),
            _ => {}
        }
        if let Some(&(_, v)) = WORDS.iter().find(|(w, _)| w.eq_ignore_ascii_case(s)) {
            return Ok(v);
        }
        match s.parse::<i64>() {
            Ok(v) if (-1..=1).contains(&v) => Ok(v),
            Ok(_) => Err(ParseError::OutOfSpace(raw.to_string())),
            Err(_) if s.is_empty() => Err(ParseError::Missing),
            Err(_) => Err(ParseError::Malformed(raw.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gristmill_core::rng::{stream, Purpose};

    #[test]
    fn parses_symbols_words_and_integers() {
        let src = ComparisonSource::new(3, 0.1, 0.3);
        assert_eq!(src.parse_answer("so Answer: <"), Ok(-1));
        assert_eq!(src.parse_answer("Answer: **>**"), Ok(1));
        assert_eq!(src.parse_answer("Answer: `=`."), Ok(0));
        assert_eq!(src.parse_answer("answer: Greater Than"), Ok(1));
        assert_eq!(src.parse_answer("Answer: the same"), Ok(0));
        assert_eq!(src.parse_answer("Answer: -1"), Ok(-1));
        assert_eq!(src.parse_answer("Answer: 2"), Err(ParseError::OutOfSpace("2".into())));
        assert_eq!(src.parse_answer("Answer: <=").unwrap_err(), ParseError::Malformed("<=".into()));
        assert_eq!(src.parse_answer("Answer: ``"), Err(ParseError::Missing));
        assert_eq!(src.parse_answer("it is <"), Err(ParseError::Missing));
    }

    #[test]
    fn close_pairs_differ_in_one_digit_and_keep_length() {
        let src = ComparisonSource::new(4, 0.0, 1.0);
        for i in 0..2000 {
            let (a, b) = src.draw(&mut stream(3, Purpose::TASK, 0, i));
            assert!((1000..=9999).contains(&b), "{a} {b}");
            let diffs = (0..4).filter(|&p| digit(a, p) != digit(b, p)).count();
            assert_eq!(diffs, 1, "{a} {b}");
        }
        let one = ComparisonSource::new(1, 0.0, 1.0);
        for i in 0..200 {
            let (a, b) = one.draw(&mut stream(3, Purpose::TASK, 1, i));
            assert!(a != b && b <= 9);
        }
    }
}
