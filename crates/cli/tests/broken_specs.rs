//! Data-driven: every spec in `tests/broken-specs/` is refused by `gristmill validate` with
//! exit code 2 and exactly the error text in its `.expected` file. Set `GRISTMILL_BLESS=1`
//! to rewrite the expected files after a deliberate change of wording.

use std::path::Path;
use std::process::Command;

#[test]
fn every_broken_spec_gets_its_exact_error() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken-specs");
    let bless = gristmill_testkit::bless();
    let mut specs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    specs.sort();
    assert!(specs.len() >= 10, "expected the broken-spec corpus, found {}", specs.len());
    let mut failures = Vec::new();
    for spec in &specs {
        let out = Command::new(env!("CARGO_BIN_EXE_gristmill"))
            .current_dir(&dir)
            .args(["validate", spec.file_name().unwrap().to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let expected_path = spec.with_extension("expected");
        if out.status.code() != Some(2) {
            failures.push(format!("{}: exit {:?}, stderr:\n{stderr}", spec.display(), out.status.code()));
            continue;
        }
        assert!(!stderr.contains("panicked"), "{}: panicked:\n{stderr}", spec.display());
        if bless {
            std::fs::write(&expected_path, &stderr).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("missing {}; run with GRISTMILL_BLESS=1", expected_path.display()));
        if expected != stderr {
            failures.push(format!("{}:\n--- expected\n{expected}--- got\n{stderr}", spec.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
