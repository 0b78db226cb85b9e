//! The channel split is exact: at every step of a run, the per-cell steps sum to the real
//! step, and the real step equals what an ordinary, unsplit GRPO implementation computes.
//!
//! For Adam the shares are also checked against their bound, twice the largest step Adam
//! can take on a coordinate. The comparison is made in two exact halves: the split gradient equals the
//! unsplit GRPO gradient, and the split optimizer's step equals ordinary Adam's step on that
//! gradient. (Composing them end to end is not a fair 1e-12 test: Adam divides each
//! coordinate by `√v + ε`, so a coordinate whose gradient cancels to ~1e-17 turns a
//! summation-order rounding difference into an O(η) step difference, in any implementation.)

use gristmill_testkit::{fixture, trainable, with_policy};

use gristmill_core::piece::ScoreKey;
use gristmill_core::policy::Response;
use gristmill_core::rng::{stream, Purpose};
use gristmill_learn::model::{inverse_cdf, log_softmax, softmax, Arch, HINT_FEATURES};
use gristmill_learn::optim::ReferenceOptimizer;
use gristmill_learn::{Normalization, Trainer};
use rand::Rng;

/// The efficiency bound on the split: 1e-12 relative. The split and the reference add the same
/// terms in different orders; with O(100) terms of mixed sign the rounding difference is
/// a few hundred ulps of the largest term, ~1e-14 relative.
const REL: f64 = 1e-12;

fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let diff: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt();
    let norm: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    diff / norm.max(f64::MIN_POSITIVE)
}

/// GRPO as one would write it without any split: combined reward, one advantage per
/// sample, the gradient of log π on the observation actually shown, plus KL and decay.
fn reference_gradient(t: &Trainer) -> Vec<f64> {
    let env = t.env();
    let step = t.steps_done();
    let seed = t.seed();
    let theta = t.theta();
    let (b_count, g_count) =
        (env.spec.spec().run.tasks_per_step as usize, env.spec.spec().run.responses_per_task as usize);
    let q = env.sampling_distribution();
    let hint_p = env.hint().map(|h| h.probability);
    let w = env.channel_weights();
    let mut grad = vec![0.0; t.model().len()];
    for b in 0..b_count {
        let task = env.training_task(&q, hint_p, seed, step, b as u64).unwrap();
        let src = env.sources[task.key.source as usize].as_ref();
        let e = t.model().encode(&task);
        let act = t.model().forward(theta, &e);
        let p = softmax(&act.logits);
        let mut ys = vec![];
        let mut rs = vec![];
        for g in 0..g_count {
            let index = (b * g_count + g) as u64;
            let u: f64 = stream(seed, Purpose::SAMPLE, step, index).random();
            let y = inverse_cdf(&p, u);
            let resp = Response::from_answer(src, task.answers.value(y));
            rs.push(env.score(&task, &resp, ScoreKey { seed, step, index }));
            ys.push(y);
        }
        let c = w.len();
        let combined: Vec<f64> = rs.iter().map(|r| r.iter().zip(&w).map(|(a, b)| a * b).sum()).collect();
        let mean_c: Vec<f64> =
            (0..c).map(|k| rs.iter().map(|r| r[k]).sum::<f64>() / g_count as f64).collect();
        let std = |xs: Vec<f64>| {
            let m = xs.iter().sum::<f64>() / xs.len() as f64;
            (xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / xs.len() as f64).sqrt()
        };
        let adv: Vec<f64> = (0..g_count)
            .map(|g| {
                (0..c)
                    .map(|k| {
                        let centred = w[k] * (rs[g][k] - mean_c[k]);
                        match t.config().normalization {
                            Normalization::Shared => centred / (std(combined.clone()) + 1e-6),
                            Normalization::PerChannel => {
                                centred / (std(rs.iter().map(|r| r[k]).collect()) + 1e-6)
                            }
                            Normalization::None => centred,
                        }
                    })
                    .sum()
            })
            .collect();
        let mut dz = vec![0.0; p.len()];
        for g in 0..g_count {
            let a = adv[g] / (b_count * g_count) as f64;
            for (k, pk) in p.iter().enumerate() {
                dz[k] += a * ((k == ys[g]) as i32 as f64 - pk);
            }
        }
        if t.config().kl > 0.0 {
            let lp = log_softmax(&act.logits);
            let lp0 = log_softmax(&t.model().forward(t.theta0(), &e).logits);
            let kl: f64 = p.iter().zip(lp.iter().zip(&lp0)).map(|(p, (a, b))| p * (a - b)).sum();
            for k in 0..p.len() {
                dz[k] += -t.config().kl / b_count as f64 * p[k] * (lp[k] - lp0[k] - kl);
            }
        }
        t.model().backward(theta, &e, &act, &dz, &mut grad);
    }
    for (g, th) in grad.iter_mut().zip(theta) {
        *g -= t.config().weight_decay * th;
    }
    grad
}

fn check_every_step(policy: &str) {
    let (env, config) = trainable(&with_policy(&fixture("rich"), policy));
    let mut trainer = Trainer::new(env, config.clone()).unwrap();
    let mut reference =
        ReferenceOptimizer::new(config.optimizer, config.learning_rate, trainer.model().len());
    let mut hinted_steps = 0;
    let mut hint_off_features_steps = 0;
    for _ in 0..6 {
        let g = reference_gradient(&trainer);
        let bound = trainer.state().optimizer.step_bound();
        let report = trainer.step().unwrap();
        if let Some(bound) = bound {
            // Every cell's share of every coordinate's step is within twice the largest
            // step Adam can take there (the Owen split's bound; the old linear split with
            // a shared second moment exceeded it by orders of magnitude on this spec).
            let worst = report.deltas.iter().flatten().fold(0.0f64, |a, d| a.max(d.abs()));
            assert!(
                worst <= 2.0 * bound * (1.0 + 1e-12),
                "{policy}: step {}: share {worst} > 2·B = {}",
                report.step,
                2.0 * bound
            );
        }
        assert!(
            rel_err(&report.gradient, &g) <= REL,
            "{policy}: step {}: split gradient vs unsplit GRPO gradient {}",
            report.step,
            rel_err(&report.gradient, &g)
        );
        let expected = if matches!(config.optimizer, gristmill_learn::optim::OptimizerKind::Sgd) {
            reference.step(&g)
        } else {
            reference.step(&report.gradient)
        };
        let real: Vec<f64> = trainer.theta().iter().zip(&report.theta_before).map(|(a, b)| a - b).collect();
        let summed: Vec<f64> =
            (0..real.len()).map(|k| report.deltas.iter().map(|d| d[k]).sum::<f64>()).collect();
        assert!(
            rel_err(&summed, &real) <= REL,
            "{policy}: step {}: Σ cells vs real step {}",
            report.step,
            rel_err(&summed, &real)
        );
        assert!(
            rel_err(&real, &expected) <= REL,
            "{policy}: step {}: split vs unsplit {}",
            report.step,
            rel_err(&real, &expected)
        );
        let hint_row = trainer.channels().iter().position(|c| c.id == "hint").unwrap();
        let cols = trainer.columns();
        let hint_moved =
            (0..cols).any(|s| report.deltas[trainer.cell(hint_row, s)].iter().any(|v| *v != 0.0));
        if hint_moved {
            hinted_steps += 1;
        }
        // Once the policy reads the hint (π(y|xʰ) ≠ π(y|x); not at step 0, where hint
        // weights are zero), the hint's share reaches parameters the unhinted gold suite
        // reads. The old split (∇log π(y|xʰ) − ∇log π(y|x)) lived on the hint features only,
        // so `∇M` never saw it.
        if trainer.model().arch == Arch::LogLinear && hint_moved {
            let (d, k) = (trainer.model().input, trainer.model().answers());
            let off_hint = (0..cols).any(|s| {
                let delta = &report.deltas[trainer.cell(hint_row, s)];
                (0..d - HINT_FEATURES).any(|i| delta[i * k..(i + 1) * k].iter().any(|v| *v != 0.0))
            });
            hint_off_features_steps += off_hint as usize;
        }
    }
    assert!(hinted_steps > 0, "the hint cell never moved: the test would not see a wrong hint split");
    if trainer.model().arch == Arch::LogLinear {
        assert!(hint_off_features_steps > 0, "{policy}: the hint's share never left the hint features");
    }
}

#[test]
fn split_sums_to_real_step_and_matches_unsplit_sgd_loglinear() {
    check_every_step(
        r#"kind = "loglinear"
params = { optimizer = "sgd", learning_rate = 0.5, kl = 0.05, weight_decay = 0.01 }"#,
    );
}

#[test]
fn split_sums_to_real_step_and_matches_unsplit_adam_loglinear_per_channel() {
    check_every_step(
        r#"kind = "loglinear"
params = { optimizer = "adam", learning_rate = 0.05, normalization = "per_channel", kl = 0.05, weight_decay = 0.01 }"#,
    );
}

#[test]
fn split_sums_to_real_step_and_matches_unsplit_sgd_mlp_without_sigma() {
    check_every_step(
        r#"kind = "mlp"
params = { optimizer = "sgd", learning_rate = 0.3, hidden = 8, normalization = "none" }"#,
    );
}

#[test]
fn split_sums_to_real_step_and_matches_unsplit_adam_mlp() {
    check_every_step(
        r#"kind = "mlp"
params = { optimizer = "adam", learning_rate = 0.05, hidden = 8, kl = 0.1, weight_decay = 0.001 }"#,
    );
}

#[test]
fn training_is_identical_on_one_and_four_threads() {
    let (env, config) = trainable(&with_policy(
        &fixture("rich"),
        r#"kind = "mlp"
params = { hidden = 8 }"#,
    ));
    let digest = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let mut t = Trainer::new(env.clone(), config.clone()).unwrap();
            for _ in 0..4 {
                t.step().unwrap();
            }
            (t.state().digest.clone(), t.theta().to_vec())
        })
    };
    assert_eq!(digest(1), digest(4));
}

#[test]
fn non_finite_parameters_stop_the_step_naming_step_and_channel_and_keep_the_state() {
    let (env, config) = trainable(&with_policy(&fixture("rich"), r#"kind = "loglinear""#));
    let mut t = Trainer::new(env, config).unwrap();
    t.step().unwrap();
    let mut poisoned = t.state().clone();
    poisoned.theta[0] = f64::NAN;
    t.restore(poisoned).unwrap();
    let before = t.state().clone();
    let err = t.step().unwrap_err().to_string();
    assert!(err.contains("at step 1") && err.contains("logits"), "{err}");
    // The failing step committed nothing.
    assert_eq!(t.steps_done(), before.step);
    assert_eq!(t.state().digest, before.digest);
}
