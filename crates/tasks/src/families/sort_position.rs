//! `sort_position`: where a marked number lands when a list is sorted.
//!
//! **Knobs.** `length` (3..=20, default 6): list length. `max_value` (20..=999, default 99):
//! the list holds distinct values in `1 ..= max_value`. `order` (`ascending` | `descending`
//! | `either`, default `ascending`): the sort order asked for; `either` draws it per task.
//!
//! **Answer space.** `1 ..= length` (6 answers at default knobs): the 1-based position.
//!
//! **Features** (`3 + 3·length`, 21 at default): bias; the direction (+1 ascending, −1
//! descending); `marked / max_value`; per list slot `value / max_value`; per slot whether
//! that value comes before (+1) or after (−1) the marked one in the requested order (0 for
//! the marked slot itself); and a one-hot of the marked slot. The answer is
//! `1 + (length − 1 + Σ before/after)/2`, linear in the features, so a log-linear policy can
//! represent it; the raw values let an MLP learn the comparisons itself.

use gristmill_core::params::{ParamSpec, Params};
use gristmill_core::rng::KeyedRng;
use gristmill_core::task::{AnswerSpace, FamilyInfo, Features, TaskBody, TaskSource};
use rand::Rng;

use crate::common::{
    gold_and_features, one_hot, prompt, single_turn, source_shape, INTEGER_INSTRUCTION, INTEGER_RULE,
};

const MAX_LEN: usize = 20;

const KNOBS: &[ParamSpec] = &[
    ParamSpec::int("length", 3, MAX_LEN as i64, 6, "number of values in the list"),
    ParamSpec::int("max_value", 20, 999, 99, "largest value (values are distinct, 1 ..= max_value)"),
    ParamSpec::choice(
        "order",
        &["ascending", "descending", "either"],
        "ascending",
        "sort order asked for; either draws one per task",
    ),
];

/// The `sort_position` family.
pub const INFO: FamilyInfo = single_turn(
    "sort_position",
    "Shows a list of `length` distinct numbers and asks at which 1-based position a marked \
number ends up after sorting in ascending or descending order. Features: bias, direction, the \
scaled marked value, every scaled list value, per slot whether it sorts before or after the \
marked value, and a one-hot of the marked slot.",
    INTEGER_RULE,
    KNOBS,
    build,
);

fn build(params: &Params) -> Box<dyn TaskSource> {
    let order = match params.choice("order") {
        "descending" => Order::Descending,
        "either" => Order::Either,
        _ => Order::Ascending,
    };
    Box::new(SortPositionSource {
        length: params.int("length").clamp(3, MAX_LEN as i64) as usize,
        max_value: params.int("max_value").clamp(20, 999) as u32,
        order,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Ascending,
    Descending,
    Either,
}

/// A configured `sort_position` source.
#[derive(Debug, Clone)]
pub struct SortPositionSource {
    length: usize,
    max_value: u32,
    order: Order,
}

impl TaskSource for SortPositionSource {
    source_shape!(|s| answers: AnswerSpace::inclusive(1, s.length as i64), features: 3 + 3 * s.length);

    fn generate_into(&self, rng: &mut KeyedRng, body: &mut TaskBody, features: Features) {
        let n = self.length;
        // Distinct values by rejection; max_value >= 20 >= length keeps this short (at worst
        // a coupon collector over 20 values, ~72 draws).
        let mut values = [0u32; MAX_LEN];
        let mut filled = 0;
        while filled < n {
            let v = rng.random_range(1..=self.max_value);
            if !values[..filled].contains(&v) {
                values[filled] = v;
                filled += 1;
            }
        }
        let values = &values[..n];
        let marked_slot = rng.random_range(0..n);
        let ascending = match self.order {
            Order::Ascending => true,
            Order::Descending => false,
            Order::Either => rng.random::<bool>(),
        };
        let marked = values[marked_slot];
        let before = |v: u32| if ascending { v < marked } else { v > marked };
        let position = 1 + values.iter().filter(|&&v| before(v)).count();

        let prompt = &mut body.prompt;
        prompt.clear();
        prompt.push_str("Consider the list: ");
        for (i, v) in values.iter().enumerate() {
            prompt!(prompt; if i == 0 { "" } else { ", " }, *v);
        }
        prompt!(
            prompt;
            ".\nIf the list is sorted in ", if ascending { "ascending" } else { "descending" },
            " order (", if ascending { "smallest" } else { "largest" },
            " first), at which position does ", marked, " appear? Positions are counted from 1.\n",
            INTEGER_INSTRUCTION,
        );

        let scale = self.max_value as f64;
        let Some(f) = gold_and_features(body, position as i64, features) else { return };
        f.extend_from_slice(&[if ascending { 1.0 } else { -1.0 }, marked as f64 / scale]);
        f.extend(values.iter().map(|&v| v as f64 / scale));
        f.extend(values.iter().map(|&v| {
            if v == marked {
                0.0
            } else if before(v) {
                1.0
            } else {
                -1.0
            }
        }));
        one_hot(f, n, marked_slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gristmill_core::rng::{stream, Purpose};

    #[test]
    fn position_matches_a_real_sort() {
        let src = SortPositionSource { length: 7, max_value: 30, order: Order::Either };
        for i in 0..500 {
            let body = src.generate(&mut stream(5, Purpose::TASK, 0, i));
            let values: Vec<u32> = (0..7).map(|k| (body.features[3 + k] * 30.0).round() as u32).collect();
            let slot = (0..7).find(|&k| body.features[3 + 14 + k] == 1.0).unwrap();
            let mut sorted = values.clone();
            sorted.sort_unstable();
            if body.features[1] < 0.0 {
                sorted.reverse();
            }
            let pos = sorted.iter().position(|&v| v == values[slot]).unwrap() + 1;
            assert_eq!(pos as i64, body.gold, "{}", body.prompt);
        }
    }
}
