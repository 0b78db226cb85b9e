//! Property tests: round trips that must hold for every input, and fuzzing every parser
//! with arbitrary and math-shaped strings (no input may panic).

use gristmill_text::choice::Choices;
use gristmill_text::extract::Extractor;
use gristmill_text::format::{parse_json, JsonSource, Layout};
use gristmill_text::math::{self, MathOptions};
use gristmill_text::normalize::Normalization;
use gristmill_text::number::{numeric_match, parse_number, Tolerance};
use gristmill_text::Rational;
use proptest::prelude::*;

/// `n` with a comma every three digits: 1234567 → "1,234,567".
fn with_separators(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Fragments that make strings the math parser takes deep paths on.
fn math_fragment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "1",
        "23",
        "0.5",
        "1,234",
        "x",
        "y",
        "e",
        "\\pi",
        "\\infty",
        "\\frac",
        "\\dfrac",
        "\\sqrt",
        "\\sqrt[3]",
        "{",
        "}",
        "(",
        ")",
        "[",
        "]",
        "\\{",
        "\\}",
        "^",
        "_",
        "+",
        "-",
        "*",
        "/",
        "=",
        ",",
        "\\%",
        "%",
        "!",
        "^\\circ",
        "\\cdot",
        "\\times",
        "\\left(",
        "\\right)",
        "\\text{ cm}",
        "\\text{",
        " ",
        "\\cup",
        "\\in",
        "\\ln",
        "\\log_",
        "\\sin",
        "|",
        "√",
        "π",
        "×",
        "²",
        "10^{",
        "\\boxed{",
        "$",
        ".",
        "1e5",
        "e-3",
        "\\pm",
        "\\emptyset",
    ])
}

fn math_string() -> impl Strategy<Value = String> {
    prop::collection::vec(math_fragment(), 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn thousands_separators_round_trip(n in any::<i64>()) {
        let text = with_separators(n);
        let parsed = parse_number(&text).unwrap();
        prop_assert_eq!(parsed.exact, Some(Rational::from_int(n as i128)), "{}", text);
        // the math parser reads them too (outside brackets)
        let v = math::equivalent(&n.to_string(), &text, &MathOptions::default()).unwrap();
        prop_assert!(v.equal, "{}", text);
    }

    #[test]
    fn short_comma_groups_are_not_separators(a in 1u32..1000, b in 0u32..100) {
        // "1,2" or "12,34" is not one number
        let text = format!("{a},{b}");
        prop_assert!(parse_number(&text).is_err(), "{}", text);
    }

    #[test]
    fn frac_equals_slash(a in any::<i64>(), b in any::<i64>().prop_filter("nonzero", |b| *b != 0)) {
        let opts = MathOptions::default();
        let frac = format!("\\frac{{{a}}}{{{b}}}");
        let v = math::equivalent(&frac, &format!("{a}/{b}"), &opts).unwrap();
        prop_assert!(v.equal, "{} vs {}/{}", frac, a, b);
        // and differs from the next fraction up
        let next = format!("({a}+1)/{b}");
        prop_assert!(!math::equivalent(&frac, &next, &opts).unwrap().equal);
    }

    #[test]
    fn decimal_rendering_matches_within_tolerance(num in -10_000i64..10_000, den in 1i64..1000) {
        let value = num as f64 / den as f64;
        let opts = MathOptions::default();
        let frac = format!("\\frac{{{num}}}{{{den}}}");
        let rounded = format!("{value:.6}");
        prop_assert!(math::equivalent(&frac, &rounded, &opts).unwrap().equal, "{} vs {}", frac, rounded);
        let slash = format!("{num}/{den}");
        prop_assert!(numeric_match(&slash, &rounded, &Tolerance::default()).unwrap(), "{} vs {}", slash, rounded);
        // an error of one in the fourth decimal is always caught
        let off = format!("{:.6}", value + 1e-4);
        prop_assert!(!math::equivalent(&frac, &off, &opts).unwrap().equal, "{} vs {}", frac, off);
    }

    #[test]
    fn set_order_does_not_matter(mut items in prop::collection::vec(-50i32..50, 1..8), seed in any::<u64>()) {
        let gold = format!("\\{{{}\\}}", items.iter().map(i32::to_string).collect::<Vec<_>>().join(","));
        // a deterministic shuffle
        let n = items.len();
        for i in (1..n).rev() {
            items.swap(i, (seed as usize).wrapping_mul(i + 7) % (i + 1));
        }
        let shuffled = format!("\\{{{}\\}}", items.iter().map(i32::to_string).collect::<Vec<_>>().join(", "));
        prop_assert!(math::equivalent(&gold, &shuffled, &MathOptions::default()).unwrap().equal);
    }

    #[test]
    fn rational_arithmetic_agrees_with_floats(a in -1_000_000i128..1_000_000, b in 1i128..1_000_000,
                                              c in -1_000_000i128..1_000_000, d in 1i128..1_000_000) {
        let x = Rational::new(a, b).unwrap();
        let y = Rational::new(c, d).unwrap();
        let (xf, yf) = (a as f64 / b as f64, c as f64 / d as f64);
        let close = |r: Rational, f: f64| (r.to_f64() - f).abs() <= 1e-9 * f.abs().max(1.0);
        prop_assert!(close(x.checked_add(y).unwrap(), xf + yf));
        prop_assert!(close(x.checked_mul(y).unwrap(), xf * yf));
        if c != 0 {
            prop_assert!(close(x.checked_div(y).unwrap(), xf / yf));
        }
        prop_assert_eq!(x.checked_sub(x), Some(Rational::ZERO));
    }

    #[test]
    fn no_input_panics(s in any::<String>()) {
        fuzz_everything(&s);
    }

    #[test]
    fn no_math_shaped_input_panics(s in math_string()) {
        fuzz_everything(&s);
        // whatever parses equals itself
        let opts = MathOptions::default();
        if let Ok(e) = math::parse(&s, &opts.limits) {
            prop_assert!(math::compare(&e, &e, &opts).unwrap().equal, "{}", s);
        }
    }
}

fn fuzz_everything(s: &str) {
    let opts = MathOptions::default();
    for name in ["whole", "answer_line", "boxed", "answer_is", "last_latex", "last_number"] {
        if let Ok(e) = Extractor::named(name).unwrap().extract(s) {
            assert_eq!(&s[e.range.clone()], e.answer);
        }
    }
    let _ = Extractor::math_default().extract(s);
    let _ = parse_number(s);
    let _ = numeric_match(s, "1", &Tolerance::default());
    let _ = math::equivalent(s, "1", &opts);
    let _ = math::equivalent("x", s, &opts);
    let _ = math::equivalent(s, s, &opts);
    let _ = Choices::first(5).unwrap().extract(s);
    let _ = Normalization::default().apply(s);
    let _ = parse_json(s, JsonSource::Fenced);
    let _ = Layout::think_answer().check(s);
    let _ = Extractor::regex(s);
    let _ = Choices::parse(s);
    let _ = Normalization::parse(s);
}

#[test]
fn megabyte_responses_are_fast() {
    use std::time::Instant;
    let start = Instant::now();
    let filler = "the answer is maybe 12, or \\boxed{3 and (((( $x$ ".repeat(25_000); // ~1.2 MB
    let _ = Extractor::math_default().extract(&filler);
    let _ = Choices::first(4).unwrap().extract(&filler);
    let _ = parse_number(&filler);
    let _ = math::equivalent(&filler, "1", &MathOptions::default());
    let _ = parse_json(&filler, JsonSource::Fenced);
    let _ = Layout::think_answer().check(&filler);
    let _ = Normalization::default().apply(&filler);
    let open = "{".repeat(1 << 20);
    assert!(Extractor::named("boxed").unwrap().extract(&format!("\\boxed{open}")).is_err());
    assert!(start.elapsed().as_secs_f64() < 10.0, "took {:?}", start.elapsed());
}
