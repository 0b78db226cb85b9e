//! gristmill-text against math-verify on the shared corpus (driven by bench/math_verify.sh).
//!
//! ```sh
//! math_verify_bench CORPUS.jsonl PEER_RESULTS.jsonl PEER_SUMMARY.json [--seconds S] [--json OUT]
//! ```
//!
//! Scores every corpus pair with [`Verifier::math`] (the default extraction chain and math
//! equivalence: parse the gold, extract and parse the response's answer, compare), then
//! times that same work on one thread for at least `--seconds` (default 3) of repeated passes
//! over the corpus, and prints: agreement with the peer's verdicts, each side's accuracy
//! against the corpus labels (overall and per category), every disagreement with an
//! explanation category, and both throughputs (wall clock and CPU time on this process)
//! with their ratio.

use std::collections::BTreeMap;
use std::time::Instant;

use gristmill_text::verify::Verifier;
use serde_json::Value;

struct Row {
    id: u64,
    category: String,
    gold: String,
    response: String,
    expected: bool,
}

/// Why the two verifiers differ on a category, written after reading the disagreements
/// (see docs/math-equivalence.md). A category not listed gets a generic note.
const EXPLANATIONS: &[(&str, &str)] = &[
    ("boxed_among", "several boxes: math-verify compares the set of all boxed answers, gristmill-text takes the last box (the MATH convention)"),
    ("scientific_e", "math-verify reads 1.2e3 as 1.2·e·3 (Euler's e); gristmill-text reads E-notation"),
    ("scientific", "math-verify keeps a×10^k with a float mantissa unevaluated and its comparison with the integer fails"),
    ("mixed", "math-verify reads -1 1/2 as -1 (drops the fraction); gristmill-text reads a mixed number"),
    ("tuple_vs_set", "math-verify compares a pair and a set element-wise; gristmill-text keeps ordered pairs and sets apart"),
    ("fraction_forms", "math-verify keeps the sentence's full stop as a decimal point (-23/21. → -23/21.0) and the comparison fails"),
    ("percent", "math-verify lets 50\\% equal 50 only for integers; 12.5\\% against 12.5 is refused"),
    ("gaps", "matrices are not supported by gristmill-text (parse error, scored not equal)"),
];

fn explanation(category: &str, ours_right: bool) -> String {
    EXPLANATIONS.iter().find(|(c, _)| *c == category).map(|(_, e)| e.to_string()).unwrap_or_else(|| {
        if ours_right {
            "math-verify wrong against the label (unexplained category)".into()
        } else {
            "gristmill-text wrong against the label (unexplained category)".into()
        }
    })
}

fn read_jsonl(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{path}: {e}")))
        .collect()
}

/// CPU time this process has run, from /proc/self/schedstat (Linux), in seconds.
fn cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/schedstat").ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

fn short(s: &str, n: usize) -> String {
    let flat: String = s.chars().map(|c| if c == '\n' { ' ' } else { c }).collect();
    if flat.chars().count() <= n {
        flat
    } else {
        let tail: String = flat.chars().rev().take(n).collect::<Vec<_>>().into_iter().rev().collect();
        format!("…{tail}")
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut positional = Vec::new();
    let mut seconds = 3.0f64;
    let mut json_out = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => seconds = it.next().and_then(|s| s.parse().ok()).expect("--seconds S"),
            "--json" => json_out = it.next().cloned(),
            _ => positional.push(a.clone()),
        }
    }
    let [corpus_path, peer_path, peer_summary_path] = positional.as_slice() else {
        eprintln!("usage: math_verify_bench CORPUS PEER_RESULTS PEER_SUMMARY [--seconds S] [--json OUT]");
        std::process::exit(2);
    };

    let rows: Vec<Row> = read_jsonl(corpus_path)
        .into_iter()
        .map(|v| Row {
            id: v["id"].as_u64().expect("id"),
            category: v["category"].as_str().expect("category").to_string(),
            gold: v["gold"].as_str().expect("gold").to_string(),
            response: v["response"].as_str().expect("response").to_string(),
            expected: v["expected"].as_bool().expect("expected"),
        })
        .collect();
    let peer: BTreeMap<u64, bool> = read_jsonl(peer_path)
        .into_iter()
        .map(|v| (v["id"].as_u64().expect("id"), v["equal"].as_bool().expect("equal")))
        .collect();
    let peer_summary: Value =
        serde_json::from_str(&std::fs::read_to_string(peer_summary_path).expect("peer summary"))
            .expect("json");

    let verifier = Verifier::math();
    let ours: Vec<bool> = rows.iter().map(|r| verifier.verify(&r.gold, &r.response).correct).collect();

    // Throughput: whole passes over the corpus until the budget is spent, one thread.
    let mut pairs = 0usize;
    let mut sink = 0usize;
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    while t0.elapsed().as_secs_f64() < seconds {
        for r in &rows {
            sink += verifier.verify(&r.gold, &r.response).correct as usize;
        }
        pairs += rows.len();
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu0.zip(cpu_seconds()).map(|(a, b)| b - a);
    std::hint::black_box(sink);

    // Agreement and accuracy.
    let n = rows.len();
    let mut agree = 0;
    let (mut ours_right, mut peer_right) = (0, 0);
    let mut by_cat: BTreeMap<&str, [usize; 4]> = BTreeMap::new(); // n, ours right, peer right, agree
    let mut disagreements = Vec::new();
    for (r, &o) in rows.iter().zip(&ours) {
        let p = *peer.get(&r.id).unwrap_or_else(|| panic!("peer has no verdict for id {}", r.id));
        let c = by_cat.entry(&r.category).or_default();
        c[0] += 1;
        if o == r.expected {
            ours_right += 1;
            c[1] += 1;
        }
        if p == r.expected {
            peer_right += 1;
            c[2] += 1;
        }
        if o == p {
            agree += 1;
            c[3] += 1;
        } else {
            disagreements.push((r, o, p));
        }
    }
    let pct = |k: usize, n: usize| 100.0 * k as f64 / n as f64;

    println!(
        "== corpus: {n} pairs ({} equal), {} categories",
        rows.iter().filter(|r| r.expected).count(),
        by_cat.len()
    );
    println!("agreement gristmill-text vs math-verify: {agree}/{n} = {:.2}% (goal >= 99%)", pct(agree, n));
    println!(
        "accuracy vs labels: gristmill-text {ours_right}/{n} = {:.2}%, math-verify {peer_right}/{n} = {:.2}%",
        pct(ours_right, n),
        pct(peer_right, n)
    );
    println!();
    println!("{:<20} {:>5} {:>9} {:>9} {:>9}", "category", "n", "ours %", "peer %", "agree %");
    for (cat, [k, o, p, a]) in &by_cat {
        println!("{cat:<20} {k:>5} {:>9.1} {:>9.1} {:>9.1}", pct(*o, *k), pct(*p, *k), pct(*a, *k));
    }
    println!();
    println!(
        "== {} disagreements (label, gristmill-text, math-verify; who matches the label; why)",
        disagreements.len()
    );
    for (r, o, p) in &disagreements {
        let who = if *o == r.expected { "gristmill-text" } else { "math-verify" };
        println!(
            "#{:<5} [{}] gold `{}` | response `{}` | label {} ours {} peer {} | right: {} | {}",
            r.id,
            r.category,
            r.gold,
            short(&r.response, 70),
            r.expected,
            o,
            p,
            who,
            explanation(&r.category, *o == r.expected)
        );
    }

    let ours_wall = pairs as f64 / wall;
    let ours_cpu = cpu.map(|c| pairs as f64 / c);
    let peer_wall = peer_summary["pairs_per_s"].as_f64().expect("peer pairs_per_s");
    let peer_cpu =
        peer_summary["cpu_seconds"].as_f64().map(|c| peer_summary["pairs"].as_f64().unwrap_or(0.0) / c);
    println!();
    println!("== throughput, one core each (pairs/s; parse gold + extract + parse answer + compare)");
    println!(
        "gristmill-text: {ours_wall:>10.0} wall   {:>10} cpu   ({pairs} pairs in {wall:.2} s)",
        ours_cpu.map_or("n/a".into(), |x| format!("{x:.0}"))
    );
    println!(
        "math-verify:    {peer_wall:>10.1} wall   {:>10}   ({} pairs in {:.2} s)",
        peer_cpu.map_or("n/a".into(), |x| format!("{x:.1} cpu")),
        peer_summary["pairs"],
        peer_summary["seconds"].as_f64().unwrap_or(f64::NAN)
    );
    let ratio_wall = ours_wall / peer_wall;
    let ratio_cpu = ours_cpu.zip(peer_cpu).map(|(a, b)| a / b);
    println!(
        "ratio:          {ratio_wall:>10.0}x wall  {:>10}   (goal >= 50x per core)",
        ratio_cpu.map_or("n/a".into(), |x| format!("{x:.0}x cpu"))
    );

    if let Some(path) = json_out {
        let cats: serde_json::Map<String, Value> = by_cat
            .iter()
            .map(|(c, [k, o, p, a])| {
                (c.to_string(), serde_json::json!({"n": k, "ours_right": o, "peer_right": p, "agree": a}))
            })
            .collect();
        let dis: Vec<Value> = disagreements
            .iter()
            .map(|(r, o, p)| {
                serde_json::json!({"id": r.id, "category": r.category, "gold": r.gold, "response": r.response,
                    "expected": r.expected, "ours": o, "peer": p,
                    "explanation": explanation(&r.category, *o == r.expected)})
            })
            .collect();
        let out = serde_json::json!({
            "pairs": n, "agreement": agree as f64 / n as f64,
            "ours_accuracy": ours_right as f64 / n as f64, "peer_accuracy": peer_right as f64 / n as f64,
            "ours_pairs_per_s_wall": ours_wall, "ours_pairs_per_s_cpu": ours_cpu,
            "peer_pairs_per_s_wall": peer_wall, "peer_pairs_per_s_cpu": peer_cpu,
            "ratio_wall": ratio_wall, "ratio_cpu": ratio_cpu,
            "categories": cats, "disagreements": dis, "peer": peer_summary,
        });
        std::fs::write(&path, serde_json::to_string_pretty(&out).expect("json")).expect("write --json");
    }
}
