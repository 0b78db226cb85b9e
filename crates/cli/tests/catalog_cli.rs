//! The listing commands show everything a spec may set: every policy parameter (the
//! optimizer, checkpointing and credit settings live there) and every piece parameter, each
//! with its range and default.

use std::process::Command;

fn listing(command: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_gristmill")).arg(command).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn policies_lists_every_policy_parameter_with_its_range() {
    let text = listing("policies");
    let catalog = gristmill_engine::catalog();
    assert!(!catalog.policies.is_empty());
    for kind in catalog.policies {
        assert!(text.contains(kind.name), "policy kind {} missing:\n{text}", kind.name);
        for p in kind.params {
            let line = format!("{}: {}", p.name, p.describe_range());
            assert!(text.contains(&line), "{}: `{line}` missing:\n{text}", kind.name);
        }
    }
    // The parameters the reliability pass could not find.
    for name in ["checkpoint_every:", "checkpoint_keep:", "checkpoint_keep_every:", "credit_nodes:"] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
}

#[test]
fn pieces_lists_every_piece_parameter_with_its_range() {
    let text = listing("pieces");
    for kind in gristmill_engine::catalog().pieces {
        assert!(text.contains(kind.name), "piece kind {} missing", kind.name);
        for p in kind.params {
            let line = format!("{}: {}", p.name, p.describe_range());
            assert!(text.contains(&line), "{}: `{line}` missing:\n{text}", kind.name);
        }
    }
}
