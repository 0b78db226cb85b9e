//! Adam split by the Owen value of its update, with one optimizer state per coalition.
//!
//! Adam's update of a coordinate is `U = η m̂ / (√v̂ + ε)` with `m ← β₁m + (1−β₁)g`,
//! `v ← β₂v + (1−β₂)g²`. It is elementwise but not linear in `g`, so the step cannot be
//! split by splitting `g`. For every coalition `S` of cells this keeps the moments Adam
//! would have had if it had been fed only `g_S = Σ_{c∈S} g_c` at every step of the real
//! trajectory, `m_S` and `v_S`, and gives `S` the value
//!
//! `U(S) = η m̂_S / (max(√v̂_S, √v̂) + ε)`,
//!
//! where `v̂` is the real (full coalition's) second moment: `S`'s own momentum, divided by
//! the larger of its own and the real preconditioner's scale. That is the smaller in size
//! of two natural values, `S`'s own Adam step and `S`'s momentum under the real
//! preconditioner, which have the same sign. The cells' shares are the Owen value of `U`
//! ([`super::owen`]):
//!
//! * **efficiency**: the shares sum to `U(all)`, the real Adam step;
//! * **null**: a cell whose gradient was always zero gets exactly zero;
//! * **symmetry**: rows whose gradients have been bit-identical at every step get
//!   bit-identical shares (their shares are averaged, which keeps efficiency);
//! * **bounded**: `|U(S)| ≤ η|m̂_S|/(√v̂_S + ε) ≤ B_t` ([`adam_bound`]), so each share, a
//!   weighted mean of differences of two values, has `|φ| ≤ 2·B_t` whatever the other
//!   cells do;
//! * **the linear split where it was already bounded**: when no coalition's second moment
//!   exceeds the real one (the cells do not cancel), `U` is additive and the shares are
//!   exactly `η m̂_c/(√v̂ + ε)`, the familiar split with a shared preconditioner; only where
//!   cells cancel, and that split would amplify each share up to `1/ε`, does the bound
//!   take over;
//! * **continuous in each cell's scale**: a cell scaled towards zero gets a share that
//!   goes to zero (Adam fed a tiny channel alone would step as far as a large one; the
//!   real preconditioner in the `max` keeps such dust from earning a full step);
//! * **momentum** carried from earlier steps counts for the cells whose gradients built
//!   it: a coalition's moments hold only its own cells' history.
//!
//! Cost: per coordinate, one pair of moments per coalition of the cells that ever touched
//! it (16 for four pieces on one source, 208 for four pieces on three sources).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::owen::{bits, CellSet, Plan};

/// The Adam hyper-parameters the split needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamHyper {
    /// Learning rate η.
    pub eta: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator guard.
    pub eps: f64,
}

/// The largest `|U|` Adam can take on one coordinate at step `t` (1-based), whatever the
/// gradients: by Cauchy–Schwarz on `m = (1−β₁)Σ β₁^{t−τ} g_τ` against
/// `v = (1−β₂)Σ β₂^{t−τ} g_τ²`,
/// `|m̂|/√v̂ ≤ (1−β₁)/(1−β₁ᵗ) · √((1−β₂ᵗ)/(1−β₂)) · √(Σ_{k<t} (β₁²/β₂)^k)`, which is 1 at
/// `t = 1` (and attained when `g_τ ∝ (β₁/β₂)^{t−τ}`); `ε > 0` keeps `|U|` strictly below.
pub fn adam_bound(h: AdamHyper, t: u64) -> f64 {
    let ratio = h.beta1 * h.beta1 / h.beta2;
    let geometric: f64 = (0..t).map(|k| ratio.powi(k as i32)).sum();
    let c1 = 1.0 - h.beta1.powi(t as i32);
    let c2 = 1.0 - h.beta2.powi(t as i32);
    h.eta * (1.0 - h.beta1) / c1 * (c2 / (1.0 - h.beta2)).sqrt() * geometric.sqrt()
}

/// Coordinates that share one active cell set, with their coalition states.
///
/// Layout, for vectorized kernels: chunk-major, chunk `j` holding coordinates
/// `j·C..(j+1)·C` (`C` = [`COORD_CHUNK`]; the last chunk shorter) as `[slot][m | v][i]`.
#[derive(Debug, Clone)]
struct Block {
    plan: Arc<Plan>,
    /// Coordinates, ascending.
    coords: Vec<u32>,
    state: Vec<f64>,
    /// The proposed next `state` (written by a step, swapped in by a commit).
    next: Vec<f64>,
}

impl Block {
    /// Offset of coordinate position `i`'s value `mv` (0 = m, 1 = v) of slot `s`.
    fn offset(&self, i: usize, s: usize, mv: usize) -> usize {
        let slots = self.plan.coalitions.len();
        let chunk = i / COORD_CHUNK;
        let width = COORD_CHUNK.min(self.coords.len() - chunk * COORD_CHUNK);
        chunk * COORD_CHUNK * 2 * slots + (2 * s + mv) * width + i % COORD_CHUNK
    }

    /// Coordinate position `i`'s state as `[slot][m, v]`.
    fn coordinate(&self, i: usize) -> Vec<f64> {
        (0..self.plan.coalitions.len())
            .flat_map(|s| [self.state[self.offset(i, s, 0)], self.state[self.offset(i, s, 1)]])
            .collect()
    }

    /// A block from per-coordinate states `[slot][m, v]`, laid out by ascending coordinate.
    fn from_coordinates(plan: Arc<Plan>, mut list: Vec<(u32, Vec<f64>)>) -> Block {
        list.sort_by_key(|(k, _)| *k);
        let coords: Vec<u32> = list.iter().map(|(k, _)| *k).collect();
        let len = coords.len() * 2 * plan.coalitions.len();
        let mut block = Block { plan, coords, state: vec![0.0; len], next: vec![0.0; len] };
        for (i, (_, st)) in list.iter().enumerate() {
            for s in 0..block.plan.coalitions.len() {
                let (m, v) = (block.offset(i, s, 0), block.offset(i, s, 1));
                block.state[m] = st[2 * s];
                block.state[v] = st[2 * s + 1];
            }
        }
        block
    }
}

/// Per-coordinate coalition states of a split Adam.
#[derive(Debug, Clone)]
pub struct AdamSplit {
    columns: usize,
    /// Blocks by active cell set, ascending.
    blocks: Vec<Block>,
    plans: HashMap<CellSet, Arc<Plan>>,
    /// Class of every row: rows with bit-identical gradient histories share one.
    row_class: Vec<u32>,
    /// The classes after the proposed step.
    next_class: Vec<u32>,
}

/// Coordinates per chunk of a block (fixed, so nothing depends on the thread count).
const COORD_CHUNK: usize = 256;

impl AdamSplit {
    /// Fresh state: no cell has touched any coordinate; all rows are alike.
    pub fn new(rows: usize, columns: usize, len: usize) -> AdamSplit {
        let mut split = AdamSplit {
            columns,
            blocks: Vec::new(),
            plans: HashMap::new(),
            row_class: vec![0; rows],
            next_class: vec![0; rows],
        };
        let plan = split.plan(0);
        let list = (0..len as u32).map(|k| (k, vec![0.0; 2])).collect();
        split.blocks.push(Block::from_coordinates(plan, list));
        split
    }

    /// `(active cells, coordinates, coalitions per coordinate, sampled)` of every block.
    pub fn blocks(&self) -> Vec<(CellSet, usize, usize, bool)> {
        self.blocks
            .iter()
            .map(|b| (b.plan.active, b.coords.len(), b.plan.coalitions.len(), b.plan.sampled))
            .collect()
    }

    fn plan(&mut self, active: CellSet) -> Arc<Plan> {
        let columns = self.columns;
        self.plans.entry(active).or_insert_with(|| Arc::new(Plan::new(active, columns))).clone()
    }

    /// Proposes step `t` (1-based): the per-cell shares from per-cell gradients
    /// (`grads[cell]`, empty = all zero), and the real update (the full coalition's). The
    /// state moves only at [`commit`](AdamSplit::commit), so a step that fails later leaves
    /// the optimizer as it was. (Coordinates a new cell touched do move to their grown
    /// blocks at once: that changes the representation, not the state.)
    pub fn propose(
        &mut self,
        h: AdamHyper,
        t: u64,
        grads: &[Vec<f64>],
        len: usize,
    ) -> (Vec<Vec<f64>>, Vec<f64>) {
        self.grow(grads, len);
        self.next_class = self.refine_classes(grads);
        let c1 = 1.0 - h.beta1.powi(t as i32);
        let c2 = 1.0 - h.beta2.powi(t as i32);
        // One parallel pass over the chunks of every block.
        type Chunk<'a> = (&'a Plan, &'a [u32], &'a [f64], &'a mut [f64]);
        let mut chunks: Vec<Chunk<'_>> = Vec::new();
        for block in self.blocks.iter_mut().filter(|b| b.plan.active != 0) {
            let width = COORD_CHUNK * 2 * block.plan.coalitions.len();
            let pieces = block
                .coords
                .chunks(COORD_CHUNK)
                .zip(block.state.chunks(width))
                .zip(block.next.chunks_mut(width));
            for ((coords, state), next) in pieces {
                chunks.push((&block.plan, coords, state, next));
            }
        }
        // (plan, coordinates, shares, real updates) per chunk.
        type Done<'a> = (&'a Plan, &'a [u32], Vec<f64>, Vec<f64>);
        let results: Vec<Done<'_>> = chunks
            .into_par_iter()
            .map(|(plan, coords, state, next)| {
                let (phi, full) = chunk_shares(plan, coords, state, next, h, c1, c2, grads);
                (plan, coords, phi, full)
            })
            .collect();
        let mut out: Vec<Vec<f64>> = vec![Vec::new(); grads.len()];
        let mut real = vec![0.0; len];
        for (plan, coords, phi, full) in results {
            let n = coords.len();
            for (j, c) in bits(plan.active).enumerate() {
                let column = out[c].is_empty().then(|| vec![0.0; len]);
                if let Some(v) = column {
                    out[c] = v;
                }
                for (i, &k) in coords.iter().enumerate() {
                    out[c][k as usize] = phi[j * n + i];
                }
            }
            for (i, &k) in coords.iter().enumerate() {
                real[k as usize] = full[i];
            }
        }
        self.symmetrize(&self.next_class, &mut out);
        let cells = out.into_iter().map(|v| if v.is_empty() { vec![0.0; len] } else { v }).collect();
        (cells, real)
    }

    /// Makes the proposed step's state the state.
    pub fn commit(&mut self) {
        for b in &mut self.blocks {
            std::mem::swap(&mut b.state, &mut b.next);
        }
        self.row_class.clone_from(&self.next_class);
    }

    /// Moves every coordinate that a new cell touched this step to the block of its grown
    /// active set; each new coalition starts from the state of its restriction to the old
    /// cells (exactly its state, since the new cells' past gradients were zero).
    fn grow(&mut self, grads: &[Vec<f64>], len: usize) {
        let mut touched = vec![0 as CellSet; len];
        for (c, g) in grads.iter().enumerate() {
            for (t, v) in touched.iter_mut().zip(g) {
                if *v != 0.0 {
                    *t |= 1 << c;
                }
            }
        }
        let grows = |b: &Block| b.coords.iter().any(|&k| touched[k as usize] & !b.plan.active != 0);
        if !self.blocks.iter().any(grows) {
            return;
        }
        // Every coordinate of an affected block, by its grown active set.
        let mut lists: BTreeMap<CellSet, Vec<(u32, Vec<f64>)>> = BTreeMap::new();
        let (affected, kept): (Vec<Block>, Vec<Block>) =
            std::mem::take(&mut self.blocks).into_iter().partition(grows);
        for block in affected {
            for (i, &k) in block.coords.iter().enumerate() {
                let old = &block.plan;
                let st = block.coordinate(i);
                let active = old.active | touched[k as usize];
                let state = if active == old.active {
                    st
                } else {
                    let plan = self.plan(active);
                    plan.coalitions
                        .iter()
                        .flat_map(|&s| {
                            let from = old.index[&(s & old.active)] as usize;
                            [st[2 * from], st[2 * from + 1]]
                        })
                        .collect()
                };
                lists.entry(active).or_default().push((k, state));
            }
        }
        let mut blocks = kept;
        for (active, mut list) in lists {
            if let Some(pos) = blocks.iter().position(|b| b.plan.active == active) {
                let b = blocks.remove(pos);
                list.extend((0..b.coords.len()).map(|i| (b.coords[i], b.coordinate(i))));
            }
            let plan = self.plan(active);
            blocks.push(Block::from_coordinates(plan, list));
        }
        blocks.sort_by_key(|b| b.plan.active);
        self.blocks = blocks;
    }

    /// The row classes refined by this step: members whose gradients differ split.
    fn refine_classes(&self, grads: &[Vec<f64>]) -> Vec<u32> {
        let cols = self.columns;
        let same = |a: usize, b: usize| {
            (0..cols).all(|s| {
                let (x, y) = (&grads[a * cols + s], &grads[b * cols + s]);
                let n = x.len().max(y.len());
                (0..n).all(|k| x.get(k).copied().unwrap_or(0.0) == y.get(k).copied().unwrap_or(0.0))
            })
        };
        let mut reps: Vec<(u32, usize, u32)> = Vec::new(); // (old class, representative, new class)
        self.row_class
            .iter()
            .enumerate()
            .map(|(r, &old)| match reps.iter().find(|&&(c, rep, _)| c == old && same(rep, r)) {
                Some(&(_, _, class)) => class,
                None => {
                    let class = reps.len() as u32;
                    reps.push((old, r, class));
                    class
                }
            })
            .collect()
    }

    /// Rows of one class get the mean of their shares, cell by cell.
    fn symmetrize(&self, row_class: &[u32], out: &mut [Vec<f64>]) {
        let cols = self.columns;
        let classes = row_class.iter().copied().max().map_or(0, |m| m as usize + 1);
        for class in 0..classes as u32 {
            let rows: Vec<usize> = (0..row_class.len()).filter(|&r| row_class[r] == class).collect();
            if rows.len() < 2 {
                continue;
            }
            for s in 0..cols {
                let len = rows.iter().map(|&r| out[r * cols + s].len()).max().unwrap_or(0);
                if len == 0 {
                    continue;
                }
                for k in 0..len {
                    let sum: f64 =
                        rows.iter().map(|&r| out[r * cols + s].get(k).copied().unwrap_or(0.0)).sum();
                    let mean = sum / rows.len() as f64;
                    for &r in &rows {
                        let v = &mut out[r * cols + s];
                        if v.is_empty() {
                            *v = vec![0.0; len];
                        }
                        v[k] = mean;
                    }
                }
            }
        }
    }
}

/// Shares `[active cell][coordinate]` and real updates of one chunk of a block: every
/// coalition's Adam update, then every cell's weighted marginals. Loops run over the
/// chunk's coordinates innermost, so they vectorize; the arithmetic per coordinate is the
/// same as ordinary Adam's.
#[allow(clippy::too_many_arguments)]
fn chunk_shares(
    plan: &Plan,
    coords: &[u32],
    state: &[f64],
    next: &mut [f64],
    h: AdamHyper,
    c1: f64,
    c2: f64,
    grads: &[Vec<f64>],
) -> (Vec<f64>, Vec<f64>) {
    let (n, slots) = (coords.len(), plan.coalitions.len());
    let cells: Vec<usize> = bits(plan.active).collect();
    let mut position = [0usize; super::owen::MAX_CELLS];
    let mut local = vec![0.0; cells.len() * n];
    for (j, &c) in cells.iter().enumerate() {
        position[c] = j;
        for (i, &k) in coords.iter().enumerate() {
            local[j * n + i] = grads[c].get(k as usize).copied().unwrap_or(0.0);
        }
    }
    let mut g = vec![0.0; n];
    for (s, &coalition) in plan.coalitions.iter().enumerate() {
        // `g_S` summed in ascending cell order, as the real total gradient is.
        g.fill(0.0);
        for c in bits(coalition) {
            let src = &local[position[c] * n..(position[c] + 1) * n];
            g.iter_mut().zip(src).for_each(|(a, b)| *a += b);
        }
        let (m_old, v_old) = state[2 * s * n..(2 * s + 2) * n].split_at(n);
        let (m_new, v_new) = next[2 * s * n..(2 * s + 2) * n].split_at_mut(n);
        for i in 0..n {
            // The same operations, in the same order, as ordinary Adam.
            m_new[i] = h.beta1 * m_old[i] + (1.0 - h.beta1) * g[i];
            v_new[i] = h.beta2 * v_old[i] + (1.0 - h.beta2) * g[i] * g[i];
        }
    }
    // The real preconditioner's scale √v̂, from the full coalition's second moment.
    let full_v = &next[(2 * plan.full as usize + 1) * n..(2 * plan.full as usize + 2) * n];
    let real_scale: Vec<f64> = full_v.iter().map(|v| (v / c2).sqrt()).collect();
    let mut u = vec![0.0; slots * n];
    for s in 0..slots {
        let (m, v) = next[2 * s * n..(2 * s + 2) * n].split_at(n);
        let u_s = &mut u[s * n..(s + 1) * n];
        for i in 0..n {
            // For the full coalition the max is its own scale: ordinary Adam, bit for bit.
            u_s[i] = h.eta * (m[i] / c1) / ((v[i] / c2).sqrt().max(real_scale[i]) + h.eps);
        }
    }
    let full = u[plan.full as usize * n..(plan.full as usize + 1) * n].to_vec();
    let mut phi = vec![0.0; cells.len() * n];
    for term in &plan.terms {
        let out = &mut phi[position[term.cell as usize] * n..(position[term.cell as usize] + 1) * n];
        let (with, without) = (term.with as usize * n, term.without as usize * n);
        let (uw, uo) = (&u[with..with + n], &u[without..without + n]);
        for i in 0..n {
            out[i] += term.weight * (uw[i] - uo[i]);
        }
    }
    (phi, full)
}

/// The checkpointed form of an [`AdamSplit`]: blocks by active cell set (ascending), each
/// with its coordinates ascending and their coalition states in plan order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdamSplitState {
    columns: usize,
    row_class: Vec<u32>,
    blocks: Vec<BlockState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct BlockState {
    /// The active cell set as `[low 64 bits, high 64 bits]`.
    active: [u64; 2],
    coords: Vec<u32>,
    state: Vec<f64>,
}

impl AdamSplit {
    /// The canonical state (independent of the order coordinates joined their blocks).
    pub fn to_state(&self) -> AdamSplitState {
        let mut blocks: Vec<BlockState> = self
            .blocks
            .iter()
            .map(|b| BlockState {
                active: [b.plan.active as u64, (b.plan.active >> 64) as u64],
                coords: b.coords.clone(),
                state: (0..b.coords.len()).flat_map(|i| b.coordinate(i)).collect(),
            })
            .collect();
        blocks.sort_by_key(|b| (b.active[1], b.active[0]));
        AdamSplitState { columns: self.columns, row_class: self.row_class.clone(), blocks }
    }

    /// Restores a state for `rows` rows over `len` parameters, checking that it fits.
    pub fn from_state(state: AdamSplitState, rows: usize, len: usize) -> Result<AdamSplit, String> {
        if state.row_class.len() != rows || state.columns == 0 {
            return Err(format!(
                "optimizer state has {} rows of {} columns; the trainer has {rows} rows",
                state.row_class.len(),
                state.columns
            ));
        }
        let mut split = AdamSplit {
            columns: state.columns,
            blocks: Vec::new(),
            plans: HashMap::new(),
            next_class: state.row_class.clone(),
            row_class: state.row_class,
        };
        let mut seen = vec![false; len];
        for b in state.blocks {
            let active = b.active[0] as CellSet | (b.active[1] as CellSet) << 64;
            let cells = rows * split.columns;
            if cells > super::owen::MAX_CELLS || (cells < 128 && active >> cells != 0) {
                return Err(format!(
                    "optimizer state names a cell beyond the {rows} × {} layout",
                    split.columns
                ));
            }
            let plan = split.plan(active);
            if b.state.len() != b.coords.len() * 2 * plan.coalitions.len() {
                return Err(format!("optimizer state of cell set {active:#x} has the wrong length"));
            }
            for &k in &b.coords {
                match seen.get_mut(k as usize) {
                    Some(s) if !*s => *s = true,
                    _ => return Err(format!("optimizer state lists parameter {k} twice or out of range")),
                }
            }
            let width = 2 * plan.coalitions.len();
            let list = b
                .coords
                .iter()
                .enumerate()
                .map(|(i, &k)| (k, b.state[i * width..(i + 1) * width].to_vec()))
                .collect();
            split.blocks.push(Block::from_coordinates(plan, list));
        }
        if seen.iter().any(|s| !s) {
            return Err(format!("optimizer state does not cover all {len} parameters"));
        }
        split.blocks.sort_by_key(|b| b.plan.active);
        Ok(split)
    }
}

impl PartialEq for AdamSplit {
    /// Equal when the canonical states are: the same bits for the same coordinates.
    fn eq(&self, other: &Self) -> bool {
        self.to_state() == other.to_state()
    }
}
