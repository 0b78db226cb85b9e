//! Independent solvers: read each prompt as text, solve it from scratch, and compare with the
//! family's gold answer. This checks that the prompt states the problem the gold answers.

use gristmill_core::params::{ParamValue, Params};
use gristmill_core::rng::{stream, Purpose};
use gristmill_tasks::family;

/// All unsigned integers in `text`, in order (no prompt shows a negative number).
fn numbers(text: &str) -> Vec<i64> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            out.push(text[start..i].parse().unwrap());
        } else {
            i += 1;
        }
    }
    out
}

fn first_line(prompt: &str) -> &str {
    prompt.lines().next().unwrap()
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn solve(family: &str, prompt: &str) -> i64 {
    let line = first_line(prompt);
    let n = numbers(line);
    match family {
        "addition" => n[0] + n[1],
        "multiplication" => n[0] * n[1],
        "modular" => {
            let (a, b, m) = (n[0], n[1], n[2]);
            let x = if line.contains(" + ") {
                a + b
            } else if line.contains(" - ") {
                a - b
            } else {
                assert!(line.contains(" × "));
                a * b
            };
            x.rem_euclid(m)
        }
        "gcd" => gcd(n[0], n[1]),
        "comparison" => (n[0] - n[1]).signum(),
        "counting" => {
            let mut sentences = line.split(". ");
            let mut count = numbers(sentences.next().unwrap())[0];
            for s in sentences {
                if s.contains('?') {
                    break;
                }
                let k = numbers(s)[0];
                if s.contains("more") {
                    count += k;
                } else {
                    count -= k;
                }
            }
            count
        }
        "sort_position" => {
            let list = numbers(line);
            let second = prompt.lines().nth(1).unwrap();
            let marked = numbers(second)[0];
            let mut sorted = list.clone();
            sorted.sort_unstable();
            if second.contains("descending") {
                sorted.reverse();
            }
            sorted.iter().position(|&v| v == marked).unwrap() as i64 + 1
        }
        "bit_count" => {
            let ones = (n[1] as u64).count_ones() as i64; // n[0] is the "1" of "1s"
            if line.contains("even or odd") {
                ones % 2
            } else {
                ones
            }
        }
        "base_conversion" => n[0],
        "sequence_next" => {
            let k = n.len();
            let (a, b, c) = (n[k - 3], n[k - 2], n[k - 1]);
            if b - a == c - b {
                c + (c - b)
            } else if b * b == a * c && c > b {
                c * (c / b)
            } else {
                assert!(b * b == a * c && b % c == 0, "{line}");
                c / (b / c)
            }
        }
        other => panic!("no solver for {other}"),
    }
}

#[test]
fn gold_matches_an_independent_solver() {
    let mut settings: Vec<(&str, Vec<(&str, ParamValue)>)> =
        gristmill_tasks::families().iter().map(|f| (f.name, vec![])).collect();
    let choice = |s: &str| ParamValue::Choice(s.to_string());
    settings.extend([
        ("addition", vec![("digits", ParamValue::Int(3)), ("carry", choice("some"))]),
        ("modular", vec![("op", choice("mixed")), ("modulus", ParamValue::Int(50))]),
        ("comparison", vec![("digits", ParamValue::Int(6)), ("close_rate", ParamValue::Float(1.0))]),
        ("counting", vec![("steps", ParamValue::Int(4)), ("max_amount", ParamValue::Int(20))]),
        ("sort_position", vec![("order", choice("either")), ("length", ParamValue::Int(20))]),
        ("bit_count", vec![("mode", choice("parity")), ("bits", ParamValue::Int(16))]),
        ("multiplication", vec![("digits", ParamValue::Int(2)), ("max_factor", ParamValue::Int(20))]),
        ("sequence_next", vec![("terms", ParamValue::Int(6)), ("max_diff", ParamValue::Int(1))]),
        ("gcd", vec![("max_value", ParamValue::Int(2000))]),
    ]);
    for (name, overrides) in settings {
        let info = family(name).unwrap();
        let mut params = Params::defaults(info.knobs);
        for (k, v) in overrides {
            params.set(k, v);
        }
        let src = (info.build)(&params);
        for i in 0..500 {
            let body = src.generate(&mut stream(77, Purpose::TASK, 0, i));
            assert_eq!(solve(name, &body.prompt), body.gold, "{name}: {}", body.prompt);
        }
    }
}
