//! Tables and number formatting.

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};

/// A table in the CLI's house style.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(header.iter().map(Cell::new).collect::<Vec<_>>());
    t
}

/// A right-aligned cell.
pub fn right(text: impl Into<String>) -> Cell {
    Cell::new(text.into()).set_alignment(CellAlignment::Right)
}

/// A rate with thousands separators and no decimals (`1,234,567`), or `-`.
pub fn rate(v: Option<f64>) -> Cell {
    right(match v {
        Some(x) if x.is_finite() => group_thousands(x.round() as u64),
        _ => "-".to_string(),
    })
}

/// A ratio (`123.4×`), or `-`.
pub fn ratio(v: Option<f64>) -> Cell {
    right(match v {
        Some(x) if x.is_finite() => format!("{x:.1}×"),
        _ => "-".to_string(),
    })
}

/// A number of cores (`1.97`), or `-`.
pub fn cores(v: Option<f64>) -> Cell {
    right(match v {
        Some(x) if x.is_finite() => format!("{x:.2}"),
        _ => "-".to_string(),
    })
}

/// `1234567` → `1,234,567`.
pub fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Throughput of a stream whose items come from class `i` with probability `p_i` (weights
/// normalized here), when class `i` alone runs at `rates[i]` items/s: `1 / Σ p_i / r_i`,
/// the weighted harmonic mean. `None` if a rate is missing or the weights are degenerate.
pub fn mixture_rate(weights: &[f64], rates: &[Option<f64>]) -> Option<f64> {
    let total: f64 = weights.iter().sum();
    if weights.len() != rates.len() || !(total.is_finite() && total > 0.0) {
        return None;
    }
    let mut seconds_per_item = 0.0;
    for (w, r) in weights.iter().zip(rates) {
        if *w > 0.0 {
            let r = (*r).filter(|r| r.is_finite() && *r > 0.0)?;
            seconds_per_item += w / total / r;
        }
    }
    (seconds_per_item > 0.0).then(|| 1.0 / seconds_per_item)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1000), "1,000");
        assert_eq!(group_thousands(1234567), "1,234,567");
    }

    #[test]
    fn mixture_rate_is_the_weighted_harmonic_mean() {
        let r = mixture_rate(&[1.0, 1.0], &[Some(1.0), Some(3.0)]).unwrap();
        assert!((r - 1.5).abs() < 1e-12);
        // A zero-weight class does not need a rate.
        assert_eq!(mixture_rate(&[1.0, 0.0], &[Some(4.0), None]), Some(4.0));
        assert_eq!(mixture_rate(&[1.0, 1.0], &[Some(4.0), None]), None);
        assert_eq!(mixture_rate(&[0.0], &[Some(4.0)]), None);
    }
}
