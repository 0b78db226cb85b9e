//! Multi-turn episodes with snapshot, restore and fork.

use std::fmt;

use crate::error::ParseError;
use crate::params::{ParamSpec, Params};

/// The result of one step.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct StepOutcome {
    /// Reward for this step.
    pub reward: f64,
    /// Whether the episode has ended.
    pub done: bool,
}

/// A deterministic multi-turn simulator.
///
/// Determinism: an episode's whole state is in the value (including any random stream), so
/// a snapshot restored anywhere and stepped with the same actions gives the same outcomes.
pub trait Episode: Send + Sync {
    /// The text the policy reads now.
    fn observation(&self) -> String;
    /// Number of actions (actions are `0..action_count()`).
    fn action_count(&self) -> usize;
    /// The text name of an action (what a response should say).
    fn action_name(&self, action: usize) -> &'static str;
    /// Parses an action from free text.
    fn parse_action(&self, text: &str) -> Result<usize, ParseError>;
    /// Applies an action. Stepping a finished episode returns `done` with zero reward.
    fn step(&mut self, action: usize) -> StepOutcome;
    /// Whether the episode has ended.
    fn done(&self) -> bool;
    /// Total reward so far.
    fn total_reward(&self) -> f64;
    /// Steps taken so far.
    fn steps_taken(&self) -> u32;
    /// A deep copy of the current state: the snapshot. Restoring is replacing the episode
    /// with a snapshot's copy; `fork(n)` is n copies.
    fn snapshot(&self) -> Box<dyn Episode>;
    /// A digest of the full state, for replay checks.
    fn state_digest(&self) -> String;
    /// The action an optimal agent takes now, if the family can compute one (reference
    /// policies use it; learned policies never see it).
    fn oracle_action(&self) -> Option<usize> {
        None
    }
}

/// Forks `n` independent copies of an episode's current state.
pub fn fork(episode: &dyn Episode, n: usize) -> Vec<Box<dyn Episode>> {
    (0..n).map(|_| episode.snapshot()).collect()
}

/// A multi-turn family: its knobs and how to start an episode.
#[derive(Clone, Copy)]
pub struct EpisodeFamilyInfo {
    /// Family name.
    pub name: &'static str,
    /// One paragraph.
    pub doc: &'static str,
    /// The documented action format.
    pub action_format: &'static str,
    /// Difficulty knobs.
    pub knobs: &'static [ParamSpec],
    /// Starts an episode from resolved knobs and a seed.
    pub reset: fn(&Params, u64) -> Box<dyn Episode>,
}

impl fmt::Debug for EpisodeFamilyInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EpisodeFamilyInfo").field("name", &self.name).finish()
    }
}
