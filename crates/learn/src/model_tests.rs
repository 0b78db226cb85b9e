//! Finite-difference checks of the hand-written gradients.

use gristmill_core::rng::{stream, Purpose};
use gristmill_core::task::AnswerSpace;
use rand::Rng;

use crate::metric::{metric, metric_and_grad};
use crate::model::{softmax, Arch, Encoded, Model};

fn random_model(arch: Arch) -> (Model, Vec<f64>, Vec<Encoded>) {
    let spaces = [AnswerSpace::inclusive(0, 12), AnswerSpace::inclusive(-1, 1)];
    let model = Model::new(arch, &spaces, &[5, 3]);
    let mut rng = stream(1, Purpose::named("test"), 0, 0);
    let theta: Vec<f64> = (0..model.len()).map(|_| rng.random::<f64>() - 0.5).collect();
    let suite = (0..6)
        .map(|t| {
            let mut x: Vec<f64> = (0..model.input).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect();
            // Some sparse entries, as real encodings have.
            x[t % model.input] = 0.0;
            let (start, len) = if t % 2 == 0 { (1, 13) } else { (0, 3) };
            Encoded { x, start, len, gold: t % len }
        })
        .collect();
    (model, theta, suite)
}

fn log_prob(model: &Model, theta: &[f64], e: &Encoded, y: usize) -> f64 {
    softmax(&model.forward(theta, e).logits)[y].ln()
}

/// Central differences with h = 1e-5 have truncation error O(h²·f''') ≈ 1e-10 and rounding
/// error O(ε/h) ≈ 1e-11 for these O(1) functions; 1e-7 absolute leaves a wide margin while
/// still catching any wrong term (which shows up at 1e-2 or more).
const FD_TOL: f64 = 1e-7;
const H: f64 = 1e-5;

#[test]
fn log_prob_gradient_matches_finite_differences() {
    for arch in [Arch::LogLinear, Arch::Mlp { hidden: 4 }] {
        let (model, theta, suite) = random_model(arch);
        for e in &suite {
            let y = (e.gold + 1) % e.len;
            let act = model.forward(&theta, e);
            let p = softmax(&act.logits);
            let dz: Vec<f64> = p.iter().enumerate().map(|(k, pk)| (k == y) as i32 as f64 - pk).collect();
            let mut grad = vec![0.0; model.len()];
            model.backward(&theta, e, &act, &dz, &mut grad);
            for k in 0..model.len() {
                let mut tp = theta.clone();
                tp[k] += H;
                let mut tm = theta.clone();
                tm[k] -= H;
                let fd = (log_prob(&model, &tp, e, y) - log_prob(&model, &tm, e, y)) / (2.0 * H);
                assert!((fd - grad[k]).abs() < FD_TOL, "{arch:?} param {k}: fd {fd} vs exact {}", grad[k]);
            }
        }
    }
}

#[test]
fn gold_metric_and_gradient_match_finite_differences() {
    for arch in [Arch::LogLinear, Arch::Mlp { hidden: 3 }] {
        let (model, theta, suite) = random_model(arch);
        let (m, grad) = metric_and_grad(&model, &theta, &suite).unwrap();
        // M is the mean gold probability, computed independently here.
        let direct: f64 =
            suite.iter().map(|e| softmax(&model.forward(&theta, e).logits)[e.gold]).sum::<f64>()
                / suite.len() as f64;
        assert!((m - direct).abs() < 1e-15);
        assert_eq!(m, metric(&model, &theta, &suite).unwrap());
        for k in 0..model.len() {
            let mut tp = theta.clone();
            tp[k] += H;
            let mut tm = theta.clone();
            tm[k] -= H;
            let fd =
                (metric(&model, &tp, &suite).unwrap() - metric(&model, &tm, &suite).unwrap()) / (2.0 * H);
            assert!((fd - grad[k]).abs() < FD_TOL, "{arch:?} param {k}: fd {fd} vs exact {}", grad[k]);
        }
    }
}

#[test]
fn initial_policies_are_uniform() {
    for arch in [Arch::LogLinear, Arch::Mlp { hidden: 8 }] {
        let (model, _, suite) = random_model(arch);
        let theta = model.init(3, 1.0);
        for e in &suite {
            let p = softmax(&model.forward(&theta, e).logits);
            assert!(p.iter().all(|x| (x - 1.0 / e.len as f64).abs() < 1e-15));
        }
    }
}

#[test]
fn jvp_matches_finite_differences_of_logits() {
    for arch in [Arch::LogLinear, Arch::Mlp { hidden: 5 }] {
        let (model, theta, suite) = random_model(arch);
        let mut rng = stream(2, Purpose::named("dir"), 0, 0);
        let dir: Vec<f64> = (0..model.len()).map(|_| rng.random::<f64>() - 0.5).collect();
        for e in &suite {
            let act = model.forward(&theta, e);
            let j = model.jvp(&theta, e, &act, &dir);
            let plus: Vec<f64> = theta.iter().zip(&dir).map(|(t, d)| t + H * d).collect();
            let minus: Vec<f64> = theta.iter().zip(&dir).map(|(t, d)| t - H * d).collect();
            let (zp, zm) = (model.forward(&plus, e).logits, model.forward(&minus, e).logits);
            for y in 0..e.len {
                let fd = (zp[y] - zm[y]) / (2.0 * H);
                assert!((fd - j[y]).abs() < FD_TOL, "{arch:?} y {y}: fd {fd} vs jvp {}", j[y]);
            }
        }
    }
}
