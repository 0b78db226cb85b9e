//! `counting`: a word problem tracking a count through gains and losses.
//!
//! "Ann has 3 apples. Then Ann buys 4 more. Finally, Ann gives 2 away. How many apples does
//! Ann have now?"
//!
//! **Knobs.** `steps` (1..=4, default 2): how many changes follow the starting count.
//! `max_amount` (2..=20, default 9): each change moves the count by `1 ..= max_amount`;
//! the start is in `1 ..= 2·max_amount`. A loss never exceeds what is held, so the count
//! stays non-negative.
//!
//! **Answer space.** `0 ..= (2 + steps)·max_amount` (37 answers at default knobs, 121 at
//! most).
//!
//! **Wording.** The name, the item, each change's verb and the question are chosen from
//! fixed lists by a hash of the task's numbers (see `common::surface_hash`), so the same
//! numbers always read the same way and the train/eval partition splits problems rather
//! than phrasings.
//!
//! **Features** (`2 + 4·steps`, 10 at default): bias; `start / (2·max_amount)`; then per
//! change `[is gain, is loss, amount / max_amount, signed amount / max_amount]`. The answer
//! is linear in the start and the signed amounts, so a log-linear policy can represent it
//! exactly.

use gristmill_core::params::{ParamSpec, Params};
use gristmill_core::rng::KeyedRng;
use gristmill_core::task::{AnswerSpace, FamilyInfo, Features, TaskBody, TaskSource};
use rand::Rng;

use crate::common::{
    gold_and_features, prompt, single_turn, source_shape, surface_hash, INTEGER_INSTRUCTION, INTEGER_RULE,
};

const KNOBS: &[ParamSpec] = &[
    ParamSpec::int("steps", 1, 4, 2, "number of gains or losses after the starting count"),
    ParamSpec::int("max_amount", 2, 20, 9, "largest single gain or loss (the start is at most twice this)"),
];

const MAX_STEPS: usize = 4;

/// The `counting` family.
pub const INFO: FamilyInfo = single_turn(
    "counting",
    "A word problem: someone starts with some items, gains or loses some `steps` times, \
and the question asks how many they have at the end (\"Ann has 3 apples. Then Ann buys 4 more. \
Finally, Ann gives 2 away. How many apples does Ann have now?\"). Names, items and verbs vary \
with the numbers. Features: bias, the scaled start, and per change its kind and scaled amount.",
    INTEGER_RULE,
    KNOBS,
    build,
);

fn build(params: &Params) -> Box<dyn TaskSource> {
    Box::new(CountingSource::new(
        params.int("steps").clamp(1, MAX_STEPS as i64) as usize,
        params.int("max_amount").clamp(2, 20) as u64,
    ))
}

/// A configured `counting` source.
#[derive(Debug, Clone)]
pub struct CountingSource {
    steps: usize,
    max_amount: u64,
    /// The prompt's fixed phrases joined ahead of time, so a prompt is written from about
    /// a third as many pieces (word problems are the longest prompts a rollout writes).
    phrases: Phrases,
}

/// Pre-joined phrases of [`CountingSource`] prompts; each is exactly the text the pieces it
/// replaces would write.
#[derive(Debug, Clone)]
struct Phrases {
    /// `"{name} has "`, per name.
    intro: Vec<String>,
    /// `" {item}."`, per item: (singular, plural).
    item: Vec<(String, String)>,
    /// `" {lead} {name} {pre}"`, per (lead, name, gain or loss, pick).
    step: Vec<String>,
    /// `"{post}."`, per (gain or loss, pick).
    post: Vec<String>,
    /// `" {q0}{many}{q1}{name}{q2}\n{instruction}"`, per (question, item, name).
    question: Vec<String>,
}

/// Step leads: the first step, middle steps, the last step.
const LEADS: [&str; 3] = ["Then", "After that,", "Finally,"];

impl Phrases {
    fn new() -> Phrases {
        let mut step = Vec::with_capacity(LEADS.len() * NAMES.len() * 2 * 4);
        for lead in LEADS {
            for name in NAMES {
                for table in [GAINS, LOSSES] {
                    for (pre, _) in table {
                        step.push(format!(" {lead} {name} {pre}"));
                    }
                }
            }
        }
        let post =
            [GAINS, LOSSES].iter().flat_map(|t| t.iter().map(|(_, post)| format!("{post}."))).collect();
        let mut question = Vec::with_capacity(QUESTIONS.len() * ITEMS.len() * NAMES.len());
        for (q0, q1, q2) in QUESTIONS {
            for (_, many) in ITEMS {
                for name in NAMES {
                    question.push(format!(" {q0}{many}{q1}{name}{q2}\n{INTEGER_INSTRUCTION}"));
                }
            }
        }
        Phrases {
            intro: NAMES.iter().map(|name| format!("{name} has ")).collect(),
            item: ITEMS.iter().map(|(one, many)| (format!(" {one}."), format!(" {many}."))).collect(),
            step,
            post,
            question,
        }
    }
}

impl CountingSource {
    fn new(steps: usize, max_amount: u64) -> Self {
        CountingSource { steps, max_amount, phrases: Phrases::new() }
    }
}

const NAMES: [&str; 8] = ["Ann", "Ben", "Carla", "Dev", "Emma", "Farid", "Gita", "Hugo"];
/// (singular, plural)
const ITEMS: [(&str, &str); 8] = [
    ("apple", "apples"),
    ("marble", "marbles"),
    ("sticker", "stickers"),
    ("book", "books"),
    ("coin", "coins"),
    ("shell", "shells"),
    ("pencil", "pencils"),
    ("stamp", "stamps"),
];
/// Gain phrases; `{}` is the amount.
const GAINS: [(&str, &str); 4] =
    [("buys ", " more"), ("finds ", " more"), ("is given ", " more"), ("picks up ", " more")];
/// Loss phrases.
const LOSSES: [(&str, &str); 4] =
    [("gives ", " away"), ("loses ", ""), ("gives ", " to a friend"), ("sells ", "")];
/// Questions: (before item, between item and name, after name).
const QUESTIONS: [(&str, &str, &str); 3] = [
    ("How many ", " does ", " have now?"),
    ("How many ", " does ", " end up with?"),
    ("After all this, how many ", " does ", " have?"),
];

impl TaskSource for CountingSource {
    source_shape!(|s| answers: AnswerSpace::inclusive(0, ((2 + s.steps as u64) * s.max_amount) as i64), features: 2 + 4 * s.steps);

    fn generate_into(&self, rng: &mut KeyedRng, body: &mut TaskBody, features: Features) {
        let amax = self.max_amount;
        let start = rng.random_range(1..=2 * amax);
        // Signed changes; unused slots stay 0.
        let mut changes = [0i64; MAX_STEPS];
        let mut count = start;
        for c in changes.iter_mut().take(self.steps) {
            let gain = count == 0 || rng.random::<bool>();
            if gain {
                let n = rng.random_range(1..=amax);
                count += n;
                *c = n as i64;
            } else {
                let n = rng.random_range(1..=amax.min(count));
                count -= n;
                *c = -(n as i64);
            }
        }

        let h = surface_hash(&[
            start,
            changes[0] as u64,
            changes[1] as u64,
            changes[2] as u64,
            changes[3] as u64,
        ]);
        let name = (h % 8) as usize;
        let item = ((h >> 8) % 8) as usize;
        let phrases = &self.phrases;
        let (one, many) = &phrases.item[item];
        let prompt = &mut body.prompt;
        prompt.clear();
        prompt!(prompt; &phrases.intro[name], start, if start == 1 { one } else { many });
        for (i, &c) in changes.iter().take(self.steps).enumerate() {
            let lead = match i {
                0 => 0,
                _ if i + 1 == self.steps => 2,
                _ => 1,
            };
            let pick = ((h >> (16 + 4 * i)) % 4) as usize;
            let side = usize::from(c <= 0);
            let step = ((lead * NAMES.len() + name) * 2 + side) * 4 + pick;
            prompt!(prompt; &phrases.step[step], c.unsigned_abs(), &phrases.post[side * 4 + pick]);
        }
        let question = ((h >> 40) % 3) as usize;
        prompt!(prompt; &phrases.question[(question * ITEMS.len() + item) * NAMES.len() + name]);

        let Some(f) = gold_and_features(body, count as i64, features) else { return };
        f.push(start as f64 / (2 * amax) as f64);
        let scale = amax as f64;
        for &c in changes.iter().take(self.steps) {
            let (gain, loss) = if c > 0 { (1.0, 0.0) } else { (0.0, 1.0) };
            f.extend_from_slice(&[gain, loss, c.unsigned_abs() as f64 / scale, c as f64 / scale]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gristmill_core::rng::{stream, Purpose};

    #[test]
    fn gold_is_start_plus_changes_and_wording_follows_numbers() {
        let src = CountingSource::new(3, 5);
        for i in 0..300 {
            let body = src.generate(&mut stream(4, Purpose::TASK, 0, i));
            let start = body.features[1] * 10.0;
            let sum: f64 = (0..3).map(|k| body.features[2 + 4 * k + 3] * 5.0).sum();
            assert_eq!((start + sum).round() as i64, body.gold, "{}", body.prompt);
            assert!(body.gold >= 0);
            assert!(!body.prompt.contains(" 1 apples") && !body.prompt.contains("has 1 marbles"));
        }
    }
}
