//! # gristmill-tasks
//!
//! The built-in task families of gristmill: seeded procedural generators with difficulty
//! knobs, finite integer answer spaces, gold answers and feature encodings for learned
//! policies, plus the multi-turn [`maze`].
//!
//! ```
//! use gristmill_core::params::Params;
//! use gristmill_core::task::{generate_task, Split, TaskKey};
//!
//! let info = gristmill_tasks::family("addition").unwrap();
//! let source = (info.build)(&Params::defaults(info.knobs));
//! let key = TaskKey { seed: 7, source: 0, index: 0, split: Split::Train };
//! let task = generate_task(source.as_ref(), "add", key, 0.2).unwrap();
//! assert!(task.body.prompt.ends_with("`Answer: <integer>`."));
//! assert_eq!(task.body.features.len(), source.feature_dim());
//! // The canonical rendering of the gold answer parses back to it.
//! let reply = source.render_answer(task.gold());
//! assert_eq!(source.parse_answer(&reply), Ok(task.gold()));
//!
//! let maze = gristmill_tasks::episode_family("maze").unwrap();
//! let mut episode = (maze.reset)(&Params::defaults(maze.knobs), 42);
//! while !episode.done() {
//!     let action = episode.oracle_action().unwrap();
//!     episode.step(action);
//! }
//! assert!(episode.total_reward() > 0.0);
//! ```
//!
//! Besides the procedural families, [`dataset`] reads tasks with free-text gold answers from a
//! user's JSON Lines or Parquet file ([`source_kinds`] lists both, [`open_source`] builds
//! either).
//!
//! Every family answers with an integer in a declared [`AnswerSpace`] (comparison's `<`,
//! `=`, `>` are −1, 0, 1; a base conversion's answer is the number's value). Gold answers
//! always lie in the space, and each family's `render_answer` text parses back to the same
//! value. All randomness comes from the [`KeyedRng`] handed to `generate`, so a task key
//! regenerates its task bit for bit; the few transcendental feature values are computed with
//! basic IEEE operations only, so they are the same bits on every platform.
//!
//! Features are what a learned policy reads: a fixed-length `f64` vector per source with a
//! constant bias 1.0 first, then one-hot blocks and scaled values in roughly [−1, 1]. Each
//! family's module documents its encoding and why the answer is learnable from it.
//!
//! [`AnswerSpace`]: gristmill_core::task::AnswerSpace
//! [`KeyedRng`]: gristmill_core::rng::KeyedRng
#![warn(missing_docs)]

mod common;
pub mod dataset;
mod detmath;
pub mod families;
pub mod maze;

use gristmill_core::episode::EpisodeFamilyInfo;
use gristmill_core::task::FamilyInfo;

static FAMILIES: [FamilyInfo; 10] = [
    families::addition::INFO,
    families::multiplication::INFO,
    families::modular::INFO,
    families::gcd::INFO,
    families::comparison::INFO,
    families::counting::INFO,
    families::sort_position::INFO,
    families::bit_count::INFO,
    families::base_conversion::INFO,
    families::sequence_next::INFO,
];

/// Every single-turn source kind a spec may name: the procedural families, then `dataset`.
static SOURCE_KINDS: [FamilyInfo; 11] = [
    FAMILIES[0],
    FAMILIES[1],
    FAMILIES[2],
    FAMILIES[3],
    FAMILIES[4],
    FAMILIES[5],
    FAMILIES[6],
    FAMILIES[7],
    FAMILIES[8],
    FAMILIES[9],
    dataset::INFO,
];

static EPISODE_FAMILIES: [EpisodeFamilyInfo; 1] = [maze::INFO];

/// The built-in single-turn families, in a fixed order.
pub fn families() -> &'static [FamilyInfo] {
    &FAMILIES
}

/// Every single-turn source kind a spec may name: [`families`], then [`dataset`].
pub fn source_kinds() -> &'static [FamilyInfo] {
    &SOURCE_KINDS
}

/// Builds the source of kind `info` from resolved knobs: a dataset is opened and indexed
/// (which can fail, naming the file, row and field); a procedural family cannot fail.
pub fn open_source(
    info: &FamilyInfo,
    knobs: &gristmill_core::params::Params,
) -> Result<Box<dyn gristmill_core::task::TaskSource>, dataset::DatasetError> {
    if info.name == dataset::NAME {
        Ok(Box::new(dataset::open(knobs)?))
    } else {
        Ok((info.build)(knobs))
    }
}

/// The built-in multi-turn families.
pub fn episode_families() -> &'static [EpisodeFamilyInfo] {
    &EPISODE_FAMILIES
}

/// The single-turn family called `name`.
pub fn family(name: &str) -> Option<&'static FamilyInfo> {
    FAMILIES.iter().find(|f| f.name == name)
}

/// The multi-turn family called `name`.
pub fn episode_family(name: &str) -> Option<&'static EpisodeFamilyInfo> {
    EPISODE_FAMILIES.iter().find(|f| f.name == name)
}
