//! Bad model files give clear errors naming the file (no model download needed).

use std::path::PathBuf;

use candle_core::quantized::gguf_file::{self, Value};
use gristmill_lm::{LmError, LocalModel};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gristmill-lm-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn write_gguf(path: &PathBuf, arch: &str) {
    let mut f = std::fs::File::create(path).unwrap();
    let arch = Value::String(arch.into());
    let model = Value::String("gpt2".into());
    gguf_file::write(&mut f, &[("general.architecture", &arch), ("tokenizer.ggml.model", &model)], &[])
        .unwrap();
}

#[test]
fn missing_file_is_named() {
    let path = temp("does-not-exist.gguf");
    let err = LocalModel::load(&path).unwrap_err();
    assert!(matches!(err, LmError::Open { .. }), "{err}");
    assert!(err.to_string().contains("does-not-exist.gguf"), "{err}");
}

#[test]
fn non_gguf_and_truncated_files_are_corrupt() {
    let path = temp("garbage.gguf");
    std::fs::write(&path, b"this is not a model at all").unwrap();
    let err = LocalModel::load(&path).unwrap_err();
    assert!(matches!(err, LmError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("garbage.gguf") && err.to_string().contains("not a GGUF file"), "{err}");

    let path = temp("empty.gguf");
    std::fs::write(&path, b"").unwrap();
    assert!(matches!(LocalModel::load(&path), Err(LmError::Corrupt { .. })));

    // A valid header cut short.
    let full = temp("full.gguf");
    write_gguf(&full, "llama");
    let bytes = std::fs::read(&full).unwrap();
    let cut = temp("cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = LocalModel::load(&cut).unwrap_err();
    assert!(matches!(err, LmError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("cut.gguf"), "{err}");

    // A complete llama header without a tokenizer or tensors.
    let err = LocalModel::load(&full).unwrap_err();
    assert!(matches!(err, LmError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("tokenizer.ggml.tokens"), "{err}");
}

#[test]
fn unsupported_architecture_is_named() {
    let path = temp("gpt2.gguf");
    write_gguf(&path, "gpt2");
    let err = LocalModel::load(&path).unwrap_err();
    assert!(matches!(&err, LmError::UnsupportedArchitecture { arch, .. } if arch == "gpt2"), "{err}");
    assert!(err.to_string().contains("gpt2.gguf"), "{err}");
}

#[test]
fn a_real_model_cut_short_is_corrupt() {
    let Some(model) = gristmill_lm::model_for_tests() else { return };
    let bytes = std::fs::read(&model).unwrap();
    let cut = temp("model-cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() * 3 / 4]).unwrap();
    let err = LocalModel::load(&cut).unwrap_err();
    assert!(matches!(err, LmError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("model-cut.gguf"), "{err}");
    let _ = std::fs::remove_file(&cut);
}
