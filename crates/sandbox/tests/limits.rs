//! The limits and the isolation, checked from inside the child: each configured value is
//! what the solution sees, and each mechanism is in force.

mod common;

use std::time::{Duration, Instant};

use common::*;
use gristmill_sandbox::{CredentialMode, LimitKind, Limits, Sandbox, SandboxConfig, Test, Verdict};
use serde_json::json;

#[test]
fn rlimits_are_the_configured_values() {
    let sb = sandbox();
    let l = test_limits();
    let solution = "import resource as r\n\
                    def lim(name):\n    return list(r.getrlimit(getattr(r, name)))\n";
    // Six tests, so the CPU limit is 1 s × (6 tests + loading) = 7 s, soft and hard.
    let tests = [
        Test::call("lim('RLIMIT_AS')", json!([l.memory_bytes, l.memory_bytes])),
        Test::call("lim('RLIMIT_FSIZE')", json!([l.file_size_bytes, l.file_size_bytes])),
        Test::call("lim('RLIMIT_NPROC')", json!([l.max_processes, l.max_processes])),
        Test::call("lim('RLIMIT_NOFILE')", json!([l.max_open_files, l.max_open_files])),
        Test::call("lim('RLIMIT_CPU')", json!([7, 7])),
        Test::call("lim('RLIMIT_CORE')", json!([0, 0])),
    ];
    let o = sb.run(solution, &tests).unwrap();
    assert_eq!(o.score, 1.0, "{o:#?}");
}

#[test]
fn credentials_namespaces_environment_and_directory() {
    let sb = sandbox();
    let solution = "import os, socket, ctypes\n\
                    def who():\n    return [os.getuid(), os.geteuid(), os.getgid(), os.getgroups()]\n\
                    def pid():\n    return os.getpid()\n\
                    def env():\n    return sorted(os.environ)\n\
                    def home():\n    return os.environ['HOME'] == os.environ['TMPDIR'] == os.getcwd()\n\
                    def interfaces():\n    return [n for _, n in socket.if_nameindex()]\n\
                    def no_new_privs():\n    return ctypes.CDLL(None).prctl(39, 0, 0, 0, 0)\n\
                    def cwd():\n    return os.getcwd()\n\
                    def fds():\n    out = []\n    for fd in range(256):\n        try:\n            os.fstat(fd)\n            out.append(fd)\n        except OSError:\n            pass\n    return out\n\
                    import fcntl, struct\n\
                    def lo(request, flags):\n    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n    try:\n        r = fcntl.ioctl(s.fileno(), request, struct.pack('16sH14s', b'lo', flags, b''))\n        return struct.unpack('16sH14s', r)[1]\n    except OSError as e:\n        return -e.errno\n";
    let uid_base = 61000u32; // the default
    let o = sb
        .run(
            solution,
            &[
                Test::call("pid()", json!(1)),
                Test::call("env()", json!(["HOME", "LANG", "PATH", "TMPDIR"])),
                Test::call("home()", json!(true)),
                Test::call("interfaces()", json!(["lo"])),
                // The loopback is down (SIOCGIFFLAGS: IFF_UP clear) and cannot be brought up
                // (SIOCSIFFLAGS: EPERM, no CAP_NET_ADMIN).
                Test::call("lo(0x8913, 0) & 1", json!(0)),
                Test::call("lo(0x8914, 1)", json!(-1)),
                // stdin, stdout, stderr and the harness's result channel; nothing inherited.
                Test::call("fds()", json!([0, 1, 2, 3])),
                Test::call("no_new_privs()", json!(1)),
                Test::call("who()", json!(null)),
                Test::call("cwd()", json!(null)),
            ],
        )
        .unwrap();
    assert_eq!(o.passed, 8, "{o:#?}");
    // As root: the slot's uid (uid_base + slot); otherwise our own uid inside a user
    // namespace. Never root, no supplementary groups.
    let who: Vec<serde_json::Value> =
        serde_json::from_str(o.tests[8].detail.trim_start_matches("got ")).unwrap();
    let uid = who[0].as_u64().unwrap() as u32;
    match sb.isolation().credentials {
        CredentialMode::DedicatedUid { uid_base: base } => {
            assert_eq!(base, uid_base);
            assert!((uid_base..uid_base + 2).contains(&uid), "{who:?}");
            assert_eq!(who, [json!(uid), json!(uid), json!(uid), json!([])]);
        }
        CredentialMode::UserNamespace => {
            // SAFETY: plain getters.
            let (me, my_gid) = unsafe { (libc::geteuid(), libc::getegid()) };
            assert_ne!(me, 0);
            assert_eq!(who, [json!(me), json!(me), json!(my_gid), json!([])]);
        }
        CredentialMode::Unchanged => panic!("degraded credentials"),
    }
    // The working directory was removed afterwards.
    let cwd: String = serde_json::from_str(o.tests[9].detail.trim_start_matches("got ")).unwrap();
    assert!(cwd.contains("gristmill-sandbox-"), "{cwd}");
    assert!(!std::path::Path::new(&cwd).exists(), "{cwd} was left behind");
}

#[test]
fn landlock_allows_the_interpreter_and_the_working_directory_only() {
    let sb = sandbox();
    let solution = "import os\n\
                    def can_read(p):\n    try:\n        open(p, 'rb').read(1)\n        return True\n    except OSError:\n        return False\n\
                    def can_list(p):\n    try:\n        os.listdir(p)\n        return True\n    except OSError:\n        return False\n\
                    def roundtrip():\n    os.makedirs('a/b')\n    with open('a/b/c', 'w') as f:\n        f.write('ok')\n    os.rename('a/b/c', 'd')\n    return open('d').read()\n";
    let py = format!("{}", sb.python().display());
    let tests = [
        Test::call(format!("can_read({py:?})"), json!(true)),
        Test::call("can_read('/etc/ld.so.cache')", json!(true)),
        Test::call("can_read('/etc/passwd')", json!(false)),
        Test::call("can_read('/etc/hostname')", json!(false)),
        Test::call("can_list('/')", json!(false)),
        Test::call("can_list('/tmp')", json!(false)),
        Test::call("can_list('/proc/self')", json!(false)),
        Test::call("can_list('/work')", json!(false)),
        Test::call("can_list('.')", json!(true)),
        Test::call("roundtrip()", json!("ok")),
    ];
    let o = sb.run(solution, &tests).unwrap();
    assert_eq!(o.score, 1.0, "{o:#?}");
}

#[test]
fn file_size_open_files_and_process_limits_bite() {
    let sb = sandbox();
    let l = test_limits();
    let solution = format!(
        "import os\n\
         def write(n):\n    with open('big', 'wb') as f:\n        f.write(b'x' * n)\n    return os.path.getsize('big')\n\
         def files():\n    return len([open('f%d' % i, 'w') for i in range({})])\n\
         def forks():\n    kids = []\n    for _ in range({}):\n        pid = os.fork()\n        if pid == 0:\n            import time\n            time.sleep(5)\n            os._exit(0)\n        kids.append(pid)\n    return len(kids)\n",
        l.max_open_files,
        l.max_processes,
    );
    let tests = [
        Test::call(format!("write({})", l.file_size_bytes), json!(l.file_size_bytes)),
        Test::call(format!("write({})", l.file_size_bytes + 1), json!(l.file_size_bytes + 1)),
        Test::call(format!("files() - {}", l.max_open_files - 20), json!(20)),
        Test::call("forks()", json!(l.max_processes)),
    ];
    let o = sb.run(&solution, &tests).unwrap();
    assert_eq!(
        verdicts(&o),
        [Verdict::Passed, Verdict::RuntimeError, Verdict::RuntimeError, Verdict::RuntimeError],
        "{o:#?}"
    );
    assert_eq!(o.limits_hit, [LimitKind::FileSize, LimitKind::Processes, LimitKind::OpenFiles], "{o:#?}");
}

#[test]
fn memory_limit_value() {
    let sb = sandbox();
    let l = test_limits();
    let solution = "def alloc(n):\n    return len(bytearray(n))\n";
    let half = l.memory_bytes / 2;
    let o = sb
        .run(
            solution,
            &[
                Test::call(format!("alloc({half})"), json!(half)),
                Test::call(format!("alloc({})", l.memory_bytes), json!(0)),
            ],
        )
        .unwrap();
    assert_eq!(verdicts(&o), [Verdict::Passed, Verdict::MemoryLimit], "{o:#?}");
}

#[test]
fn output_cap_value() {
    let sb = sandbox();
    let cap = test_limits().max_output_bytes as usize;
    let program = "import sys\nn = int(input())\nsys.stdout.write('x' * n)\n";
    let fits = cap - 10;
    let o = sb
        .run(
            program,
            &[Test::stdio(format!("{fits}\n"), "x".repeat(fits)), Test::stdio(format!("{}\n", cap + 1), "")],
        )
        .unwrap();
    assert_eq!(verdicts(&o), [Verdict::Passed, Verdict::OutputLimit], "{o:#?}");
}

#[test]
fn cpu_limit_is_reached_before_a_longer_wall_clock() {
    let limits =
        Limits { wall_time: Duration::from_secs(10), cpu_time: Duration::from_millis(500), ..test_limits() };
    let sb =
        Sandbox::new(SandboxConfig { limits, uid_base: 62300, max_concurrent: 1, ..test_config() }).unwrap();
    let t = Instant::now();
    // Two threads burn CPU: 1 s of CPU (0.5 s × (1 test + loading)) goes in about 0.5 s of
    // wall-clock time, far below the 10 s wall-clock limit.
    let solution = "import threading\ndef burn():\n    while True:\n        pass\n\
                    def add(a, b):\n    threading.Thread(target=burn, daemon=True).start()\n    burn()\n";
    let o = sb.run(solution, &add_tests()[..1]).unwrap();
    assert_eq!(verdicts(&o), [Verdict::Timeout], "{o:#?}");
    assert_eq!(o.limits_hit, [LimitKind::CpuTime], "{o:#?}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let cpu = o.cpu_time.as_secs_f64();
    // (rusage of a killed two-thread process reads a little low.)
    assert!((0.8..1.5).contains(&cpu), "killed at the 1 s limit, not later: {cpu}");
}

#[test]
fn the_total_wall_clock_budget_ends_the_execution() {
    let limits = Limits {
        wall_time: Duration::from_secs(1),
        total_wall_time: Duration::from_millis(1500),
        ..test_limits()
    };
    let sb =
        Sandbox::new(SandboxConfig { limits, uid_base: 62400, max_concurrent: 1, ..test_config() }).unwrap();
    let solution = "import time\ndef f(x):\n    time.sleep(0.6)\n    return x\n";
    let tests: Vec<Test> = (0..5).map(|x| Test::call(format!("f({x})"), json!(x))).collect();
    let t = Instant::now();
    let o = sb.run(solution, &tests).unwrap();
    assert_eq!(
        verdicts(&o),
        [Verdict::Passed, Verdict::Passed, Verdict::Timeout, Verdict::NotRun, Verdict::NotRun],
        "{o:#?}"
    );
    assert!(o.limits_hit.contains(&LimitKind::TotalWallTime));
    assert!(t.elapsed() < Duration::from_millis(2500), "{:?}", t.elapsed());
}

#[test]
fn nothing_is_left_in_the_work_root() {
    let root = open_dir();
    let cfg = SandboxConfig {
        work_root: root.path().to_path_buf(),
        uid_base: 62500,
        max_concurrent: 1,
        ..test_config()
    };
    let sb = Sandbox::new(cfg).unwrap();
    // A solution that leaves files, a fifo and an unreadable, unwritable directory behind.
    let messy = "import os\nos.makedirs('x/y/z')\nopen('x/y/z/f', 'w').write('1')\nos.mkfifo('fifo')\n\
                 os.symlink('/etc/passwd', 'link')\nos.chmod('x/y', 0)\nos.chmod('x', 0)\n\
                 def add(a, b):\n    return a + b\n";
    assert_eq!(sb.run(messy, &add_tests()).unwrap().score, 1.0);
    assert!(std::fs::read_dir(root.path()).unwrap().next().is_none(), "left behind in the work root");
    assert!(std::path::Path::new("/etc/passwd").exists());
}

#[test]
fn the_isolation_report_names_what_is_missing() {
    let r = sandbox().isolation().clone();
    assert!(r.missing().is_empty(), "{r:?}");
    let mut degraded = r.clone();
    degraded.network_namespace = false;
    degraded.landlock_abi = None;
    assert_eq!(
        degraded.missing(),
        [gristmill_sandbox::Mechanism::NetworkNamespace, gristmill_sandbox::Mechanism::Landlock]
    );
    assert!(degraded.is_degraded());
}
