//! Hostile solutions. Each must score below 1 (usually 0), leave the host running with its
//! limits intact (an honest solution passes right after), and leave nothing behind.

mod common;

use std::io::ErrorKind;
use std::net::{TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use common::*;
use gristmill_sandbox::{LimitKind, Sandbox, SandboxConfig, Test, Verdict};
use serde_json::json;

#[test]
fn infinite_loop_times_out_per_test_and_later_tests_still_run() {
    let sb = sandbox();
    let solution =
        "def add(a, b):\n    if a == 2:\n        while True:\n            pass\n    return a + b\n";
    let t = Instant::now();
    let o = sb.run(solution, &add_tests()).unwrap();
    assert_eq!(verdicts(&o), [Verdict::Timeout, Verdict::Passed, Verdict::Passed], "{o:#?}");
    assert!(o.limits_hit.contains(&LimitKind::WallTime));
    assert_eq!(o.processes, 2, "a fresh interpreter continues after the timeout");
    assert!(t.elapsed() < Duration::from_secs(4));
    // At load time: every test times out, in one wall-clock budget.
    let o = sb.run("while True:\n    pass\n", &add_tests()).unwrap();
    assert_eq!(o.score, 0.0);
    assert!(o.tests.iter().all(|r| r.verdict == Verdict::Timeout), "{o:#?}");
    assert_host_ok(sb);
}

#[test]
fn fork_bomb_is_capped_and_fully_killed() {
    // Its own sandbox and uid range, so that any process left with that uid is a leftover.
    let cfg = SandboxConfig { uid_base: 62100, max_concurrent: 1, ..test_config() };
    let sb = Sandbox::new(cfg).unwrap();
    let solution = "import os\ndef add(a, b):\n    while True:\n        try:\n            os.fork()\n        except BaseException:\n            pass\n";
    let o = sb.run(solution, &add_tests()[..1]).unwrap();
    assert_eq!(verdicts(&o), [Verdict::Timeout], "{o:#?}");
    assert!(processes_of_uid(62100).is_empty(), "fork bomb survivors: {:?}", processes_of_uid(62100));
    assert_host_ok(&sb);
    assert!(processes_of_uid(62100).is_empty());
}

#[test]
fn memory_bomb_hits_the_address_space_limit() {
    let sb = sandbox();
    let gradual = "def add(a, b):\n    hog = []\n    while True:\n        hog.append(bytearray(1 << 24))\n";
    let o = sb.run(gradual, &add_tests()).unwrap();
    assert_eq!(o.score, 0.0);
    assert!(o.tests.iter().all(|r| r.verdict == Verdict::MemoryLimit), "{o:#?}");
    assert!(o.limits_hit.contains(&LimitKind::Memory));
    let at_once = "hog = bytearray(1 << 40)\ndef add(a, b):\n    return a + b\n";
    let o = sb.run(at_once, &add_tests()).unwrap();
    assert!(o.tests.iter().all(|r| r.verdict == Verdict::MemoryLimit), "{o:#?}");
    let o = sb.run("hog = bytearray(1 << 40)\n", &[Test::stdio("", "")]).unwrap();
    assert_eq!(verdicts(&o), [Verdict::MemoryLimit], "{o:#?}");
    assert_host_ok(sb);
}

#[test]
fn hundred_megabytes_of_output_are_cut_off() {
    let sb = sandbox();
    let flood =
        "import sys\nfor _ in range(100):\n    sys.stdout.write('x' * (1 << 20))\n    sys.stdout.flush()\n";
    let t = Instant::now();
    let o = sb.run(flood, &[Test::stdio("", "x")]).unwrap();
    assert_eq!(verdicts(&o), [Verdict::OutputLimit], "{o:#?}");
    assert!(o.limits_hit.contains(&LimitKind::Output));
    // In a call test, on stderr this time.
    let flood_fn =
        "import sys\ndef add(a, b):\n    for _ in range(100):\n        sys.stderr.write('y' * (1 << 20))\n";
    let o = sb.run(flood_fn, &add_tests()[..1]).unwrap();
    assert_eq!(verdicts(&o), [Verdict::OutputLimit], "{o:#?}");
    assert!(t.elapsed() < Duration::from_secs(3), "the cap stops the flood early: {:?}", t.elapsed());
    assert_host_ok(sb);
}

#[test]
fn network_connections_never_arrive() {
    let sb = sandbox();
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    tcp.set_nonblocking(true).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_nonblocking(true).unwrap();
    let (tport, uport) = (tcp.local_addr().unwrap().port(), udp.local_addr().unwrap().port());
    let solution = format!(
        "import socket\n\
         def probe():\n\
         \x20   out = []\n\
         \x20   try:\n\
         \x20       socket.create_connection(('127.0.0.1', {tport}), timeout=0.5)\n\
         \x20       out.append('tcp connected')\n\
         \x20   except OSError as e:\n\
         \x20       out.append('tcp: ' + str(e))\n\
         \x20   try:\n\
         \x20       s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         \x20       s.sendto(b'leak', ('127.0.0.1', {uport}))\n\
         \x20       out.append('udp sent')\n\
         \x20   except OSError as e:\n\
         \x20       out.append('udp: ' + str(e))\n\
         \x20   out.append([n for _, n in socket.if_nameindex()])\n\
         \x20   return out\n"
    );
    let o = sb
        .run(&solution, &[Test::call("probe()", json!(["tcp connected", "udp sent", ["lo", "eth0"]]))])
        .unwrap();
    assert_eq!(o.score, 0.0);
    let detail = &o.tests[0].detail;
    assert!(detail.contains("tcp: "), "{detail}");
    assert!(detail.contains("udp: "), "{detail}");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        tcp.accept().map(|_| ()).unwrap_err().kind(),
        ErrorKind::WouldBlock,
        "a TCP connection arrived"
    );
    let mut buf = [0u8; 16];
    assert_eq!(
        udp.recv_from(&mut buf).map(|_| ()).unwrap_err().kind(),
        ErrorKind::WouldBlock,
        "a datagram arrived"
    );
    assert_host_ok(sb);
}

#[test]
fn writing_outside_the_working_directory_fails() {
    let sb = sandbox();
    let open = open_dir();
    let m = marker("escape");
    let targets = [open.path().join(&m), std::env::temp_dir().join(&m), Path::new("/dev/shm").join(&m)];
    let list: Vec<String> = targets.iter().map(|p| py_str(p)).collect();
    let solution = format!(
        "import os\n\
         def escape():\n\
         \x20   done = []\n\
         \x20   for p in [{}]:\n\
         \x20       try:\n\
         \x20           with open(p, 'w') as f:\n\
         \x20               f.write('x')\n\
         \x20           done.append(p)\n\
         \x20       except OSError as e:\n\
         \x20           pass\n\
         \x20   for p in ['/etc/gm-sandbox-test', '../gm-sandbox-test', '/usr/gm-sandbox-test']:\n\
         \x20       try:\n\
         \x20           os.mkdir(p)\n\
         \x20           done.append(p)\n\
         \x20       except OSError:\n\
         \x20           pass\n\
         \x20   with open('inside.txt', 'w') as f:\n\
         \x20       f.write('fine')\n\
         \x20   return done\n",
        list.join(", ")
    );
    let o = sb.run(&solution, &[Test::call("escape()", json!(list))]).unwrap();
    assert_eq!(o.score, 0.0);
    assert_eq!(o.tests[0].detail, "got []", "every write outside must fail, the one inside succeed");
    for p in &targets {
        assert!(!p.exists(), "{} was written", p.display());
    }
    assert!(!Path::new("/etc/gm-sandbox-test").exists() && !Path::new("/usr/gm-sandbox-test").exists());
    assert_host_ok(sb);
}

use std::path::Path;

#[test]
fn reading_the_expected_answers_fails() {
    let sb = sandbox();
    // The task's test file, world-readable: only the sandbox stands in the way.
    let open = open_dir();
    let answers = open.path().join("tests.json");
    std::fs::write(&answers, r#"{"2,3": 5, "-7,7": 0, "10,32": 42}"#).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&answers, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let cheat = format!(
        "import json\ndef add(a, b):\n    return json.load(open({}))['%d,%d' % (a, b)]\n",
        py_str(&answers)
    );
    let o = sb.run(&cheat, &add_tests()).unwrap();
    assert_eq!(o.score, 0.0, "{o:#?}");
    assert!(o
        .tests
        .iter()
        .all(|t| t.verdict == Verdict::RuntimeError && t.detail.contains("PermissionError")));
    // The same as a program printing the expected output.
    let printer = format!("print(open({}).read())\n", py_str(&answers));
    let o = sb.run(&printer, &[Test::stdio("", r#"{"2,3": 5, "-7,7": 0, "10,32": 42}"#)]).unwrap();
    assert_eq!(verdicts(&o), [Verdict::RuntimeError], "{o:#?}");
    // Nor can it find the expected value anywhere in its own memory, stdin or environment:
    // the harness never received it.
    let sentinel = marker("sentinel");
    let search = "import gc, os, re, sys\n\
        def walk(o, depth, out, seen):\n\
        \x20   if isinstance(o, (str, bytes)):\n\
        \x20       out.append(o if isinstance(o, str) else o.decode('latin-1'))\n\
        \x20   elif depth < 12 and id(o) not in seen and isinstance(o, (dict, list, tuple)):\n\
        \x20       seen.add(id(o))\n\
        \x20       for v in list(o.values() if isinstance(o, dict) else o):\n\
        \x20           walk(v, depth + 1, out, seen)\n\
        def find():\n\
        \x20   out, seen = [sys.stdin.read()] + [k + '=' + v for k, v in os.environ.items()], set()\n\
        \x20   roots = [o for o in gc.get_objects() if isinstance(o, (dict, list, tuple))]\n\
        \x20   f = sys._getframe()\n\
        \x20   while f is not None:\n\
        \x20       roots.append(dict(f.f_locals))\n\
        \x20       f = f.f_back\n\
        \x20   seen.add(id(roots))\n\
        \x20   for r in roots:\n\
        \x20       walk(r, 0, out, seen)\n\
        \x20   for s in out:\n\
        \x20       m = re.search(r'gmsbx-sentinel-[0-9]+-[0-9]+', s)\n\
        \x20       if m:\n\
        \x20           return m.group(0)\n\
        \x20   return 'not found'\n";
    let o = sb.run(search, &[Test::call("find()", json!(sentinel))]).unwrap();
    assert_eq!(o.tests[0].detail, "got \"not found\"", "{o:#?}");
    // Control: the same search does find what the child *is* sent (here, a comment in the
    // test expression), so the search above would have found an expected value.
    let o = sb.run(search, &[Test::call(format!("find()  # {sentinel}"), json!(sentinel))]).unwrap();
    assert_eq!(o.tests[0].verdict, Verdict::Passed, "control: {o:#?}");
    // /proc (the host's memory and environment) is unreadable.
    let host = std::process::id();
    let proc = format!("def peek():\n    return open('/proc/{host}/environ', 'rb').read().decode()\n");
    let o = sb.run(&proc, &[Test::call("peek()", json!("x"))]).unwrap();
    assert_eq!(verdicts(&o), [Verdict::RuntimeError], "{o:#?}");
    assert_host_ok(sb);
}

#[test]
fn exiting_before_the_tests_run_fails_every_test() {
    let sb = sandbox();
    for early in [
        "import sys\nsys.exit(0)\n",
        "import os\nos._exit(0)\n",
        "raise SystemExit(0)\n",
        "import ctypes\nctypes.string_at(0)\n",
    ] {
        let solution = format!("{early}{ADD}");
        let o = sb.run(&solution, &add_tests()).unwrap();
        assert_eq!(o.score, 0.0, "{early}: {o:#?}");
        assert!(
            o.tests.iter().all(|t| matches!(t.verdict, Verdict::RuntimeError | Verdict::Crashed)),
            "{o:#?}"
        );
    }
    // Exiting inside a test fails that test only.
    let o = sb
        .run(
            "import sys\ndef add(a, b):\n    if a == 2:\n        sys.exit(0)\n    return a + b\n",
            &add_tests(),
        )
        .unwrap();
    assert_eq!(verdicts(&o), [Verdict::RuntimeError, Verdict::Passed, Verdict::Passed], "{o:#?}");
    let o = sb
        .run(
            "import os\ndef add(a, b):\n    if a == 2:\n        os._exit(0)\n    return a + b\n",
            &add_tests(),
        )
        .unwrap();
    assert_eq!(verdicts(&o), [Verdict::Crashed, Verdict::Passed, Verdict::Passed], "{o:#?}");
    // A program that exits 0 without printing fails its stdin/stdout test.
    let o = sb.run("import sys\nsys.exit(0)\nprint(6)\n", &[Test::stdio("1 2 3\n", "6\n")]).unwrap();
    assert_eq!(verdicts(&o), [Verdict::WrongAnswer]);
    assert_host_ok(sb);
}

#[test]
fn monkeypatching_the_harness_cannot_make_a_pass() {
    let sb = sandbox();
    let attacks = [
        // Make every value serialize to a "pass".
        "import json\njson.encoder.JSONEncoder.encode = lambda self, o: 'true'\ndef add(a, b):\n    return None\n",
        "import builtins\nbuiltins.repr = lambda o: 'True'\nbuiltins.eval = lambda *a, **k: 'PASS'\nbuiltins.compile = lambda *a, **k: None\n",
        // Write frames of its own: without the nonce, and with it (found in the harness's
        // frame) claiming values it does not know.
        "import os\nos.write(3, b'0 V 0 4\\ntrue')\n",
        "import os\nos.write(3, b'garbage that is no frame\\n')\ndef add(a, b):\n    return a + b\n",
        "import os, sys\n\
         f = sys._getframe(1)\n\
         nonce = f.f_locals['nonce']\n\
         tests = f.f_locals['request']['tests']\n\
         out = [b'R -1 0\\n'] + [b'S %d 0\\n' % t['i'] for t in tests[:1]]\n\
         for t in tests:\n\
         \x20   out.append(b'V %d 4\\ntrue' % t['i'])\n\
         os.write(3, b''.join(nonce + b' ' + x for x in out))\n\
         os._exit(0)\n",
        // Replace the channel: close fd 3, or point it at /dev/null.
        "import os\nos.close(3)\ndef add(a, b):\n    return a + b\n",
        "import os\nos.dup2(os.open('/dev/null', os.O_WRONLY), 3)\ndef add(a, b):\n    return a + b\n",
        // Print what looks like results on stdout.
        "print('all tests passed')\nimport sys\nsys.stdout.flush()\ndef add(a, b):\n    return 'passed'\n",
    ];
    for attack in attacks {
        let o = sb.run(attack, &add_tests()).unwrap();
        assert_eq!(o.score, 0.0, "attack scored: {attack}\n{o:#?}");
    }
    assert_host_ok(sb);
}

#[test]
fn catching_every_exception_and_ignoring_signals_does_not_help() {
    let sb = sandbox();
    let solution = "import signal, sys, atexit\n\
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU, signal.SIGALRM, signal.SIGUSR1):\n\
        \x20   signal.signal(s, signal.SIG_IGN)\n\
        sys.excepthook = lambda *a: None\n\
        atexit.register(lambda: print('5'))\n\
        def add(a, b):\n\
        \x20   while True:\n\
        \x20       try:\n\
        \x20           while True:\n\
        \x20               pass\n\
        \x20       except BaseException:\n\
        \x20           pass\n";
    let o = sb.run(solution, &add_tests()[..2]).unwrap();
    assert_eq!(verdicts(&o), [Verdict::Timeout, Verdict::Timeout], "{o:#?}");
    // Swallowing SystemExit/KeyboardInterrupt raised by the tests' own code.
    let swallow = "def add(a, b):\n    try:\n        raise KeyboardInterrupt\n    except BaseException:\n        return None\n";
    let o = sb.run(swallow, &add_tests()).unwrap();
    assert!(o.tests.iter().all(|t| t.verdict == Verdict::WrongAnswer), "{o:#?}");
    // An object that claims to equal everything is compared by its serialization.
    let liar = "class Eq:\n    def __eq__(self, o):\n        return True\n    def __repr__(self):\n        return '5'\ndef add(a, b):\n    return Eq()\n";
    let o = sb.run(liar, &add_tests()).unwrap();
    assert_eq!(o.score, 0.0, "{o:#?}");
    assert_host_ok(sb);
}

#[test]
fn background_children_are_killed() {
    let sb = sandbox();
    let m = marker("daemon");
    let spawner = format!(
        "import subprocess, sys, os\n\
         subprocess.Popen([sys.executable, '-c', 'import time\\ntime.sleep(30)  # {m}'], start_new_session=True,\n\
         \x20                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n\
         if os.fork() == 0:\n\
         \x20   os.setsid()\n\
         \x20   if os.fork() == 0:\n\
         \x20       os.execv(sys.executable, [sys.executable, '-c', 'import time\\ntime.sleep(30)  # {m}'])\n\
         \x20   os._exit(0)\n\
         import time\n\
         time.sleep(0.2)\n\
         os._exit(0)\n"
    );
    let o = sb.run(&spawner, &add_tests()).unwrap();
    assert_eq!(o.score, 0.0);
    assert!(processes_with(&m).is_empty(), "background children survived: {:?}", processes_with(&m));
    // The same from a program, which returns normally and keeps its stdout open in the child.
    let program = format!(
        "import subprocess, sys\n\
         subprocess.Popen([sys.executable, '-c', 'import time\\ntime.sleep(30)  # {m}'], start_new_session=True)\n\
         print(6)\n"
    );
    let t = Instant::now();
    let o = sb.run(&program, &[Test::stdio("", "6")]).unwrap();
    assert_eq!(verdicts(&o), [Verdict::Passed], "{o:#?}");
    assert!(t.elapsed() < Duration::from_secs(1), "the parent did not wait for the child's stdout");
    assert!(processes_with(&m).is_empty(), "background children survived: {:?}", processes_with(&m));
    assert_host_ok(sb);
}

#[test]
fn signalling_the_host_fails() {
    let sb = sandbox();
    let host = std::process::id();
    let solution = format!(
        "import os, signal\n\
         def attack():\n\
         \x20   out = []\n\
         \x20   for pid in ({host}, os.getppid(), -1, 0):\n\
         \x20       try:\n\
         \x20           os.kill(pid, signal.SIGKILL)\n\
         \x20           out.append(pid)\n\
         \x20       except OSError as e:\n\
         \x20           out.append(e.errno)\n\
         \x20   return 'survived'\n"
    );
    let o = sb.run(&solution, &[Test::call("attack()", json!("dead"))]).unwrap();
    assert_eq!(o.score, 0.0);
    assert_host_ok(sb);
}
