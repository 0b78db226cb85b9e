//! The single-turn task families, one module each.
//!
//! Every module exposes its [`FamilyInfo`](gristmill_core::task::FamilyInfo) as `INFO` and
//! its configured source type; the module documentation states the knobs, the answer space
//! and the feature encoding.

pub mod addition;
pub mod base_conversion;
pub mod bit_count;
pub mod comparison;
pub mod counting;
pub mod gcd;
pub mod modular;
pub mod multiplication;
pub mod sequence_next;
pub mod sort_position;
