//! `score-bench SPEC N`: responses scored per second by the Rust scorer called directly, doing
//! exactly what the Python binding's `Environment.score` does per response (parse the wire
//! key, regenerate the task, parse the response, score every channel), on rayon's pool. The
//! system allocator, as in the Python extension, so the two figures compare the binding's
//! overhead and nothing else. `bench/python_scoring.py` runs both and prints the ratio.

use std::time::Instant;

use anyhow::Context;
use gristmill_core::policy::Response;
use gristmill_core::spec::Overrides;
use gristmill_engine::WireKey;
use rayon::prelude::*;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (spec, n, repeats) = match args.as_slice() {
        [_, spec, n, rest @ ..] => {
            (spec.clone(), n.parse::<u64>()?, rest.first().map_or(Ok(5), |r| r.parse())?)
        }
        _ => anyhow::bail!("usage: score-bench SPEC N [REPEATS]"),
    };
    let text = std::fs::read_to_string(&spec).with_context(|| format!("read {spec}"))?;
    let env = gristmill_engine::load(&text, &spec, &Overrides::default())?;
    let seed = env.seed();
    // The same keys and responses the Python side builds: slot i of step 0, gold text for
    // even i and a wrong answer for odd i.
    let keys: Vec<String> = (0..n).map(|index| WireKey::Train { seed, step: 0, index }.to_string()).collect();
    let golds: Vec<String> = keys
        .par_iter()
        .map(|k| {
            let task = env.keyed_task(k.parse().expect("a key we wrote")).expect("task");
            env.sources[task.key.source as usize].render_answer(task.gold())
        })
        .collect();
    let responses: Vec<String> = golds
        .iter()
        .enumerate()
        .map(|(i, g)| if i % 2 == 0 { g.clone() } else { "Answer: 0".into() })
        .collect();
    let mut best = f64::INFINITY;
    let mut checksum = 0.0;
    for _ in 0..repeats {
        let start = Instant::now();
        let rows: Vec<Vec<f64>> = keys
            .par_iter()
            .zip(responses.par_iter())
            .map(|(k, text)| {
                let key: WireKey = k.parse().expect("key");
                let task = env.keyed_task(key).expect("task");
                let source = env.sources[task.key.source as usize].as_ref();
                let response = Response::from_text(source, text.clone());
                env.score(&task, &response, env.keyed_score_key(key, None))
            })
            .collect();
        best = best.min(start.elapsed().as_secs_f64());
        checksum = rows.iter().flatten().sum::<f64>();
    }
    println!("rust_direct_responses_per_s {:.0}", n as f64 / best);
    println!("rust_direct_best_seconds {best:.6}");
    println!("checksum {checksum:.9}");
    Ok(())
}
