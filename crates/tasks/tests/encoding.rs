//! The feature encodings carry the answer in the documented, learnable form: for each
//! family the module docs claim the answer (or its log, or its angle) is a fixed linear
//! function of the features. Those claims are what lets a log-linear policy
//! (`logit_y = features · θ_y`) generalize to unseen tasks, so they are checked here on
//! the documented layouts at default knobs.

use gristmill_core::params::{ParamValue, Params};
use gristmill_core::rng::{stream, Purpose};
use gristmill_core::task::{TaskBody, TaskSource};
use gristmill_tasks::family;

fn source(name: &str, overrides: &[(&str, ParamValue)]) -> Box<dyn TaskSource> {
    let info = family(name).unwrap();
    let mut p = Params::defaults(info.knobs);
    for (k, v) in overrides {
        p.set(k, v.clone());
    }
    (info.build)(&p)
}

fn bodies(src: &dyn TaskSource) -> Vec<TaskBody> {
    (0..500).map(|i| src.generate(&mut stream(31, Purpose::TASK, 0, i))).collect()
}

fn close(x: f64, y: f64) -> bool {
    (x - y).abs() < 1e-9 * y.abs().max(1.0)
}

#[test]
fn addition_counting_bits_base_and_sort_are_linear_in_the_features() {
    let src = source("addition", &[]);
    for b in bodies(src.as_ref()) {
        let f = &b.features;
        assert!(close(99.0 * (f[41] + f[42]), b.gold as f64));
        // The digit one-hots carry the same sum.
        let from_digits: f64 = (0..4)
            .map(|blk| {
                let place = 10f64.powi(blk % 2);
                (0..10).map(|d| f[1 + 10 * blk as usize + d] * d as f64 * place).sum::<f64>()
            })
            .sum();
        assert!(close(from_digits, b.gold as f64));
    }
    let src = source("counting", &[]);
    for b in bodies(src.as_ref()) {
        let f = &b.features;
        let z = 18.0 * f[1] + 9.0 * (f[5] + f[9]);
        assert!(close(z, b.gold as f64), "{}", b.prompt);
    }
    let src = source("bit_count", &[]);
    for b in bodies(src.as_ref()) {
        assert!(close(b.features[2..].iter().sum(), b.gold as f64));
    }
    let src = source("base_conversion", &[]);
    for b in bodies(src.as_ref()) {
        assert!(close(127.0 * b.features[1], b.gold as f64));
    }
    let src = source("sort_position", &[("order", ParamValue::Choice("either".into()))]);
    for b in bodies(src.as_ref()) {
        let s: f64 = b.features[9..15].iter().sum();
        assert!(close(1.0 + (5.0 + s) / 2.0, b.gold as f64), "{}", b.prompt);
    }
}

#[test]
fn multiplication_and_geometric_sequences_are_linear_in_log_space() {
    let src = source("multiplication", &[]);
    for b in bodies(src.as_ref()) {
        let n = b.features.len();
        let z = 81f64.ln() * (b.features[n - 2] + b.features[n - 1]);
        assert!(close(z, (b.gold as f64).ln()), "{}", b.prompt);
    }
    let src = source("sequence_next", &[]);
    let scales = [70.0 + 4.0 * 5.0, 70.0, 30.0 * 81.0];
    for b in bodies(src.as_ref()) {
        let f = &b.features;
        let kind = (1..4).position(|k| f[k] == 1.0).unwrap();
        let block = &f[4 + 4 * kind..8 + 4 * kind];
        let s: f64 = scales[kind];
        if kind == 0 {
            assert!(close(s * (2.0 * block[0] - block[1]), b.gold as f64), "{}", b.prompt);
        } else {
            let z = s.ln() * (2.0 * block[2] - block[3]);
            assert!(close(z, (b.gold as f64).ln()), "{}", b.prompt);
        }
    }
}

#[test]
fn comparison_sign_is_linear_in_digit_differences() {
    let src = source("comparison", &[]);
    for b in bodies(src.as_ref()) {
        let f = &b.features;
        let mut z = 0.0;
        for pos in 0..3 {
            let place = 10f64.powi(2 - pos as i32);
            for v in 0..19 {
                z += f[1 + 19 * pos + v] * (v as f64 - 9.0) * place;
            }
        }
        assert_eq!(z.signum() as i64 * (z != 0.0) as i64, b.gold, "{}", b.prompt);
    }
}

#[test]
fn modular_sum_and_difference_angles_pick_the_answer() {
    for (op, sign) in [("add", 1.0), ("sub", -1.0)] {
        let src = source("modular", &[("op", ParamValue::Choice(op.into()))]);
        let m = 7usize;
        for b in bodies(src.as_ref()) {
            let f = &b.features;
            let base = 4 + 2 * m + 4;
            let (cc, ss, sc, cs) = (f[base], f[base + 1], f[base + 2], f[base + 3]);
            let (cos, sin) = (cc - sign * ss, sc + sign * cs);
            // logit_y = cos(2πy/m)·cos + sin(2πy/m)·sin peaks at the answer.
            let best = (0..m)
                .max_by(|&x, &y| {
                    let t = |k: usize| {
                        let a = std::f64::consts::TAU * k as f64 / m as f64;
                        a.cos() * cos + a.sin() * sin
                    };
                    t(x).total_cmp(&t(y))
                })
                .unwrap();
            assert_eq!(best as i64, b.gold, "{}", b.prompt);
        }
    }
}

#[test]
fn gcd_log_is_linear_in_common_prime_powers_when_smooth() {
    let src = source("gcd", &[]);
    let powers: [(u32, f64); 14] = [
        (2, 2.0),
        (4, 2.0),
        (8, 2.0),
        (16, 2.0),
        (32, 2.0),
        (3, 3.0),
        (9, 3.0),
        (27, 3.0),
        (5, 5.0),
        (25, 5.0),
        (7, 7.0),
        (49, 7.0),
        (11, 11.0),
        (13, 13.0),
    ];
    let mut smooth = 0;
    for b in bodies(src.as_ref()) {
        let mut g = b.gold;
        for p in [2, 3, 5, 7, 11, 13] {
            while g % p == 0 {
                g /= p;
            }
        }
        if g != 1 {
            continue;
        }
        smooth += 1;
        let z: f64 = powers.iter().enumerate().map(|(i, &(_, p))| b.features[18 + i] * p.ln()).sum();
        assert!(close(z, (b.gold as f64).ln()), "{}: {z}", b.prompt);
    }
    assert!(smooth > 300, "{smooth}");
}
