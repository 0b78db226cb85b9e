//! The run as a library type: the ledger fed by gristmill's own trainer, checkpoints that
//! resume to the same bits, and checkpoints of another format refused by name.

use gristmill_core::digest::content_hash;
use gristmill_core::spec::Overrides;
use gristmill_run::{Checkpoint, CheckpointError, NoSink, Run, RunError, CHECKPOINT_FORMAT};
use gristmill_testkit::{example, fixture, load, load_with, with_policy};

/// The README example, 100 steps: the run digest covers every step's parameters, rewards and
/// metric and the whole in-run credit table, and is the digest `gristmill run` prints. It is
/// the same number the code before the run type existed printed: the ledger fed through the
/// seam reproduces the old credit table bit for bit.
#[test]
fn the_readme_example_reproduces_its_digest_through_the_ledger() {
    let mut run = Run::new(load(&example("learn.toml"))).unwrap();
    run.train(100, &mut NoSink, &mut |_| std::ops::ControlFlow::Continue(())).unwrap();
    assert_eq!(run.digest(), "e49a79820e70f25e8141cfddd1a79ce50670d0a451f66e9bf451ea726a81a133");
    let ledger = run.ledger().unwrap();
    assert!(ledger.residual().abs() < 1e-9, "{}", ledger.residual());
    assert_eq!(ledger.rows(), ["gold", "digits", "curriculum", "hint"]);
}

#[test]
fn a_checkpointed_run_resumes_to_the_same_bits() {
    for policy in [r#"kind = "loglinear""#, "kind = \"mlp\"\nparams = { hidden = 8, optimizer = \"adam\" }"] {
        let text = with_policy(&fixture("rich"), policy);
        let env = || load_with(&text, &Overrides { steps: Some(12), ..Default::default() });
        let mut straight = Run::new(env()).unwrap();
        straight.advance(12).unwrap();
        let mut first = Run::new(env()).unwrap();
        first.advance(5).unwrap();
        let bytes = first.checkpoint().encode();
        let config = gristmill_learn::TrainConfig::of(&env().spec).unwrap();
        let mut resumed = Run::resume(env(), config, &bytes).unwrap();
        assert_eq!(resumed.trainer().steps_done(), 5);
        resumed.advance(7).unwrap();
        assert_eq!(resumed.digest(), straight.digest(), "{policy}");
        assert_eq!(resumed.ledger(), straight.ledger(), "{policy}");
        assert_eq!(resumed.mean_rewards(), straight.mean_rewards());
    }
}

#[test]
fn checkpoints_of_another_format_are_refused_by_name() {
    let mut run = Run::new(load(&fixture("tune-small"))).unwrap();
    run.advance(2).unwrap();
    let bytes = run.checkpoint().encode();
    assert_eq!(&bytes[..8], b"GMCHKPT\0");
    // The JSON dump written before the typed checkpoint: format 1.
    let e = Checkpoint::decode(br#"{"state":{"step":3}}"#).unwrap_err();
    assert_eq!(e, CheckpointError::Format { found: 1, expected: CHECKPOINT_FORMAT });
    assert!(e.to_string().starts_with("checkpoint format 1 is not readable by this gristmill"), "{e}");
    let mut future = bytes.clone();
    future[8..12].copy_from_slice(&(CHECKPOINT_FORMAT + 1).to_le_bytes());
    assert_eq!(Checkpoint::decode(&future).unwrap_err(), CheckpointError::Format { found: 3, expected: 2 });
    assert!(matches!(Checkpoint::decode(b"not a checkpoint"), Err(CheckpointError::NotACheckpoint(_))));
    assert!(matches!(Checkpoint::decode(&bytes[..bytes.len() - 9]), Err(CheckpointError::Corrupt(_))));
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(Checkpoint::decode(&trailing), Err(CheckpointError::Corrupt(_))));
    // A checkpoint of another spec does not fit and says why.
    let other = load(&with_policy(&fixture("rich"), r#"kind = "loglinear""#));
    let config = gristmill_learn::TrainConfig::of(&other.spec).unwrap();
    match Run::resume(other, config, &bytes) {
        Err(RunError::Learn(e)) => assert!(e.to_string().contains("parameters"), "{e}"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a checkpoint of another spec must not resume"),
    }
}

/// The bytes of a known checkpoint. If a type inside the checkpoint changes (the trainer
/// state, the optimizer state, the ledger state), this fails: then raise
/// `CHECKPOINT_FORMAT`, so old checkpoints are refused by name instead of misread. (The
/// values are this machine kind's: a libm whose `exp` differs in the last bit would move them.)
#[test]
fn checkpoint_format_is_pinned() {
    let mut run = Run::new(load(&fixture("tune-small"))).unwrap();
    run.advance(3).unwrap();
    let bytes = run.checkpoint().encode();
    assert_eq!(CHECKPOINT_FORMAT, 2);
    assert_eq!(
        content_hash(&bytes),
        "455f5fd03a720d284bd86a2bb8f26b2455f7e45f10b97285f4703b999fbabed1",
        "{} bytes",
        bytes.len()
    );
    assert_eq!(Checkpoint::decode(&bytes).unwrap(), run.checkpoint());
}

#[test]
fn a_failing_step_is_checkpointed_at_the_last_good_state() {
    struct Recorder(Vec<u64>);
    impl gristmill_run::RunSink for Recorder {
        fn record_step(&mut self, _: u64, _: Vec<(String, f64)>) -> Result<(), gristmill_store::StoreError> {
            Ok(())
        }
        fn checkpoint(&mut self, done: u64, _: &[u8], _: &str) -> Result<(), gristmill_store::StoreError> {
            self.0.push(done);
            Ok(())
        }
    }
    // A reward model that scores NaN cannot be built from a spec, so poison the parameters
    // instead: the next step's logits are NaN.
    let env = load(&fixture("tune-small"));
    let config = gristmill_learn::TrainConfig::of(&env.spec).unwrap();
    let mut run = Run::new(env.clone()).unwrap();
    run.advance(2).unwrap();
    let mut checkpoint = run.checkpoint();
    checkpoint.trainer.theta[0] = f64::NAN;
    let mut poisoned = Run::resume(env, config, &checkpoint.encode()).unwrap();
    let mut sink = Recorder(vec![]);
    let e = poisoned.train(10, &mut sink, &mut |_| std::ops::ControlFlow::Continue(())).unwrap_err();
    assert!(matches!(e, RunError::Stopped { checkpointed_at: 2, .. }), "{e}");
    assert!(e.to_string().contains("at step 2"), "{e}");
    assert_eq!(sink.0, vec![2], "the last good state, once");
}
