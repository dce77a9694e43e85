//! The run as a grid: firmware rows × scenario columns, each sorted by id, so shards merged in
//! any order draw the same picture. The last result of a cell wins.

use std::collections::{BTreeSet, HashMap};

use crate::results::CellRecord;

/// Rows, columns and where each cell's result is.
#[derive(Debug)]
pub(crate) struct Grid<'a> {
    pub firmware: Vec<&'a str>,
    pub scenarios: Vec<&'a str>,
    at: HashMap<(&'a str, &'a str), &'a CellRecord>,
}

impl<'a> Grid<'a> {
    pub fn new(cells: &'a [CellRecord]) -> Self {
        let firmware: BTreeSet<&str> = cells.iter().map(|c| c.firmware.as_str()).collect();
        let scenarios: BTreeSet<&str> = cells.iter().map(|c| c.scenario.as_str()).collect();
        let at = cells.iter().map(|c| ((c.firmware.as_str(), c.scenario.as_str()), c)).collect();
        Self { firmware: firmware.into_iter().collect(), scenarios: scenarios.into_iter().collect(), at }
    }

    /// The result for a firmware and a scenario, if that cell ran.
    pub fn cell(&self, firmware: &str, scenario: &str) -> Option<&'a CellRecord> {
        self.at.get(&(firmware, scenario)).copied()
    }

    /// Every cell that ran, row by row.
    pub fn cells(&self) -> impl Iterator<Item = &'a CellRecord> + '_ {
        self.firmware.iter().flat_map(move |f| self.scenarios.iter().filter_map(move |s| self.cell(f, s)))
    }
}
