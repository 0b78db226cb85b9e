//! Code-sandbox benchmark: executions per second and per-execution overhead of the sandbox
//! against a bare `python3` subprocess running the same tests, same machine, same run.
//!
//! ```sh
//! cargo run --release -p gristmill-sandbox --example sandbox-bench -- [--seconds S] [--rounds R]
//! ```
//!
//! `--seconds`: time per mode (default 12); `--rounds`: rounds of the two-thread modes.
//!
//! One *execution* = one solution against its whole suite (5–10 tests). The workload cycles
//! through five typical problems: four function problems (call tests) and one stdin/stdout
//! program. Modes, interleaved round by round so that load drifts hit all of them alike:
//!
//! * `bare`: `python3 -I -S -B -c <solution + a loop over the tests>` via
//!   `std::process::Command`, one process per execution for call tests (one per test for
//!   stdin/stdout tests), expected values compared in Rust; no isolation, no limits. Each
//!   child gets its own session (`setsid`), as sandboxed children do, so that scheduler
//!   autogroups treat both sides alike.
//! * `bare/test`: the same, one process per test.
//! * `sandbox`: `Sandbox::run`, `ProcessMode::Shared` (the default).
//! * `sandbox/test`: `Sandbox::run`, `ProcessMode::PerTest`.
//!
//! The four run on one thread, paired: each iteration runs every mode once on the same
//! problem (rotating the order), so load drifts hit all alike and the overhead is a mean of
//! paired differences with a 95% confidence interval. Then `bare` and `sandbox` again with
//! two worker threads (the machine has two cores), in interleaved rounds. Last, a null
//! execution (one trivial call test) paired the same way: the per-process overhead.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gristmill_sandbox::{Expected, ProcessMode, Sandbox, SandboxConfig, Test};
use serde_json::{json, Value};

struct Problem {
    name: &'static str,
    solution: &'static str,
    tests: Vec<Test>,
}

fn problems() -> Vec<Problem> {
    let call = |e: &str, v: Value| Test::call(e, v);
    vec![
        Problem {
            name: "add",
            solution: "def add(a, b):\n    return a + b\n",
            tests: vec![
                call("add(1, 2)", json!(3)),
                call("add(-5, 5)", json!(0)),
                call("add(10**12, 1)", json!(1_000_000_000_001u64)),
                call("add(0, 0)", json!(0)),
                call("add(123, 456)", json!(579)),
            ],
        },
        Problem {
            name: "is_prime",
            solution: "def is_prime(n):\n    if n < 2:\n        return False\n    i = 2\n    while i * i <= n:\n        if n % i == 0:\n            return False\n        i += 1\n    return True\n",
            tests: [(0, false), (1, false), (2, true), (9, false), (17, true), (97, true), (7919, true), (10007 * 3, false)]
                .iter()
                .map(|&(n, p)| call(&format!("is_prime({n})"), json!(p)))
                .collect(),
        },
        Problem {
            name: "fizzbuzz",
            solution: "def fizzbuzz(n):\n    out = []\n    for i in range(1, n + 1):\n        s = ('Fizz' if i % 3 == 0 else '') + ('Buzz' if i % 5 == 0 else '')\n        out.append(s or str(i))\n    return out\n",
            tests: [1usize, 3, 5, 15, 16, 30]
                .iter()
                .map(|&n| {
                    let v: Vec<String> = (1..=n)
                        .map(|i| match (i % 3, i % 5) {
                            (0, 0) => "FizzBuzz".into(),
                            (0, _) => "Fizz".into(),
                            (_, 0) => "Buzz".into(),
                            _ => i.to_string(),
                        })
                        .collect();
                    call(&format!("fizzbuzz({n})"), json!(v))
                })
                .collect(),
        },
        Problem {
            name: "common_prefix",
            solution: "def common_prefix(words):\n    if not words:\n        return ''\n    p = words[0]\n    for w in words[1:]:\n        while not w.startswith(p):\n            p = p[:-1]\n    return p\n",
            tests: vec![
                call("common_prefix(['flower', 'flow', 'flight'])", json!("fl")),
                call("common_prefix(['dog', 'racecar', 'car'])", json!("")),
                call("common_prefix([])", json!("")),
                call("common_prefix(['a'])", json!("a")),
                call("common_prefix(['abc', 'abc'])", json!("abc")),
                call("common_prefix(['prefix', 'pre', 'prepare'])", json!("pre")),
                call("common_prefix(['', 'x'])", json!("")),
            ],
        },
        Problem {
            name: "stdio_sum",
            solution: "import sys\nfor line in sys.stdin:\n    print(sum(map(int, line.split())))\n",
            tests: vec![
                Test::stdio("1 2\n", "3\n"),
                Test::stdio("1 2 3\n4 5\n", "6\n9\n"),
                Test::stdio("-1 1\n", "0\n"),
                Test::stdio("100\n", "100\n"),
                Test::stdio("7 7 7 7\n", "28\n"),
            ],
        },
    ]
}

/// The unsandboxed baseline: same interpreter, same flags, same tests.
struct Bare {
    python: std::path::PathBuf,
    per_test: bool,
}

const BARE_LOOP: &str = "\nimport json as _j, sys as _s\n\
for _e in _j.loads(_s.stdin.read()):\n\
\x20   try:\n\
\x20       print(_j.dumps(eval(_e)))\n\
\x20   except BaseException as _x:\n\
\x20       print(_j.dumps({'__error__': repr(_x)}))\n";

impl Bare {
    fn python(&self, code: &str, stdin: &[u8]) -> Vec<u8> {
        let mut cmd = Command::new(&self.python);
        // A session of its own, as every sandboxed process has: with scheduler autogroups
        // (CONFIG_SCHED_AUTOGROUP) each session is a scheduling group, and a child left in
        // the bench's session would get a smaller CPU share than the sandbox's children on
        // a loaded machine.
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            })
        };
        let mut child = cmd
            .args(["-I", "-S", "-B", "-c", code])
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn python");
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().expect("python").stdout
    }

    /// Runs a problem; returns the number of tests passed.
    fn run(&self, p: &Problem) -> usize {
        let mut passed = 0;
        let calls: Vec<(&String, &Expected)> = p
            .tests
            .iter()
            .filter_map(|t| match t {
                Test::Call { expr, expected } => Some((expr, expected)),
                _ => None,
            })
            .collect();
        let groups: Vec<&[(&String, &Expected)]> = if self.per_test {
            calls.chunks(1).collect()
        } else {
            vec![&calls[..]].into_iter().filter(|c| !c.is_empty()).collect()
        };
        let code = format!("{}{BARE_LOOP}", p.solution);
        for g in groups {
            let exprs: Vec<&String> = g.iter().map(|(e, _)| *e).collect();
            let out = self.python(&code, &serde_json::to_vec(&exprs).unwrap());
            for (line, (_, expected)) in String::from_utf8_lossy(&out).lines().zip(g) {
                let got: Value = serde_json::from_str(line).unwrap_or(Value::Null);
                if let Expected::Json(v) = expected {
                    passed += usize::from(&got == v);
                }
            }
        }
        for t in &p.tests {
            if let Test::Stdio { stdin, expected_stdout, .. } = t {
                let out = self.python(p.solution, stdin.as_bytes());
                passed += usize::from(String::from_utf8_lossy(&out).trim_end() == expected_stdout.trim_end());
            }
        }
        passed
    }
}

#[derive(Default, Clone)]
struct Tally {
    executions: u64,
    busy: Duration,
    latencies: Vec<f64>,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.executions += other.executions;
        self.busy += other.busy;
        self.latencies.extend(other.latencies);
    }
    fn rate(&self) -> f64 {
        self.executions as f64 / self.busy.as_secs_f64()
    }
    fn mean_ms(&self) -> f64 {
        self.latencies.iter().sum::<f64>() / self.latencies.len() as f64 * 1e3
    }
    fn pct_ms(&self, q: f64) -> f64 {
        let mut v = self.latencies.clone();
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * q).round() as usize] * 1e3
    }
}

/// Runs `one(problem)` round-robin over the problems on `threads` threads for `secs`.
fn measure(
    threads: usize,
    secs: f64,
    problems: &[Problem],
    one: &(dyn Fn(&Problem) -> usize + Sync),
) -> Tally {
    let start = Instant::now();
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|w| {
                s.spawn(move || {
                    let mut t = Tally::default();
                    let mut k = w;
                    while start.elapsed().as_secs_f64() < secs {
                        let p = &problems[k % problems.len()];
                        let t0 = Instant::now();
                        let passed = one(p);
                        t.latencies.push(t0.elapsed().as_secs_f64());
                        assert_eq!(passed, p.tests.len(), "{} must pass", p.name);
                        t.executions += 1;
                        k += 1;
                    }
                    t
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut total = Tally { busy: start.elapsed(), ..Tally::default() };
    for t in tallies {
        total.executions += t.executions;
        total.latencies.extend(t.latencies);
    }
    total
}

/// One execution of a problem; returns the number of tests passed.
type Runner<'a> = dyn Fn(&Problem) -> usize + Sync + 'a;

fn run_sandbox(sb: &Sandbox, p: &Problem) -> usize {
    sb.run(p.solution, &p.tests).expect("run").passed
}

fn main() {
    let mut secs = 12.0;
    let mut rounds = 3usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => secs = args.next().and_then(|v| v.parse().ok()).expect("--seconds S"),
            "--rounds" => rounds = args.next().and_then(|v| v.parse().ok()).expect("--rounds R"),
            _ => panic!("usage: sandbox-bench [--seconds S] [--rounds R]"),
        }
    }
    let problems = problems();
    let shared = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    let per_test =
        Sandbox::new(SandboxConfig { process_mode: ProcessMode::PerTest, ..SandboxConfig::default() })
            .unwrap();
    let bare = Bare { python: shared.python().to_path_buf(), per_test: false };
    let bare_per_test = Bare { python: shared.python().to_path_buf(), per_test: true };
    let iso = shared.isolation();
    println!(
        "interpreter {} | isolation: netns={} pidns={} landlock ABI {:?} credentials {:?} | {} rounds, {:.0} s per mode",
        shared.python().display(),
        iso.network_namespace,
        iso.pid_namespace,
        iso.landlock_abi,
        iso.credentials,
        rounds,
        secs
    );
    let n_tests: Vec<String> = problems.iter().map(|p| format!("{} ({})", p.name, p.tests.len())).collect();
    println!("problems: {}", n_tests.join(", "));

    let modes: Vec<(&str, usize, Box<Runner>)> = vec![
        ("bare", 1, Box::new(|p: &Problem| bare.run(p))),
        ("sandbox", 1, Box::new(|p: &Problem| run_sandbox(&shared, p))),
        ("bare/test", 1, Box::new(|p: &Problem| bare_per_test.run(p))),
        ("sandbox/test", 1, Box::new(|p: &Problem| run_sandbox(&per_test, p))),
        ("bare ×2", 2, Box::new(|p: &Problem| bare.run(p))),
        ("sandbox ×2", 2, Box::new(|p: &Problem| run_sandbox(&shared, p))),
    ];
    // Warm-up: page cache, first-run costs.
    for (_, _, f) in &modes {
        for p in &problems {
            f(p);
        }
    }
    // Single thread, paired: every iteration runs each sequential mode once on the same
    // problem, in an order that rotates, so that load drifts hit every mode alike and the
    // per-execution overhead is a mean of paired differences.
    let sequential = 4;
    let mut lat: Vec<Vec<f64>> = vec![Vec::new(); sequential];
    let budget = secs * sequential as f64;
    let start = Instant::now();
    let mut it = 0usize;
    while start.elapsed().as_secs_f64() < budget {
        let p = &problems[it % problems.len()];
        for j in 0..sequential {
            let m = (j + it) % sequential;
            let t0 = Instant::now();
            let passed = (modes[m].2)(p);
            lat[m].push(t0.elapsed().as_secs_f64());
            assert_eq!(passed, p.tests.len(), "{} must pass in {}", p.name, modes[m].0);
        }
        it += 1;
    }
    let mut tallies: Vec<Tally> = lat
        .iter()
        .map(|l| Tally {
            executions: l.len() as u64,
            busy: Duration::from_secs_f64(l.iter().sum()),
            latencies: l.clone(),
        })
        .collect();
    // Two threads: throughput, in interleaved rounds.
    let mut parallel = vec![Tally::default(); modes.len() - sequential];
    for _ in 0..rounds {
        for (i, (_, threads, f)) in modes.iter().enumerate().skip(sequential) {
            parallel[i - sequential].add(measure(*threads, secs / rounds as f64, &problems, f.as_ref()));
        }
    }
    tallies.extend(parallel);
    println!("\n| mode | threads | executions | executions/s | mean ms/execution | p50 ms | p95 ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for ((name, threads, _), t) in modes.iter().zip(&tallies) {
        println!(
            "| {name} | {threads} | {} | {:.1} | {:.2} | {:.2} | {:.2} |",
            t.executions,
            t.rate(),
            t.mean_ms(),
            t.pct_ms(0.5),
            t.pct_ms(0.95)
        );
    }
    let ratio = |a: usize, b: usize| tallies[a].rate() / tallies[b].rate();
    let paired = |a: usize, b: usize| {
        let d: Vec<f64> = lat[a].iter().zip(&lat[b]).map(|(x, y)| (x - y) * 1e3).collect();
        let n = d.len() as f64;
        let mean = d.iter().sum::<f64>() / n;
        let sd = (d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        (mean, 1.96 * sd / n.sqrt())
    };
    println!();
    let (m, ci) = paired(1, 0);
    println!(
        "sandbox (shared) vs bare: {:.3}x the executions/s; overhead {m:+.2} ± {ci:.2} ms per execution (paired, 95% CI, n = {})",
        ratio(1, 0),
        lat[0].len()
    );
    let (m, ci) = paired(3, 2);
    println!("sandbox (per test) vs bare (per test): {:.3}x the executions/s; overhead {m:+.2} ± {ci:.2} ms per execution", ratio(3, 2));
    println!("sandbox (shared) vs sandbox (per test): {:.3}x the executions/s", ratio(1, 3));
    println!("2 threads: sandbox vs bare {:.3}x the executions/s", ratio(5, 4));

    // Per-process overhead: a null execution (one trivial call test, one process each),
    // paired the same way. Its variance is far smaller than a whole suite's.
    let null = Problem { name: "null", solution: "x = 1\n", tests: vec![Test::call("x", json!(1))] };
    let (mut b, mut sbx) = (Vec::new(), Vec::new());
    let start = Instant::now();
    let mut it = 0usize;
    while start.elapsed().as_secs_f64() < secs {
        let bare_first = it & 1 == 0;
        for j in 0..2 {
            let t0 = Instant::now();
            if (j == 0) == bare_first {
                assert_eq!(bare.run(&null), 1);
                b.push(t0.elapsed().as_secs_f64());
            } else {
                assert_eq!(run_sandbox(&shared, &null), 1);
                sbx.push(t0.elapsed().as_secs_f64());
            }
        }
        it += 1;
    }
    let d: Vec<f64> = sbx.iter().zip(&b).map(|(x, y)| (x - y) * 1e3).collect();
    let n = d.len() as f64;
    let mean = d.iter().sum::<f64>() / n;
    let sd = (d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let mut sorted = d.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "null execution (1 process): bare {:.2} ms, sandbox {:.2} ms; overhead {mean:+.2} ± {:.2} ms (median {:+.2} ms, n = {})",
        b.iter().sum::<f64>() / b.len() as f64 * 1e3,
        sbx.iter().sum::<f64>() / sbx.len() as f64 * 1e3,
        1.96 * sd / n.sqrt(),
        sorted[sorted.len() / 2],
        d.len()
    );
}
