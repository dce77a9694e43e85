//! `--shard I/N`: one of N parts of a plan, so that N CI jobs (on N lab hosts) run the matrix
//! together and their results are merged afterwards.
//!
//! The parts come from the cells sorted by firmware id, then scenario id: part I takes the I-th
//! of N contiguous runs of that order, the parts differing in size by at most one cell. The
//! same lab files and the same selection give the same parts on every machine and in every run,
//! whatever order the ids were given in; a firmware's cells stay together, so a device kept
//! between cells of one firmware is reused within a part.

use std::fmt;
use std::str::FromStr;

/// Part `index` (1-based) of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    index: usize,
    count: usize,
}

/// A `--shard` value that is not `I/N` with 1 ≤ I ≤ N.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// Not two numbers around a `/` (the value as given).
    #[error("`{0}` is not I/N (e.g. 2/4)")]
    Syntax(String),
    /// N is 0.
    #[error("shard count must be at least 1")]
    NoParts,
    /// I is 0 or more than N.
    #[error("shard {index} of {count}: I must be from 1 to {count}")]
    OutOfRange {
        /// I, as given.
        index: usize,
        /// N.
        count: usize,
    },
}

impl Shard {
    /// Part `index` of `count`; 1 ≤ `index` ≤ `count`.
    pub fn new(index: usize, count: usize) -> Result<Self, ShardError> {
        if count == 0 {
            return Err(ShardError::NoParts);
        }
        if !(1..=count).contains(&index) {
            return Err(ShardError::OutOfRange { index, count });
        }
        Ok(Self { index, count })
    }

    /// Which part, from 1.
    pub fn index(self) -> usize {
        self.index
    }

    /// How many parts.
    pub fn count(self) -> usize {
        self.count
    }

    /// Which of `keys` (one `(firmware, scenario)` per cell) are in this part, as positions in
    /// `keys`, in their original order.
    pub(crate) fn select(self, keys: &[(&str, &str)]) -> Vec<usize> {
        let mut sorted: Vec<usize> = (0..keys.len()).collect();
        sorted.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
        let total = keys.len();
        let (start, end) = ((self.index - 1) * total / self.count, self.index * total / self.count);
        let mut chosen = sorted[start..end].to_vec();
        chosen.sort_unstable();
        chosen
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let syntax = || ShardError::Syntax(text.to_owned());
        let (index, count) = text.split_once('/').ok_or_else(syntax)?;
        let number = |s: &str| s.trim().parse::<usize>().map_err(|_| syntax());
        Self::new(number(index)?, number(count)?)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_values_are_checked() {
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, count: 4 }));
        assert_eq!("1/1".parse(), Ok(Shard { index: 1, count: 1 }));
        assert_eq!("0/3".parse::<Shard>(), Err(ShardError::OutOfRange { index: 0, count: 3 }));
        assert_eq!("4/3".parse::<Shard>(), Err(ShardError::OutOfRange { index: 4, count: 3 }));
        assert_eq!("1/0".parse::<Shard>(), Err(ShardError::NoParts));
        for bad in ["", "2", "a/b", "1/2/3", "-1/2", "1.5/2"] {
            assert!(matches!(bad.parse::<Shard>(), Err(ShardError::Syntax(_))), "{bad:?}");
        }
    }

    #[test]
    fn parts_cover_every_cell_once_balanced_and_independent_of_order() {
        let firmware = ["b", "a", "c"];
        let scenarios = ["y", "x", "z", "w"];
        let keys: Vec<(&str, &str)> = firmware.iter().flat_map(|f| scenarios.iter().map(move |s| (*f, *s))).collect();
        let mut reversed = keys.clone();
        reversed.reverse();
        for count in 1..=14 {
            let mut seen = vec![0; keys.len()];
            let mut sizes = Vec::new();
            for index in 1..=count {
                let shard = Shard::new(index, count).unwrap();
                let part = shard.select(&keys);
                sizes.push(part.len());
                for &at in &part {
                    seen[at] += 1;
                }
                // The same cells whatever order the plan lists them in.
                let mut names: Vec<_> = part.iter().map(|&at| keys[at]).collect();
                let mut again: Vec<_> = shard.select(&reversed).iter().map(|&at| reversed[at]).collect();
                names.sort();
                again.sort();
                assert_eq!(names, again, "{shard}");
            }
            assert!(seen.iter().all(|&n| n == 1), "every cell in exactly one of {count} parts");
            assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "{sizes:?}");
        }
        // Contiguous in the sorted order: the first part of 3 is firmware `a`'s cells.
        let first: Vec<_> = Shard::new(1, 3).unwrap().select(&keys).iter().map(|&at| keys[at]).collect();
        assert_eq!(first, [("a", "y"), ("a", "x"), ("a", "z"), ("a", "w")]);
    }
}
