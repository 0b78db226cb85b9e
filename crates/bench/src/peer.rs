//! The Python peer: `bench/peer_reasoning_gym.py`, run as a subprocess of a given
//! interpreter, and its JSON report.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context};

/// The peer script, compiled in and piped to `python -` so the binary runs from any
/// directory.
pub const SCRIPT: &str = include_str!("../../../bench/peer_reasoning_gym.py");

/// What one peer item is.
pub const ITEM: &str = "generate one entry (dataset[i]) + score_answer(gold) + score_answer(gold + 1)";

/// The peer's figures.
#[derive(Debug, Clone)]
pub struct PeerReport {
    /// Items per second per dataset.
    pub rates: BTreeMap<String, f64>,
    /// Harmonic mean over the datasets: items/s of a stream with equal item counts per
    /// dataset (the peer analogue of our equal-weight mixture).
    pub overall: f64,
    /// Total items over total seconds (equal time per dataset).
    pub overall_total: f64,
    /// The script's whole JSON output.
    pub raw: serde_json::Value,
}

/// Runs the peer with `python` for `seconds` per dataset on `datasets`.
pub fn run(python: &Path, seconds: f64, datasets: &[&str]) -> anyhow::Result<PeerReport> {
    let mut child = Command::new(python)
        .arg("-")
        .arg("--seconds")
        .arg(seconds.to_string())
        .arg("--datasets")
        .arg(datasets.join(","))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting the peer with {}", python.display()))?;
    {
        let mut stdin = child.stdin.take().ok_or_else(|| anyhow!("the peer's stdin is not piped"))?;
        stdin.write_all(SCRIPT.as_bytes()).context("sending the peer script")?;
    }
    let out = child.wait_with_output().context("waiting for the peer")?;
    if !out.status.success() {
        bail!(
            "the peer ({} - peer_reasoning_gym.py) failed with {}; is reasoning-gym installed for it?",
            python.display(),
            out.status
        );
    }
    let stdout = String::from_utf8(out.stdout).context("the peer's output is not UTF-8")?;
    parse(&stdout, datasets)
}

/// Reads the peer's JSON (its last non-empty line of output) and checks that every dataset
/// has a positive finite rate.
pub fn parse(stdout: &str, datasets: &[&str]) -> anyhow::Result<PeerReport> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| anyhow!("the peer printed nothing"))?;
    let raw: serde_json::Value =
        serde_json::from_str(line).with_context(|| format!("the peer's output is not JSON: {line}"))?;
    let rate = |key: &str| -> anyhow::Result<f64> {
        let v = raw
            .get(key)
            .and_then(serde_json::Value::as_f64)
            .ok_or_else(|| anyhow!("the peer's JSON has no number `{key}`"))?;
        if !(v.is_finite() && v > 0.0) {
            bail!("the peer's `{key}` is {v}, not a positive rate");
        }
        Ok(v)
    };
    let mut rates = BTreeMap::new();
    for d in datasets {
        rates.insert(d.to_string(), rate(d)?);
    }
    Ok(PeerReport { overall: rate("overall")?, overall_total: rate("overall_total")?, rates, raw })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_last_json_line_and_checks_rates() {
        let out = "warning: noise\n{\"gcd\": 70000.5, \"chain_sum\": 60000, \"overall\": 64000, \
                   \"overall_total\": 65000, \"_detail\": {}}\n\n";
        let r = parse(out, &["gcd", "chain_sum"]).unwrap();
        assert_eq!(r.rates["gcd"], 70000.5);
        assert_eq!(r.rates["chain_sum"], 60000.0);
        assert_eq!(r.overall, 64000.0);
        assert!(parse(out, &["leg_counting"]).is_err());
        assert!(parse("", &[]).is_err());
        assert!(parse("{\"overall\": 0, \"overall_total\": 1}", &[]).is_err());
        assert!(parse("not json", &[]).is_err());
    }
}
