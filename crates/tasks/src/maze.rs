//! `maze`: a multi-turn grid maze with snapshot, restore and fork.
//!
//! A `size × size` grid with random walls, an agent start `A` and a goal `G`. Each turn the
//! policy reads the rendered grid and answers with a direction; the agent moves one cell
//! unless a wall or the grid edge is in the way (then it stays put and the step still
//! counts). Each step costs `step_cost`; reaching the goal gives +1 and ends the episode,
//! which otherwise ends after `max_steps` steps.
//!
//! **Generation.** From the seed's `(seed, EPISODE, 0, 0)` stream: each cell is a wall with
//! probability `wall_density`, the goal is a random open cell, and the start is a random open
//! cell whose BFS distance to the goal is between `min(size − 1, max_steps)` and `max_steps`
//! (so episodes are neither trivial nor unwinnable). If no cell qualifies, the layout is
//! redrawn from the same stream (up to 64 times), and if none does the fallback is an open
//! grid with the start at such a distance. So every episode is solvable in time,
//! whatever the knobs, and the oracle (a BFS-optimal move) always reaches the goal.
//!
//! **State.** The whole state lives inline in [`MazeEpisode`] (no heap, no shared parts), so
//! a snapshot is a plain copy and two copies stepped with the same actions stay identical.

use std::fmt::Write;

use gristmill_core::episode::{Episode, EpisodeFamilyInfo, StepOutcome};
use gristmill_core::params::{ParamSpec, Params};
use gristmill_core::rng::{stream, KeyedRng, Purpose};
use gristmill_core::ParseError;
use rand::Rng;

use crate::common::strip_wrapping;

const MIN_SIDE: u8 = 3;
const MAX_SIDE: u8 = 12;
const MAX_CELLS: usize = MAX_SIDE as usize * MAX_SIDE as usize;
const UNREACHABLE: u8 = u8::MAX;
const ATTEMPTS: u32 = 64;

const KNOBS: &[ParamSpec] = &[
    ParamSpec::int("size", MIN_SIDE as i64, MAX_SIDE as i64, 6, "side length of the square grid"),
    ParamSpec::float("wall_density", 0.0, 0.6, 0.25, "probability that a cell is a wall"),
    ParamSpec::int("max_steps", 1, 500, 50, "steps before the episode ends without reaching the goal"),
    ParamSpec::float("step_cost", 0.0, 0.2, 0.01, "reward subtracted on every step"),
];

const ACTION_RULE: &str = "The text after the last `Action:` marker (case-insensitive) up to the end of \
its line, trimmed, with one trailing period and any wrapping backticks, quotes, asterisks or dollar signs \
removed, must be one of `up`, `down`, `left`, `right` (case-insensitive; `north`, `south`, `west`, `east` \
are accepted too) or an action index 0-3 (up, down, left, right); other integers are out of space and \
anything else is malformed. Without a marker, a response that is just a direction word is accepted; \
otherwise the action is missing.";

/// The `maze` family.
pub const INFO: EpisodeFamilyInfo = EpisodeFamilyInfo {
    name: "maze",
    doc: "Walk from A to G in a `size` x `size` grid maze with random walls (density \
`wall_density`), one move per turn (up, down, left, right); bumping a wall wastes the step. \
Reward +1 on reaching the goal, minus `step_cost` per step; the episode ends at the goal or after \
`max_steps` steps. The start is between min(`size` - 1, `max_steps`) and `max_steps` moves \
from the goal (checked by BFS, redrawn otherwise), so every maze is solvable in time; the oracle \
action is a BFS-optimal move.",
    action_format: ACTION_RULE,
    knobs: KNOBS,
    reset,
};

fn reset(params: &Params, seed: u64) -> Box<dyn Episode> {
    Box::new(MazeEpisode::new(
        params.int("size").clamp(MIN_SIDE as i64, MAX_SIDE as i64) as u8,
        params.float("wall_density"),
        params.int("max_steps").clamp(1, u32::MAX as i64) as u32,
        params.float("step_cost"),
        seed,
    ))
}

const ACTIONS: [&str; 4] = ["up", "down", "left", "right"];
const SYNONYMS: [&str; 4] = ["north", "south", "west", "east"];

/// One maze episode: layout, agent and bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct MazeEpisode {
    side: u8,
    /// Wall bit per cell `row * side + col`.
    walls: [u64; 3],
    /// BFS distance from each cell to the goal (`UNREACHABLE` if none). Derived from the
    /// layout, kept so the oracle is O(1).
    dist: [u8; MAX_CELLS],
    start: u8,
    goal: u8,
    pos: u8,
    steps: u32,
    max_steps: u32,
    step_cost: f64,
    total_reward: f64,
    done: bool,
    /// Whether the last step bumped into a wall or the edge (shown in the observation).
    bumped: bool,
}

impl MazeEpisode {
    /// Generates the maze for `seed`. Out-of-range arguments are clamped to the knob ranges
    /// (side 3..=12, density 0..=0.6, at least one step, cost 0..=0.2).
    pub fn new(side: u8, wall_density: f64, max_steps: u32, step_cost: f64, seed: u64) -> Self {
        let side = side.clamp(MIN_SIDE, MAX_SIDE);
        let density = if wall_density.is_finite() { wall_density.clamp(0.0, 0.6) } else { 0.0 };
        let step_cost = if step_cost.is_finite() { step_cost.clamp(0.0, 0.2) } else { 0.0 };
        let max_steps = max_steps.max(1);
        let mut rng = stream(seed, Purpose::EPISODE, 0, 0);
        let (walls, start, goal) = generate_layout(&mut rng, side, density, max_steps);
        let dist = bfs(side, &walls, goal);
        MazeEpisode {
            side,
            walls,
            dist,
            start,
            goal,
            pos: start,
            steps: 0,
            max_steps,
            step_cost,
            total_reward: 0.0,
            done: false,
            bumped: false,
        }
    }

    /// Length of a shortest path from the agent to the goal (`None` if unreachable, which
    /// generation rules out).
    pub fn distance_to_goal(&self) -> Option<u32> {
        let d = self.dist[self.pos as usize];
        (d != UNREACHABLE).then_some(d as u32)
    }

    fn neighbor(&self, cell: u8, action: usize) -> Option<u8> {
        neighbor(self.side, &self.walls, cell, action)
    }
}

fn is_wall(walls: &[u64; 3], cell: u8) -> bool {
    walls[cell as usize / 64] >> (cell % 64) & 1 == 1
}

/// The cell one move away, if it is on the grid and open.
fn neighbor(side: u8, walls: &[u64; 3], cell: u8, action: usize) -> Option<u8> {
    let (r, c) = (cell / side, cell % side);
    let next = match action {
        0 if r > 0 => cell - side,
        1 if r + 1 < side => cell + side,
        2 if c > 0 => cell - 1,
        3 if c + 1 < side => cell + 1,
        _ => return None,
    };
    (!is_wall(walls, next)).then_some(next)
}

/// BFS distances to `goal` over open cells.
fn bfs(side: u8, walls: &[u64; 3], goal: u8) -> [u8; MAX_CELLS] {
    let mut dist = [UNREACHABLE; MAX_CELLS];
    let mut queue = [0u8; MAX_CELLS];
    let (mut head, mut tail) = (0, 1);
    queue[0] = goal;
    dist[goal as usize] = 0;
    while head < tail {
        let cell = queue[head];
        head += 1;
        for a in 0..4 {
            // Moves are symmetric, so distances from the goal are distances to it.
            if let Some(n) = neighbor(side, walls, cell, a) {
                if dist[n as usize] == UNREACHABLE {
                    dist[n as usize] = dist[cell as usize] + 1;
                    queue[tail] = n;
                    tail += 1;
                }
            }
        }
    }
    dist
}

/// Draws (walls, start, goal) with the start between `min(side − 1, max_steps)` and
/// `max_steps` moves from the goal, so episodes are neither trivial nor unwinnable.
fn generate_layout(rng: &mut KeyedRng, side: u8, density: f64, max_steps: u32) -> ([u64; 3], u8, u8) {
    let cells = side as usize * side as usize;
    let min_d = (side as u32 - 1).min(max_steps);
    let mut open = [0u8; MAX_CELLS];
    let mut candidates = [0u8; MAX_CELLS];
    for _ in 0..ATTEMPTS {
        let mut walls = [0u64; 3];
        let mut n_open = 0;
        for cell in 0..cells {
            if rng.random::<f64>() < density {
                walls[cell / 64] |= 1 << (cell % 64);
            } else {
                open[n_open] = cell as u8;
                n_open += 1;
            }
        }
        if n_open < 2 {
            continue;
        }
        let goal = open[rng.random_range(0..n_open)];
        let dist = bfs(side, &walls, goal);
        let mut n_cand = 0;
        for &cell in &open[..n_open] {
            let d = dist[cell as usize];
            if d != UNREACHABLE && (min_d.max(1)..=max_steps).contains(&(d as u32)) {
                candidates[n_cand] = cell;
                n_cand += 1;
            }
        }
        if n_cand > 0 {
            return (walls, candidates[rng.random_range(0..n_cand)], goal);
        }
    }
    // Open grid: Manhattan distance is the path length. From any cell some cell is at least
    // side − 1 away, so the candidate list is never empty.
    let goal = rng.random_range(0..cells) as u8;
    let (gr, gc) = (goal / side, goal % side);
    let mut n_cand = 0;
    for cell in 0..cells as u8 {
        let d = (cell / side).abs_diff(gr) as u32 + (cell % side).abs_diff(gc) as u32;
        if (min_d.max(1)..=max_steps).contains(&d) {
            candidates[n_cand] = cell;
            n_cand += 1;
        }
    }
    ([0; 3], candidates[rng.random_range(0..n_cand)], goal)
}

/// Reads a direction word or an action index.
fn read_action(word: &str) -> Option<Result<usize, ParseError>> {
    if let Some(a) = ACTIONS.iter().position(|w| w.eq_ignore_ascii_case(word)) {
        return Some(Ok(a));
    }
    if let Some(a) = SYNONYMS.iter().position(|w| w.eq_ignore_ascii_case(word)) {
        return Some(Ok(a));
    }
    match word.parse::<i64>() {
        Ok(v) if (0..4).contains(&v) => Some(Ok(v as usize)),
        Ok(_) => Some(Err(ParseError::OutOfSpace(word.to_string()))),
        Err(_) => None,
    }
}

/// Trims the reply text the way the answer rule does: wrapping, then one trailing period.
fn clean(s: &str) -> &str {
    let s = strip_wrapping(s);
    strip_wrapping(s.strip_suffix('.').unwrap_or(s))
}

impl Episode for MazeEpisode {
    fn observation(&self) -> String {
        let side = self.side as usize;
        let mut o = String::with_capacity(420 + side * (side + 1));
        let _ = write!(
            o,
            "You are in a {side}x{side} grid maze. You are at A and the goal is G; # is a wall and . is \
open floor. Moving into a wall or off the grid leaves you in place. Reaching G gives reward 1 and \
ends the episode; every step costs {}.\nStep {} of {}.{}\n",
            self.step_cost,
            self.steps,
            self.max_steps,
            if self.bumped { " Your last move bumped into a wall." } else { "" }
        );
        for r in 0..side {
            for c in 0..side {
                let cell = (r * side + c) as u8;
                o.push(if cell == self.pos {
                    'A'
                } else if cell == self.goal {
                    'G'
                } else if is_wall(&self.walls, cell) {
                    '#'
                } else {
                    '.'
                });
            }
            o.push('\n');
        }
        if self.done {
            o.push_str(if self.pos == self.goal {
                "The episode is over: you reached the goal."
            } else {
                "The episode is over: no steps are left."
            });
        } else {
            o.push_str("Reply with a line of the form `Action: <up|down|left|right>`.");
        }
        o
    }

    fn action_count(&self) -> usize {
        4
    }

    fn action_name(&self, action: usize) -> &'static str {
        ACTIONS.get(action).copied().unwrap_or("invalid")
    }

    fn parse_action(&self, text: &str) -> Result<usize, ParseError> {
        let lower = text.to_ascii_lowercase();
        match lower.rfind("action:") {
            Some(pos) => {
                // Lowercasing is ASCII-only, so byte offsets agree with `text`.
                let line = text[pos + "action:".len()..].lines().next().unwrap_or("");
                let word = clean(line);
                if word.is_empty() {
                    return Err(ParseError::Missing);
                }
                read_action(word).unwrap_or_else(|| Err(ParseError::Malformed(line.trim().to_string())))
            }
            None => {
                let word = clean(text);
                match read_action(word) {
                    Some(Ok(a)) if word.parse::<i64>().is_err() => Ok(a),
                    _ => Err(ParseError::Missing),
                }
            }
        }
    }

    /// Applies `action`. An action outside `0..4` is treated like a bump: the agent stays and
    /// the step counts, so no input can panic or desynchronise replicas.
    fn step(&mut self, action: usize) -> StepOutcome {
        if self.done {
            return StepOutcome { reward: 0.0, done: true };
        }
        match self.neighbor(self.pos, action) {
            Some(next) => {
                self.pos = next;
                self.bumped = false;
            }
            None => self.bumped = true,
        }
        self.steps += 1;
        let mut reward = -self.step_cost;
        if self.pos == self.goal {
            reward += 1.0;
            self.done = true;
        } else if self.steps >= self.max_steps {
            self.done = true;
        }
        self.total_reward += reward;
        StepOutcome { reward, done: self.done }
    }

    fn done(&self) -> bool {
        self.done
    }

    fn total_reward(&self) -> f64 {
        self.total_reward
    }

    fn steps_taken(&self) -> u32 {
        self.steps
    }

    fn snapshot(&self) -> Box<dyn Episode> {
        Box::new(self.clone())
    }

    fn state_digest(&self) -> String {
        let mut h = blake3::Hasher::new();
        h.update(b"gristmill.maze.v1");
        h.update(&[self.side, self.start, self.goal, self.pos, self.done as u8, self.bumped as u8]);
        for w in self.walls {
            h.update(&w.to_le_bytes());
        }
        h.update(&self.dist);
        h.update(&self.steps.to_le_bytes());
        h.update(&self.max_steps.to_le_bytes());
        h.update(&self.step_cost.to_bits().to_le_bytes());
        h.update(&self.total_reward.to_bits().to_le_bytes());
        h.finalize().to_hex().to_string()
    }

    fn oracle_action(&self) -> Option<usize> {
        if self.done {
            return None;
        }
        let here = self.dist[self.pos as usize];
        if here == UNREACHABLE || here == 0 {
            return None;
        }
        (0..4).find(|&a| self.neighbor(self.pos, a).is_some_and(|n| self.dist[n as usize] + 1 == here))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gristmill_core::episode::fork;

    fn default_maze(seed: u64) -> MazeEpisode {
        MazeEpisode::new(6, 0.25, 50, 0.01, seed)
    }

    #[test]
    fn same_seed_same_maze_and_seeds_differ() {
        assert_eq!(default_maze(1), default_maze(1));
        let distinct: std::collections::BTreeSet<String> =
            (0..50).map(|s| default_maze(s).state_digest()).collect();
        assert!(distinct.len() >= 48, "{}", distinct.len());
    }

    #[test]
    fn oracle_solves_every_maze_within_max_steps() {
        let configs = [(6, 0.25, 50), (3, 0.0, 1), (3, 0.6, 2), (12, 0.6, 500), (12, 0.4, 5), (9, 0.3, 30)];
        for (side, density, max_steps) in configs {
            for seed in 0..200 {
                let mut m = MazeEpisode::new(side, density, max_steps, 0.01, seed);
                let shortest = m.distance_to_goal().unwrap();
                let min_d = (side as u32 - 1).min(max_steps);
                assert!((min_d.max(1)..=max_steps).contains(&shortest), "{shortest}");
                while !m.done() {
                    let a = m.oracle_action().expect("oracle has a move while not done");
                    m.step(a);
                }
                assert_eq!(m.pos, m.goal, "side {side} density {density} seed {seed}");
                assert_eq!(m.steps_taken(), shortest, "the oracle is optimal");
                let expected = 1.0 - 0.01 * shortest as f64;
                assert!((m.total_reward() - expected).abs() < 1e-9);
                assert_eq!(m.oracle_action(), None);
            }
        }
    }

    #[test]
    fn dense_mazes_keep_walls_when_they_can() {
        // The fallback (an open grid) must be rare at default knobs.
        let walled = (0..200).filter(|&s| default_maze(s).walls != [0; 3]).count();
        assert!(walled >= 195, "{walled}");
    }

    #[test]
    fn walls_block_and_edges_block_and_steps_run_out() {
        let mut m = MazeEpisode::new(5, 0.0, 3, 0.1, 9);
        // Put the agent in the top-left corner, away from the goal.
        m.pos = 0;
        m.goal = 24;
        m.dist = bfs(5, &m.walls, 24);
        let before = m.state_digest();
        let out = m.step(0);
        assert_eq!((m.pos, out.done), (0, false));
        assert!(m.bumped && m.observation().contains("bumped"));
        assert_ne!(m.state_digest(), before, "a bump still advances the step counter");
        m.walls[0] |= 1 << 1;
        m.step(3);
        assert_eq!(m.pos, 0, "walls block");
        let out = m.step(1);
        assert_eq!(m.pos, 5);
        assert!(out.done && m.done(), "max_steps reached");
        assert!((out.reward + 0.1).abs() < 1e-12);
        assert_eq!(m.step(1), StepOutcome { reward: 0.0, done: true });
        assert_eq!(m.steps_taken(), 3);
        assert!(m.observation().contains("no steps are left"));
        let mut m = default_maze(3);
        let steps = m.steps;
        m.step(99);
        assert_eq!(m.steps, steps + 1);
        assert_eq!(m.action_name(99), "invalid");
    }

    #[test]
    fn snapshot_restore_and_fork_are_exact() {
        for seed in 0..50 {
            let mut m: Box<dyn Episode> = Box::new(default_maze(seed));
            m.step(3);
            let snap = m.snapshot();
            let d0 = snap.state_digest();
            assert_eq!(m.state_digest(), d0);
            let script = [0, 2, 1, 1, 3, 0, 2];
            let outcomes: Vec<StepOutcome> = script.iter().map(|&a| m.step(a)).collect();
            let after = m.state_digest();
            // Restore: replace the episode with a copy of the snapshot and replay.
            m = snap.snapshot();
            assert_eq!(m.state_digest(), d0);
            let again: Vec<StepOutcome> = script.iter().map(|&a| m.step(a)).collect();
            assert_eq!(outcomes, again);
            assert_eq!(m.state_digest(), after);
            // The snapshot itself was never touched.
            assert_eq!(snap.state_digest(), d0);

            let mut copies = fork(snap.as_ref(), 4);
            for c in copies.iter_mut() {
                for &a in &script {
                    c.step(a);
                }
            }
            assert!(copies.iter().all(|c| c.state_digest() == after));
            // Different actions give different states.
            let other = if copies[0].oracle_action() == Some(0) { 1 } else { 0 };
            copies[0].step(other);
            if !copies[1].done() {
                assert_ne!(copies[0].state_digest(), copies[1].state_digest());
            }
        }
    }

    #[test]
    fn parse_action_errors_are_typed() {
        let m = default_maze(0);
        assert_eq!(m.parse_action("I will go. Action: up"), Ok(0));
        assert_eq!(m.parse_action("action: LEFT."), Ok(2));
        assert_eq!(m.parse_action("Action: down\nAction: **right**"), Ok(3));
        assert_eq!(m.parse_action("Action: east"), Ok(3));
        assert_eq!(m.parse_action("Action: 1"), Ok(1));
        assert_eq!(m.parse_action(" Down.\n"), Ok(1));
        assert_eq!(m.parse_action("Action: 7"), Err(ParseError::OutOfSpace("7".into())));
        assert_eq!(m.parse_action("Action: jump"), Err(ParseError::Malformed("jump".into())));
        assert_eq!(m.parse_action("Action: go up"), Err(ParseError::Malformed("go up".into())));
        assert_eq!(m.parse_action("Action:   \nup"), Err(ParseError::Missing));
        assert_eq!(m.parse_action("I think I should go up"), Err(ParseError::Missing));
        assert_eq!(m.parse_action("2"), Err(ParseError::Missing));
        assert_eq!(m.parse_action(""), Err(ParseError::Missing));
        assert_eq!(m.parse_action("ÄÖ€ Action: ✓"), Err(ParseError::Malformed("✓".into())));
        for a in 0..4 {
            assert_eq!(m.parse_action(&format!("Action: {}", m.action_name(a))), Ok(a));
        }
    }

    #[test]
    fn observation_shows_the_grid() {
        let m = default_maze(5);
        let obs = m.observation();
        let rows: Vec<&str> =
            obs.lines().filter(|l| l.len() == 6 && l.chars().all(|c| "AG#.".contains(c))).collect();
        assert_eq!(rows.len(), 6, "{obs}");
        assert_eq!(rows.iter().map(|r| r.matches('A').count()).sum::<usize>(), 1);
        assert_eq!(rows.iter().map(|r| r.matches('G').count()).sum::<usize>(), 1);
        assert!(obs.ends_with("`Action: <up|down|left|right>`."));
    }
}
