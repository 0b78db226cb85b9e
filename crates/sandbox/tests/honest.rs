//! Honest solutions: correct ones pass, partially correct ones get the right fraction, in
//! both process modes and both test forms.

mod common;

use std::time::Duration;

use common::*;
use gristmill_sandbox::{
    Expected, OutputMatch, ProcessMode, Sandbox, SandboxConfig, SandboxError, Test, Verdict,
};
use serde_json::json;

const PRIMES: &str = "def is_prime(n):\n    if n < 2:\n        return False\n    i = 2\n    while i * i <= n:\n        if n % i == 0:\n            return False\n        i += 1\n    return True\n";

fn prime_tests() -> Vec<Test> {
    [(1, false), (2, true), (9, false), (17, true), (97, true)]
        .iter()
        .map(|&(n, p)| Test::call(format!("is_prime({n})"), json!(p)))
        .collect()
}

#[test]
fn correct_solutions_pass() {
    let sb = sandbox();
    let o = sb.run(PRIMES, &prime_tests()).unwrap();
    assert_eq!(o.score, 1.0, "{o:#?}");
    assert_eq!(o.processes, 1, "one interpreter for all call tests");
    assert!(!o.hit_limit());
    assert!(!o.isolation.is_degraded());

    // Structured values, repr comparisons, approximate floats.
    let solution = "def stats(xs):\n    return {'min': min(xs), 'max': max(xs), 'mean': sum(xs) / len(xs), 'sorted': tuple(sorted(xs))}\n\
                    def uniq(xs):\n    return set(xs)\n";
    let tests = [
        Test::call("stats([3, 1, 2])", json!({"max": 3, "min": 1, "mean": 2, "sorted": [1, 2, 3]})),
        Test::call_repr("uniq([2, 1, 2])", "{1, 2}"),
        Test::Call {
            expr: "stats([0.1, 0.2])['mean']".into(),
            expected: Expected::JsonApprox { value: json!(0.15), tolerance: 1e-9 },
        },
    ];
    let o = sb.run(solution, &tests).unwrap();
    assert_eq!(o.score, 1.0, "{o:#?}");

    // Programs on stdin/stdout, with each comparison mode.
    let program = "import sys\nnums = [int(x) for x in sys.stdin.read().split()]\nprint(sum(nums))\nprint(*sorted(nums))\n";
    let tests = [
        Test::stdio("3 1 2\n", "6\n1 2 3\n"),
        Test::stdio("5", "5   \r\n5\n\n").with_matching(OutputMatch::Lines),
        Test::stdio("4 4", "8 4\n4").with_matching(OutputMatch::Tokens),
        Test::stdio("7", "7\n7\n").with_matching(OutputMatch::Exact),
    ];
    let o = sb.run(program, &tests).unwrap();
    assert_eq!(o.score, 1.0, "{o:#?}");
    assert_eq!(o.processes, 4, "one process per stdin/stdout test");
}

#[test]
fn partially_correct_solutions_get_the_right_fraction() {
    let sb = sandbox();
    // Wrong for squares of primes: fails 9 only.
    let sloppy = "def is_prime(n):\n    return n > 1 and all(n % d for d in range(2, int(n ** 0.5)))\n";
    let o = sb.run(sloppy, &prime_tests()).unwrap();
    assert_eq!(
        verdicts(&o),
        [Verdict::Passed, Verdict::Passed, Verdict::WrongAnswer, Verdict::Passed, Verdict::Passed]
    );
    assert_eq!((o.passed, o.score), (4, 0.8));

    // Mixed failures in one suite, in suite order: a call test raises, one returns something
    // JSON cannot encode, a stdio test prints the wrong thing.
    let solution = "import sys\n\
                    def f(x):\n    if x == 0:\n        raise ValueError('zero')\n    if x == 1:\n        return {1, 2}\n    return x * 2\n\
                    if __name__ == '__main__':\n    print(int(input()) * 3)\n";
    let tests = [
        Test::call("f(0)", json!(0)),
        Test::stdio("2\n", "6\n"),
        Test::call("f(1)", json!([1, 2])),
        Test::call("f(5)", json!(10)),
        Test::stdio("2\n", "4\n"),
        Test::call("f(", json!(0)),
    ];
    let o = sb.run(solution, &tests).unwrap();
    assert_eq!(
        verdicts(&o),
        [
            Verdict::RuntimeError,
            Verdict::Passed,
            Verdict::WrongAnswer,
            Verdict::Passed,
            Verdict::WrongAnswer,
            Verdict::RuntimeError
        ],
        "{o:#?}"
    );
    assert!(o.tests[0].detail.starts_with("ValueError: zero"));
    assert!(o.tests[2].detail.contains("not JSON serializable"), "{}", o.tests[2].detail);
    assert!(o.tests[5].detail.starts_with("SyntaxError"), "{}", o.tests[5].detail);
    assert!((o.score - 2.0 / 6.0).abs() < 1e-12);
}

#[test]
fn a_crash_in_one_test_does_not_take_the_others_down() {
    let sb = sandbox();
    let solution = "import ctypes, os\n\
                    def f(x):\n    if x == 1:\n        ctypes.string_at(0)\n    if x == 2:\n        os._exit(3)\n    return x\n";
    let tests: Vec<Test> = (0..5).map(|x| Test::call(format!("f({x})"), json!(x))).collect();
    let o = sb.run(solution, &tests).unwrap();
    assert_eq!(
        verdicts(&o),
        [Verdict::Passed, Verdict::Crashed, Verdict::Crashed, Verdict::Passed, Verdict::Passed],
        "{o:#?}"
    );
    assert_eq!(o.processes, 3);
    assert!(o.tests[1].detail.contains("signal 11"), "{}", o.tests[1].detail);
}

#[test]
fn load_errors_fail_every_call_test() {
    let sb = sandbox();
    let o = sb.run("def add(a, b)\n    return a + b\n", &add_tests()).unwrap();
    assert!(
        o.tests.iter().all(|t| t.verdict == Verdict::RuntimeError && t.detail.contains("SyntaxError")),
        "{o:#?}"
    );
    let o = sb.run("import numpy_that_is_not_there\n", &add_tests()).unwrap();
    assert!(o.tests.iter().all(|t| t.detail.contains("ModuleNotFoundError")), "{o:#?}");
}

#[test]
fn both_process_modes_agree() {
    let per_test =
        Sandbox::new(SandboxConfig { process_mode: ProcessMode::PerTest, ..test_config() }).unwrap();
    let solutions = [
        PRIMES,
        "def is_prime(n):\n    return n in (2, 3, 5, 7)\n",
        "def is_prime(n):\n    raise RuntimeError\n",
    ];
    for s in solutions {
        let shared = sandbox().run(s, &prime_tests()).unwrap();
        let separate = per_test.run(s, &prime_tests()).unwrap();
        assert_eq!(verdicts(&shared), verdicts(&separate), "{s}");
        assert_eq!(separate.processes, prime_tests().len());
    }
    // What per-test mode is for: state does not leak from one test to the next.
    let stateful = "calls = []\ndef f():\n    calls.append(1)\n    return len(calls)\n";
    let tests = [Test::call("f()", json!(1)), Test::call("f()", json!(1))];
    assert_eq!(per_test.run(stateful, &tests).unwrap().score, 1.0);
    assert_eq!(sandbox().run(stateful, &tests).unwrap().score, 0.5);
}

#[test]
fn the_concurrency_limit_blocks_or_refuses() {
    let sb = Sandbox::new(SandboxConfig { max_concurrent: 1, uid_base: 62200, ..test_config() }).unwrap();
    let slow = "import time\ndef f():\n    time.sleep(0.5)\n    return 1\n";
    std::thread::scope(|s| {
        let running = s.spawn(|| sb.run(slow, &[Test::call("f()", json!(1))]).unwrap());
        std::thread::sleep(Duration::from_millis(150));
        assert!(matches!(sb.try_run(ADD, &add_tests()), Err(SandboxError::Busy(1))));
        // `run` waits for the slot instead.
        let waited = sb.run(ADD, &add_tests()).unwrap();
        assert_eq!(waited.score, 1.0);
        assert_eq!(running.join().unwrap().score, 1.0);
    });
    assert_eq!(sb.try_run(ADD, &add_tests()).unwrap().score, 1.0);
}

#[test]
fn concurrent_executions_do_not_interfere() {
    let sb = sandbox();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|k| {
                s.spawn(move || {
                    let solution = format!("def add(a, b):\n    return a + b + {}\n", k % 2);
                    sb.run(&solution, &add_tests()).unwrap().score
                })
            })
            .collect();
        for (k, h) in handles.into_iter().enumerate() {
            assert_eq!(h.join().unwrap(), if k % 2 == 0 { 1.0 } else { 0.0 });
        }
    });
}

#[test]
fn empty_suites_and_bad_configurations_are_errors() {
    let sb = sandbox();
    assert!(matches!(sb.run(ADD, &[]), Err(SandboxError::NoTests)));
    let bad = SandboxConfig { max_concurrent: 0, ..test_config() };
    assert!(matches!(Sandbox::new(bad), Err(SandboxError::Config(_))));
    let missing = SandboxConfig { python: "python-does-not-exist".into(), ..test_config() };
    assert!(matches!(Sandbox::new(missing), Err(SandboxError::Interpreter { .. })));
}

#[test]
fn tests_and_outcomes_round_trip_through_json() {
    let tests =
        vec![Test::call("add(2, 3)", json!(5)), Test::stdio("1\n", "1\n").with_matching(OutputMatch::Tokens)];
    let text = serde_json::to_string(&tests).unwrap();
    assert_eq!(serde_json::from_str::<Vec<Test>>(&text).unwrap(), tests);
    let o = sandbox().run(ADD, &add_tests()).unwrap();
    let back: gristmill_sandbox::Outcome = serde_json::from_str(&serde_json::to_string(&o).unwrap()).unwrap();
    assert_eq!(back.tests.len(), o.tests.len());
    assert_eq!(back.score, o.score);
}

#[test]
fn large_stdin_is_streamed_and_an_unread_stdin_is_harmless() {
    let sb = sandbox();
    // 700 kB in and out at once (more than the socket and pipe buffers, less than the
    // 1 MiB output cap): stdin is written while stdout is read.
    let lines: String = (0..70_000).map(|i| format!("{:09}\n", i)).collect();
    let echo = "import sys\nsys.stdout.write(sys.stdin.read())\n";
    let o =
        sb.run(echo, &[Test::stdio(lines.clone(), lines.clone()).with_matching(OutputMatch::Exact)]).unwrap();
    assert_eq!(verdicts(&o), [Verdict::Passed], "{o:#?}");
    // A program that never reads its input and exits: no SIGPIPE reaches the host.
    let o = sb.run("print('ok')\n", &[Test::stdio(lines, "ok\n")]).unwrap();
    assert_eq!(verdicts(&o), [Verdict::Passed], "{o:#?}");
}
