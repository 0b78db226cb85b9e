//! The coalitions of one coordinate's update game and every player's weighted marginals.
//!
//! Players are **cells** (credit row × source column) grouped a priori into **rows** (the
//! pieces). The split is the **Owen value** of that game: Shapley between rows, then
//! Shapley between a row's cells inside it,
//!
//! `φ_j = Σ_{Q ⊆ R∖{a}} Σ_{T ⊆ a∖{j}} w_n(|Q|) · w_{c_a}(|T|) · [U(Q̄ ∪ T ∪ {j}) − U(Q̄ ∪ T)]`,
//!
//! where `j` is a cell of row `a`, `R` the rows present (`n` of them), `Q̄` all cells of the
//! rows in `Q`, `c_a` the cells of row `a`, and `w_n(q) = q!(n−q−1)!/n!` the Shapley weight.
//! A row's cells sum to the row's Shapley value in the game between rows, so a piece's
//! credit does not depend on how many sources it is spread over.
//!
//! Only cells whose gradient at the coordinate was ever non-zero take part: a cell with an
//! all-zero history is a null player, whose marginal is exactly zero and whose absence
//! leaves everyone else's value unchanged. When the exact game would need more than
//! [`EXACT_COALITIONS`] coalitions, the plan samples [`SAMPLED_ORDERS`] fixed orders
//! consistent with the rows (a random order of rows, a random order of cells inside each)
//! and averages the marginals along them: still efficient and null exactly, unbiased for
//! the Owen value.
//!
//! Every coalition is a set of cells (bit `c` = global cell `c`). The coalitions of a plan
//! are closed under restriction to a smaller active set: restricting an Owen coalition (or a
//! prefix of a row-consistent order) to fewer cells gives another one. That is what lets a
//! coordinate's state grow when a new cell first touches it: the new coalition `S` starts
//! from the stored state of `S ∩ old`, which is exactly what `S` would have had, since the
//! new cell's past gradients were zero.

use std::collections::HashMap;

use gristmill_core::rng::{stream, Purpose};
use rand::Rng;

/// A set of cells as a bitmask (bit `c` = cell `c`).
pub type CellSet = u128;

/// The most cells a layout may have (one bit each in a [`CellSet`]).
pub const MAX_CELLS: usize = 128;

/// The largest exact game, in coalitions per coordinate; beyond it the plan samples.
/// 4 rows × 3 sources need 208; 8 rows of one source need 256.
pub const EXACT_COALITIONS: usize = 1024;

/// Row-consistent orders averaged when the exact game is too large.
pub const SAMPLED_ORDERS: usize = 64;

/// One weighted marginal: `weight · (U(with) − U(without))` counts toward `cell`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Term {
    /// Global cell id.
    pub cell: u16,
    /// Owen (or 1/orders) weight.
    pub weight: f64,
    /// Slot of the coalition with the cell.
    pub with: u32,
    /// Slot of the coalition without it.
    pub without: u32,
}

/// The game of one active cell set.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The cells that take part.
    pub active: CellSet,
    /// Coalitions, one optimizer state each; slot 0 is the empty coalition.
    pub coalitions: Vec<CellSet>,
    /// Slot of every coalition.
    pub index: HashMap<CellSet, u32>,
    /// Marginal terms, grouped by cell in ascending cell order.
    pub terms: Vec<Term>,
    /// Slot of the full coalition: the real optimizer state.
    pub full: u32,
    /// Whether the marginals are sampled orders rather than the exact Owen value.
    pub sampled: bool,
}

/// Cells of each row present in `active`, rows ascending (`columns` cells per row).
fn rows_of(active: CellSet, columns: usize) -> Vec<CellSet> {
    let mut rows: Vec<(usize, CellSet)> = Vec::new();
    for c in bits(active) {
        let r = c / columns;
        match rows.last_mut() {
            Some((row, set)) if *row == r => *set |= 1 << c,
            _ => rows.push((r, 1 << c)),
        }
    }
    rows.into_iter().map(|(_, s)| s).collect()
}

/// Set bits of `s`, ascending.
pub fn bits(mut s: CellSet) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (s != 0).then(|| {
            let c = s.trailing_zeros() as usize;
            s &= s - 1;
            c
        })
    })
}

/// Subsets of `s` (all `2^|s|`, in a fixed order: descending from `s` to the empty set).
fn subsets(s: CellSet) -> impl Iterator<Item = CellSet> {
    let mut next = Some(s);
    std::iter::from_fn(move || {
        let cur = next?;
        next = (cur != 0).then(|| (cur - 1) & s);
        Some(cur)
    })
}

/// The Shapley weight `q!(n−q−1)!/n!` of a coalition of `q` others among `n` players.
pub fn shapley_weight(n: usize, q: usize) -> f64 {
    // 1 / (n · C(n−1, q)), exact in f64 for the sizes used here.
    let mut binom = 1.0f64;
    for i in 0..q {
        binom = binom * (n - 1 - i) as f64 / (i + 1) as f64;
    }
    1.0 / (n as f64 * binom)
}

/// Coalitions the exact Owen value needs for `rows` (cells per row).
fn exact_count(rows: &[CellSet]) -> usize {
    let n = rows.len() as u32;
    let partial: usize = rows.iter().map(|r| (1usize << r.count_ones()) - 2).sum();
    (1usize << n) + (1usize << n.saturating_sub(1)) * partial
}

impl Plan {
    /// The plan of the cells `active` in a layout with `columns` cells per row.
    pub fn new(active: CellSet, columns: usize) -> Plan {
        let rows = rows_of(active, columns);
        let too_big = rows.len() >= usize::BITS as usize - 1
            || rows.iter().any(|r| r.count_ones() >= 30)
            || exact_count(&rows) > EXACT_COALITIONS;
        let mut plan = Plan {
            active,
            coalitions: vec![0],
            index: HashMap::from([(0, 0)]),
            terms: Vec::new(),
            full: 0,
            sampled: too_big,
        };
        if too_big {
            plan.sampled_terms(&rows, columns);
        } else {
            plan.exact_terms(&rows);
        }
        plan.terms.sort_by_key(|t| t.cell); // stable: per-cell order is construction order
        plan.full = plan.slot(active);
        plan
    }

    /// The slot of coalition `s`, added if new.
    fn slot(&mut self, s: CellSet) -> u32 {
        if let Some(&i) = self.index.get(&s) {
            return i;
        }
        let i = self.coalitions.len() as u32;
        self.coalitions.push(s);
        self.index.insert(s, i);
        i
    }

    fn exact_terms(&mut self, rows: &[CellSet]) {
        let n = rows.len();
        for (a, &row) in rows.iter().enumerate() {
            let c_a = row.count_ones() as usize;
            for cell in bits(row) {
                let others_of_row = row & !(1 << cell);
                for q in 0..(1usize << n) {
                    if q >> a & 1 == 1 {
                        continue;
                    }
                    let full_rows: CellSet =
                        (0..n).filter(|&b| q >> b & 1 == 1).fold(0, |acc, b| acc | rows[b]);
                    let wq = shapley_weight(n, q.count_ones() as usize);
                    for t in subsets(others_of_row) {
                        let weight = wq * shapley_weight(c_a, t.count_ones() as usize);
                        let without = self.slot(full_rows | t);
                        let with = self.slot(full_rows | t | 1 << cell);
                        self.terms.push(Term { cell: cell as u16, weight, with, without });
                    }
                }
            }
        }
    }

    /// Marginals along [`SAMPLED_ORDERS`] global row-consistent orders restricted to the
    /// active cells. The orders are the same for every coordinate and every run (a fixed
    /// stream), which keeps the coalitions closed under restriction.
    fn sampled_terms(&mut self, rows: &[CellSet], columns: usize) {
        let weight = 1.0 / SAMPLED_ORDERS as f64;
        let row_ids: Vec<usize> = rows.iter().map(|r| r.trailing_zeros() as usize / columns).collect();
        for order in 0..SAMPLED_ORDERS as u64 {
            let (row_rank, column_rank) = global_order(order, columns);
            let mut by_row: Vec<usize> = (0..rows.len()).collect();
            by_row.sort_by_key(|&i| row_rank(row_ids[i]));
            let mut prefix: CellSet = 0;
            for i in by_row {
                let mut cells: Vec<usize> = bits(rows[i]).collect();
                cells.sort_by_key(|&c| column_rank[c % columns]);
                for cell in cells {
                    let without = self.slot(prefix);
                    prefix |= 1 << cell;
                    let with = self.slot(prefix);
                    self.terms.push(Term { cell: cell as u16, weight, with, without });
                }
            }
        }
    }
}

/// The `order`-th global order: a rank for every row (a keyed hash, so no row count is
/// needed) and a permutation of the columns.
fn global_order(order: u64, columns: usize) -> (impl Fn(usize) -> u64, Vec<u64>) {
    let purpose = Purpose::named("owen-orders");
    let row_rank = move |row: usize| stream(order, purpose, 0, row as u64).random::<u64>();
    let column_rank = (0..columns).map(|c| stream(order, purpose, 1, c as u64).random::<u64>()).collect();
    (row_rank, column_rank)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exact Owen values of a game given by `value(coalition)`, from the plan's terms.
    fn owen(plan: &Plan, value: &dyn Fn(CellSet) -> f64) -> HashMap<u16, f64> {
        let u: Vec<f64> = plan.coalitions.iter().map(|&s| value(s)).collect();
        let mut phi = HashMap::new();
        for t in &plan.terms {
            *phi.entry(t.cell).or_insert(0.0) += t.weight * (u[t.with as usize] - u[t.without as usize]);
        }
        phi
    }

    /// Brute-force Shapley over the rows of `active` for a value of row sets.
    fn shapley_rows(n: usize, value: &dyn Fn(usize) -> f64) -> Vec<f64> {
        (0..n)
            .map(|i| {
                (0..1usize << n)
                    .filter(|q| q >> i & 1 == 0)
                    .map(|q| shapley_weight(n, q.count_ones() as usize) * (value(q | 1 << i) - value(q)))
                    .sum()
            })
            .collect()
    }

    #[test]
    fn shapley_weights_of_each_size_sum_to_one() {
        for n in 1..=12 {
            let total: f64 = (0..n)
                .map(|q| shapley_weight(n, q) * (1..=q).fold(1.0, |b, i| b * (n - i) as f64 / i as f64))
                .sum();
            assert!((total - 1.0).abs() < 1e-14, "n={n}: {total}");
        }
        assert_eq!(shapley_weight(3, 0), 1.0 / 3.0);
        assert_eq!(shapley_weight(3, 1), 1.0 / 6.0);
    }

    #[test]
    fn four_rows_of_three_sources_need_208_coalitions_and_stay_exact() {
        // Columns = 4 (3 sources + global); rows 0..4 active on columns 0..3.
        let active: CellSet = (0..4).flat_map(|r| (0..3).map(move |s| r * 4 + s)).fold(0, |a, c| a | 1 << c);
        let plan = Plan::new(active, 4);
        assert!(!plan.sampled);
        assert_eq!(plan.coalitions.len(), 208);
        assert_eq!(plan.coalitions[plan.full as usize], active);
        // 12 cells × 2^(4−1) × 2^(3−1) terms.
        assert_eq!(plan.terms.len(), 12 * 8 * 4);
    }

    #[test]
    fn owen_is_efficient_and_rows_get_their_shapley_value_in_the_game_between_rows() {
        // A non-additive game: U(S) = tanh(Σ_{c∈S} a_c) with cancelling a's.
        let a = [0.9, -1.7, 0.4, 2.2, -0.3, 0.05, 1.1];
        let columns = 3;
        let active: CellSet = 0b111_1111; // rows {0,1,2}, {3,4,5}, {6}
        let value = |s: CellSet| bits(s).map(|c| a[c]).sum::<f64>().tanh();
        let plan = Plan::new(active, columns);
        let phi = owen(&plan, &value);
        let total: f64 = phi.values().sum();
        assert!((total - value(active)).abs() < 1e-14, "{total} vs {}", value(active));
        let row_cells = [0b000_0111u128, 0b011_1000, 0b100_0000];
        let row_value =
            |q: usize| value((0..3).filter(|r| q >> r & 1 == 1).fold(0, |acc, r| acc | row_cells[r]));
        let expect = shapley_rows(3, &row_value);
        for (r, cells) in row_cells.iter().enumerate() {
            let got: f64 = bits(*cells).map(|c| phi[&(c as u16)]).sum();
            assert!((got - expect[r]).abs() < 1e-14, "row {r}: {got} vs {}", expect[r]);
        }
    }

    #[test]
    fn a_cell_that_never_moved_is_left_out_and_the_others_keep_their_values() {
        let a = [0.9, -1.7, 0.4, 2.2];
        let value = |s: CellSet| bits(s).map(|c| a[c]).sum::<f64>().tanh();
        let with_all = owen(&Plan::new(0b1111, 2), &value);
        // Cell 3 (row 1) with a zero gradient is a null player: same values without it.
        let value0 = |s: CellSet| bits(s).map(|c| if c == 3 { 0.0 } else { a[c] }).sum::<f64>().tanh();
        let with_null = owen(&Plan::new(0b1111, 2), &value0);
        let without = owen(&Plan::new(0b0111, 2), &value0);
        assert_eq!(with_null[&3], 0.0);
        for c in 0..3u16 {
            assert!((with_null[&c] - without[&c]).abs() < 1e-15, "cell {c}");
        }
        assert_ne!(with_all[&0], without[&0]);
    }

    #[test]
    fn coalitions_are_closed_under_restriction_to_a_smaller_active_set() {
        for (big, small, columns) in
            [(0xFFFu128, 0x0F3u128, 4), (0xFFFF, 0x1234, 4), (u128::MAX >> 60, 0xF0F0F, 8)]
        {
            let (p_big, p_small) = (Plan::new(big, columns), Plan::new(small & big, columns));
            for &s in &p_big.coalitions {
                assert!(p_small.index.contains_key(&(s & small)), "{s:#x} ∩ {small:#x} missing");
            }
        }
    }

    #[test]
    fn large_games_sample_row_consistent_orders_that_stay_efficient() {
        // 12 rows of 4 columns: the exact game would need far more than the limit.
        let active: CellSet = (0..48).fold(0, |a, c| a | 1 << c);
        let plan = Plan::new(active, 4);
        assert!(plan.sampled);
        let a: Vec<f64> = (0..48).map(|c| ((c * 37 % 11) as f64 - 5.0) / 3.0).collect();
        let value = |s: CellSet| bits(s).map(|c| a[c]).sum::<f64>().tanh();
        let phi = owen(&plan, &value);
        let total: f64 = phi.values().sum();
        assert!((total - value(active)).abs() < 1e-13, "{total}");
        // Every term's `with` adds exactly its cell to `without`.
        for t in &plan.terms {
            let (w, wo) = (plan.coalitions[t.with as usize], plan.coalitions[t.without as usize]);
            assert_eq!(w, wo | 1 << t.cell);
            assert_eq!(wo >> t.cell & 1, 0);
        }
    }

    #[test]
    fn sampled_orders_estimate_the_exact_owen_value() {
        // Force sampling on a game small enough to also compute exactly: compare.
        let a = [0.9, -1.7, 0.4, 2.2, -0.3, 0.05];
        let value = |s: CellSet| bits(s).map(|c| a[c]).sum::<f64>().tanh();
        let exact = owen(&Plan::new(0b11_1111, 2), &value);
        let mut sampled_plan = Plan {
            active: 0b11_1111,
            coalitions: vec![0],
            index: HashMap::from([(0, 0)]),
            terms: vec![],
            full: 0,
            sampled: true,
        };
        sampled_plan.sampled_terms(&rows_of(0b11_1111, 2), 2);
        let sampled = owen(&sampled_plan, &value);
        for c in 0..6u16 {
            // 64 orders: the standard error of each marginal mean is below ~0.1 here.
            assert!((sampled[&c] - exact[&c]).abs() < 0.25, "cell {c}: {} vs {}", sampled[&c], exact[&c]);
        }
    }
}
