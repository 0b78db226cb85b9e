//! The packed form of one step's metrics: the `step_metrics.packed` column.
//!
//! A step's metrics are one BLOB: a sequence of entries in ascending order of metric-name id
//! (`metric_names.id`), each the id as an unsigned LEB128 varint followed by the value's
//! IEEE-754 bits as 8 little-endian bytes. With a dozen metrics whose ids are below 128 that is
//! 9 bytes per value, against ~45 for a row per value holding the name as text (see
//! [`schema`](crate::schema) for the measurements). The bits are stored, not a REAL, so values
//! come back exactly, `-0.0` included.

/// One metric of a step: (name id, value bits).
pub(crate) type Entry = (i64, u64);

/// Packs entries that are sorted by id, each id once and positive.
pub(crate) fn pack(entries: &[Entry]) -> Vec<u8> {
    debug_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0), "entries must be sorted by id");
    let mut out = Vec::with_capacity(entries.len() * 10);
    for &(id, bits) in entries {
        let mut id = id as u64; // ids are positive (INTEGER PRIMARY KEY from 1)
        loop {
            let byte = (id & 0x7f) as u8;
            id >>= 7;
            if id == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
        out.extend_from_slice(&bits.to_le_bytes());
    }
    out
}

/// Unpacks a blob written by [`pack`]; `None` if it is malformed (truncated, an id out of
/// range or out of order), which only a hand-edited file can be.
pub(crate) fn unpack(mut blob: &[u8]) -> Option<Vec<Entry>> {
    let mut entries: Vec<Entry> = Vec::with_capacity(blob.len() / 9);
    while !blob.is_empty() {
        let mut id: u64 = 0;
        let mut shift = 0;
        loop {
            let (&byte, rest) = blob.split_first()?;
            blob = rest;
            if shift > 56 {
                return None; // more than 9 varint bytes: not an id we wrote
            }
            id |= u64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        let id = i64::try_from(id).ok().filter(|&id| id > 0)?;
        if entries.last().is_some_and(|&(last, _)| last >= id) {
            return None;
        }
        let (bits, rest) = blob.split_first_chunk::<8>()?;
        blob = rest;
        entries.push((id, u64::from_le_bytes(*bits)));
    }
    Some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_with_every_bit() {
        let entries: Vec<Entry> = vec![
            (1, (-0.0f64).to_bits()),
            (2, 5e-324f64.to_bits()),
            (127, f64::MAX.to_bits()),
            (128, (0.1f64 + 0.2).to_bits()),
            (300, u64::MAX), // bits of a NaN the store refuses, still packed faithfully
            (i64::MAX, 0),
        ];
        let blob = pack(&entries);
        // 1-byte ids below 128, 2 bytes up to 16383, 9 bytes for i64::MAX.
        assert_eq!(blob.len(), 3 * 9 + 2 * 10 + 17);
        assert_eq!(unpack(&blob), Some(entries));
        assert_eq!(unpack(&[]), Some(vec![]));
    }

    #[test]
    fn malformed_blobs_are_refused() {
        let good = pack(&[(1, 7), (2, 8)]);
        assert_eq!(unpack(&good[..good.len() - 1]), None, "truncated value");
        assert_eq!(unpack(&[0x81]), None, "truncated id");
        assert_eq!(unpack(&pack(&[(2, 7)]).into_iter().chain(pack(&[(1, 8)])).collect::<Vec<_>>()), None);
        assert_eq!(unpack(&[0, 0, 0, 0, 0, 0, 0, 0, 0]), None, "id 0");
        assert_eq!(unpack(&[0xff; 12]), None, "overlong id");
    }
}
