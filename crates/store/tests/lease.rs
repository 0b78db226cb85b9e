//! Run leases: one trainer per run, with real child processes where the rule is about
//! processes.
//!
//! The child processes are this test executable itself, started with `GRISTMILL_LEASE_CHILD`
//! set: the test `child_holder` then opens the store, acquires the lease and holds it until it
//! is killed (run alone, without the variable, it does nothing).

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use gristmill_store::{
    Acquired, LeaseHolder, NewRun, RunId, RunKind, RunStatus, StaleReason, Store, StoreError,
};
use serde_json::json;

use common::TempDb;

const CHILD_DB: &str = "GRISTMILL_LEASE_CHILD";
const CHILD_RUN: &str = "GRISTMILL_LEASE_CHILD_RUN";
/// Set: the child returns as soon as it holds the lease (instead of holding it until killed).
const CHILD_EXIT: &str = "GRISTMILL_LEASE_CHILD_EXIT";

/// A child process holding the lease of a run; killed (and reaped) on drop.
struct Holder {
    child: Child,
}

impl Holder {
    /// Starts a child that acquires the lease of `run` in `db` and holds it; returns once it
    /// holds it.
    fn spawn(db: &Path, run: RunId) -> Holder {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["child_holder", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_DB, db)
            .env(CHILD_RUN, run.0.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        loop {
            match lines.next() {
                // The harness prints `test child_holder ... ` without a newline before running
                // the test, so the marker ends a line rather than starting one.
                Some(Ok(line)) if line.contains("LEASED") => break,
                Some(Ok(_)) => continue, // the harness's own lines
                other => {
                    let status = child.wait().unwrap();
                    panic!("the child exited ({status}) before holding the lease: {other:?}");
                }
            }
        }
        Holder { child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then reap it (an unreaped child is a zombie, which still has its pid).
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The child side (see the file docs).
#[test]
fn child_holder() {
    let Ok(db) = std::env::var(CHILD_DB) else { return };
    let run = RunId(std::env::var(CHILD_RUN).unwrap().parse().unwrap());
    let mut store = Store::open(db).unwrap();
    store.acquire_lease(run, &LeaseHolder::this_process()).unwrap();
    store.put_step_metrics(run, 0, &[("gold", 0.5)]).unwrap();
    println!("LEASED pid={}", std::process::id());
    if std::env::var_os(CHILD_EXIT).is_some() {
        return;
    }
    // Hold it, heartbeating like a trainer at its checkpoints, until killed (with a bound, so
    // a parent that dies without killing us leaves no process behind for long).
    for _ in 0..600 {
        std::thread::sleep(Duration::from_millis(100));
        store.heartbeat(run).unwrap();
    }
}

/// A store with a spec and a run whose creator (this handle) released its lease, as a killed
/// trainer's run looks once its lease is taken up by nobody.
fn store_with_free_run(db: &Path) -> (Store, RunId) {
    let mut store = Store::open(db).unwrap();
    store.put_spec("5eed", "addition", "name = 'addition'\n").unwrap();
    let run = store.create_run(&NewRun::new(RunKind::Train, "5eed", 7, 100)).unwrap();
    store.release_lease(run).unwrap();
    assert_eq!(store.lease(run).unwrap(), None);
    (store, run)
}

/// A holder standing for a process on another machine.
fn foreign_holder() -> LeaseHolder {
    LeaseHolder {
        pid: 4242,
        host: "elsewhere.invalid".into(),
        nonce: "0123456789abcdef0123456789abcdef".into(),
        boot_id: None,
        start_ticks: None,
    }
}

#[test]
fn a_second_holder_is_refused_at_once_naming_the_first_holders_pid_and_host() {
    let db = TempDb::new("second");
    let (mut store, run) = store_with_free_run(db.path());
    let first = Holder::spawn(db.path(), run);

    // The second `resume`: refused before it trains a single step.
    let err = store.acquire_lease(run, &LeaseHolder::this_process()).unwrap_err();
    let me = LeaseHolder::this_process();
    match &err {
        StoreError::LeaseHeld { run: r, holder, heartbeat_age_ms } => {
            assert_eq!((*r, holder.pid, holder.host.as_str()), (run, first.pid(), me.host.as_str()));
            assert!(*heartbeat_age_ms >= 0 && *heartbeat_age_ms < 60_000, "{heartbeat_age_ms}");
        }
        other => panic!("expected LeaseHeld, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&format!("pid {}", first.pid())) && msg.contains(&me.host), "{msg}");
    assert!(msg.contains(&format!("run {run}")), "{msg}");
    // Refusing changed nothing: the child still holds it.
    assert_eq!(store.lease(run).unwrap().unwrap().holder.pid, first.pid());
}

#[test]
fn writes_without_the_lease_are_refused_and_write_nothing() {
    let db = TempDb::new("writes");
    let (mut store, run) = store_with_free_run(db.path());
    let holder = Holder::spawn(db.path(), run);

    let held_by_child = |err: StoreError, action: &str| match &err {
        StoreError::LeaseNotHeld { run: r, action: a, holder: Some(h) } => {
            assert_eq!((*r, *a, h.pid), (run, action, holder.pid()), "{err}");
            assert!(err.to_string().contains(&format!("pid {}", holder.pid())), "{err}");
        }
        other => panic!("{action}: expected LeaseNotHeld, got {other:?}"),
    };
    held_by_child(store.put_step_metrics(run, 1, &[("gold", 1.0)]).unwrap_err(), "given step metrics");
    held_by_child(store.put_checkpoint(run, 1, b"state", "ab").unwrap_err(), "given a checkpoint");
    held_by_child(store.set_progress(run, 1).unwrap_err(), "given progress");
    held_by_child(store.finish_run(run, "ab", &json!({})).unwrap_err(), "marked finished");
    held_by_child(store.fail_run(run, "boom").unwrap_err(), "marked failed");
    held_by_child(store.stop_run(run).unwrap_err(), "marked stopped");
    held_by_child(store.heartbeat(run).unwrap_err(), "given a heartbeat");
    held_by_child(store.release_lease(run).unwrap_err(), "released");
    held_by_child(
        store.prune_checkpoints(run, std::num::NonZeroUsize::MIN).unwrap_err(),
        "pruned of checkpoints",
    );

    // Nothing of it landed; the child's own metric did.
    let metrics: Vec<u64> = store.step_metrics(run).unwrap().iter().map(|m| m.step).collect();
    assert_eq!(metrics, vec![0]);
    let record = store.run(run).unwrap();
    assert_eq!((record.status, record.steps_done), (RunStatus::Running, 0));
    assert!(store.checkpoint_steps(run).unwrap().is_empty());
    drop(holder);
}

#[test]
fn a_killed_holders_lease_is_taken_over() {
    let db = TempDb::new("killed");
    let (mut store, run) = store_with_free_run(db.path());
    let holder = Holder::spawn(db.path(), run);
    let pid = holder.pid();
    assert!(matches!(
        store.acquire_lease(run, &LeaseHolder::this_process()),
        Err(StoreError::LeaseHeld { .. })
    ));

    holder.kill();
    let me = LeaseHolder::this_process();
    match store.acquire_lease(run, &me).unwrap() {
        Acquired::TookOver { previous, reason } => {
            assert_eq!((previous.run, previous.holder.pid), (run, pid));
            assert_eq!(reason, StaleReason::ProcessGone);
        }
        other => panic!("expected a takeover, got {other:?}"),
    }
    assert_eq!(store.lease(run).unwrap().unwrap().holder, me);
    // Now this handle trains the run.
    store.put_step_metrics(run, 1, &[("gold", 0.75)]).unwrap();
    store.put_checkpoint(run, 1, b"state", "ab").unwrap();
    store.finish_run(run, "ab", &json!({})).unwrap();
    assert_eq!(store.lease(run).unwrap(), None, "finishing releases the lease");
}

#[test]
fn a_holder_that_exited_without_ending_its_run_is_taken_over() {
    let db = TempDb::new("exited");
    let (mut store, run) = store_with_free_run(db.path());
    // A process that leases the run and returns from main without ending or releasing it.
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["child_holder", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DB, db.path())
        .env(CHILD_RUN, run.0.to_string())
        .env(CHILD_EXIT, "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let left = store.lease(run).unwrap().expect("the lease row outlives its process");
    assert_ne!(left.holder.pid, std::process::id());
    assert!(matches!(
        store.acquire_lease(run, &LeaseHolder::this_process()).unwrap(),
        Acquired::TookOver { reason: StaleReason::ProcessGone, .. }
    ));
}

#[cfg(target_os = "linux")]
#[test]
fn a_pid_now_used_by_another_process_is_not_mistaken_for_the_holder() {
    let db = TempDb::new("reused");
    let (mut store, run) = store_with_free_run(db.path());
    // The recorded holder had this process's pid but started at another time: that process is
    // gone and its pid was reused (by us).
    let me = LeaseHolder::this_process();
    let earlier =
        LeaseHolder { nonce: "feed".repeat(8), start_ticks: me.start_ticks.map(|t| t + 1), ..me.clone() };
    let mut other_handle = Store::open(db.path()).unwrap();
    assert_eq!(other_handle.acquire_lease(run, &earlier).unwrap(), Acquired::New);
    assert!(matches!(
        store.acquire_lease(run, &me).unwrap(),
        Acquired::TookOver { reason: StaleReason::PidReused, .. }
    ));
    // The same pid with the same start time is the holder itself, alive.
    let twin = LeaseHolder { nonce: "beef".repeat(8), ..me.clone() };
    assert!(matches!(other_handle.acquire_lease(run, &twin), Err(StoreError::LeaseHeld { .. })));
}

#[test]
fn a_foreign_hosts_lease_is_taken_over_once_its_heartbeat_expires() {
    let db = TempDb::new("foreign");
    let (mut store, run) = store_with_free_run(db.path());
    let far = foreign_holder();
    let mut far_handle = Store::open(db.path()).unwrap();
    assert_eq!(far_handle.acquire_lease(run, &far).unwrap(), Acquired::New);
    far_handle.put_step_metrics(run, 0, &[("gold", 0.5)]).unwrap();

    store.set_lease_timeout(Duration::from_millis(400));
    assert_eq!(store.lease_timeout(), Duration::from_millis(400));
    // Its pid means nothing here: only the heartbeat tells, and it is fresh.
    let err = store.acquire_lease(run, &LeaseHolder::this_process()).unwrap_err();
    assert!(err.to_string().contains("pid 4242 on host elsewhere.invalid"), "{err}");
    // It keeps heartbeating (a write renews the heartbeat as well) past one timeout …
    for step in 1..=3 {
        std::thread::sleep(Duration::from_millis(200));
        if step == 2 {
            far_handle.put_step_metrics(run, 1, &[("gold", 0.6)]).unwrap();
        } else {
            far_handle.heartbeat(run).unwrap();
        }
        assert!(matches!(
            store.acquire_lease(run, &LeaseHolder::this_process()),
            Err(StoreError::LeaseHeld { .. })
        ));
    }
    // … then goes silent.
    std::thread::sleep(Duration::from_millis(600));
    match store.acquire_lease(run, &LeaseHolder::this_process()).unwrap() {
        Acquired::TookOver { previous, reason: StaleReason::HeartbeatExpired { age_ms } } => {
            assert_eq!(previous.holder, far);
            assert!(age_ms > 400, "{age_ms}");
        }
        other => panic!("expected a heartbeat takeover, got {other:?}"),
    }
    // The old holder, should it come back, has lost the lease and learns so at its next write.
    let err = far_handle.put_step_metrics(run, 2, &[("gold", 0.7)]).unwrap_err();
    match &err {
        StoreError::LeaseNotHeld { holder: Some(h), .. } => assert_eq!(**h, LeaseHolder::this_process()),
        other => panic!("expected LeaseNotHeld, got {other:?}"),
    }
    assert!(matches!(far_handle.heartbeat(run), Err(StoreError::LeaseNotHeld { .. })));
    store.put_step_metrics(run, 2, &[("gold", 0.8)]).unwrap();
}

#[test]
fn acquiring_again_renews_and_ending_a_run_releases() {
    let mut store = Store::open_in_memory().unwrap();
    store.put_spec("5eed", "s", "").unwrap();
    let me = LeaseHolder::this_process();
    for end in ["finish", "fail", "stop"] {
        let run = store.create_run(&NewRun::new(RunKind::Train, "5eed", 7, 10)).unwrap();
        let lease = store.lease(run).unwrap().expect("the creator holds the lease");
        assert_eq!((lease.run, &lease.holder), (run, &me));
        assert!(lease.heartbeat_at_ms >= lease.acquired_at_ms);
        std::thread::sleep(Duration::from_millis(3));
        assert_eq!(store.acquire_lease(run, &me).unwrap(), Acquired::Renewed);
        let renewed = store.lease(run).unwrap().unwrap();
        assert_eq!(renewed.acquired_at_ms, lease.acquired_at_ms);
        assert!(renewed.heartbeat_at_ms > lease.heartbeat_at_ms, "{renewed:?} vs {lease:?}");
        match end {
            "finish" => store.finish_run(run, "ab", &json!({})).unwrap(),
            "fail" => store.fail_run(run, "boom").unwrap(),
            _ => store.stop_run(run).unwrap(),
        }
        assert_eq!(store.lease(run).unwrap(), None, "{end}");
        if end == "stop" {
            // A stopped run is paused: leasing it takes it up again, as a new lease.
            assert_eq!(store.acquire_lease(run, &me).unwrap(), Acquired::New);
            assert_eq!(store.run(run).unwrap().status, gristmill_store::RunStatus::Running);
            store.finish_run(run, "ab", &json!({})).unwrap();
        }
        // An ended run is not trained again: refused at once, whoever asks.
        let err = store.acquire_lease(run, &me).unwrap_err();
        assert!(matches!(err, StoreError::NotRunning { action: "leased for training", .. }), "{err:?}");
        // Its checkpoints may still be pruned (nobody trains it).
        store.prune_checkpoints(run, std::num::NonZeroUsize::MIN).unwrap();
    }
    assert!(matches!(store.acquire_lease(RunId(999), &me), Err(StoreError::RunNotFound(RunId(999)))));
    assert!(matches!(store.lease(RunId(999)), Err(StoreError::RunNotFound(_))));
}

#[test]
fn a_released_lease_must_be_acquired_again_before_writing() {
    let mut store = Store::open_in_memory().unwrap();
    store.put_spec("5eed", "s", "").unwrap();
    let run = store.create_run(&NewRun::new(RunKind::Train, "5eed", 7, 10)).unwrap();
    store.release_lease(run).unwrap();
    store.release_lease(run).unwrap(); // nobody holds it: nothing to do
    let err = store.put_step_metrics(run, 0, &[("gold", 1.0)]).unwrap_err();
    assert!(matches!(err, StoreError::LeaseNotHeld { holder: None, .. }), "{err:?}");
    assert!(err.to_string().contains("nobody holds it"), "{err}");
    assert_eq!(store.acquire_lease(run, &LeaseHolder::this_process()).unwrap(), Acquired::New);
    store.put_step_metrics(run, 0, &[("gold", 1.0)]).unwrap();
}

#[test]
fn a_lease_acquired_in_a_failed_batch_is_not_held() {
    let mut store = Store::open_in_memory().unwrap();
    store.put_spec("5eed", "s", "").unwrap();
    let run = store.create_run(&NewRun::new(RunKind::Train, "5eed", 7, 10)).unwrap();
    store.release_lease(run).unwrap();
    let err = store
        .batch(|b| {
            b.acquire_lease(run, &LeaseHolder::this_process())?;
            b.put_step_metrics(run, 0, &[("gold", f64::NAN)])
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::NonFinite { .. }));
    assert_eq!(store.lease(run).unwrap(), None);
    assert!(matches!(store.set_progress(run, 1), Err(StoreError::LeaseNotHeld { .. })));
}

#[test]
fn of_many_racing_acquirers_exactly_one_wins() {
    let db = TempDb::new("race");
    let (store, run) = store_with_free_run(db.path());
    drop(store);
    let me = LeaseHolder::this_process();
    let n = 6;
    let barrier = Arc::new(Barrier::new(n));
    let outcomes: Vec<Result<Acquired, StoreError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let barrier = Arc::clone(&barrier);
                let path = db.path().to_path_buf();
                // Holders alive by every test (this process), told apart by their nonces.
                let holder = LeaseHolder { nonce: format!("{i:032x}"), ..me.clone() };
                s.spawn(move || {
                    let mut store = Store::open(&path).unwrap();
                    barrier.wait();
                    store.acquire_lease(run, &holder)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won = outcomes.iter().filter(|o| matches!(o, Ok(Acquired::New))).count();
    let refused = outcomes.iter().filter(|o| matches!(o, Err(StoreError::LeaseHeld { .. }))).count();
    assert_eq!((won, refused), (1, n - 1), "{outcomes:?}");
}
