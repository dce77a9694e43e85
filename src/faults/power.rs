//! The power-cut campaign: one firmware's update against one scenario, the power cut once at
//! each of many points, each cut a cell of its own on a fresh twin (the run arms the cut, and
//! powers the twin on again once it fires).
//!
//! The points: `seeded` byte offsets of the image write drawn from the seed in `0..=length`,
//! the boundaries (0, 1, the first sector's end and the next one's start 4095, 4096, 4097,
//! length - 1, length), and the otadata write of `esp_ota_set_boot_partition` after its sector
//! erase (0 bytes of the new entry), its sequence number (4), half the entry (16), all of it but
//! the CRC (28) and the whole entry (32, the power going before the restart). After each cut
//! the transcript says where the power-on boot landed ([`Landed`]: the old firmware, the new
//! one, or nothing) and the cell's outcome whether the device then updated.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use serde::Serialize;

use super::boot::{Landed, UpdateTrace};
use super::seed::Seeded;
use super::{FaultsError, keep_transcript, read_transcript};
use crate::firmware::start::PowerCut;
use crate::outcome::{Outcome, OutcomeClass};
use crate::results::{CellRecord, Verdict};
use crate::run::{LabDirs, RunEvent, RunOptions};

/// The flash sector: the first boundaries of the image write are either side of its end.
const SECTOR: u64 = 4096;
/// The bytes of the new otadata entry programmed when the power goes in its write: after the
/// erase, the sequence number, half the entry, all but the CRC, all of it.
pub const OTADATA_CUTS: [u8; 5] = [0, 4, 16, 28, 32];

/// What to cut, and where.
#[derive(Clone, Debug)]
pub struct PowerCutCampaign {
    /// The firmware's manifest id.
    pub firmware: String,
    /// A scenario in which the firmware updates (its expectation for it is `updated`).
    pub scenario: String,
    /// Byte offsets of the image write drawn from the seed, besides the boundaries.
    pub seeded: usize,
    /// The seed the offsets are drawn from.
    pub seed: u64,
    /// Only these cuts (to reproduce some), in place of the seeded ones, the boundaries and
    /// the otadata cuts.
    pub only: Vec<PowerCut>,
}

/// Why a cut is in the campaign.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CutOrigin {
    /// Drawn from the seed.
    Seeded,
    /// A boundary of the image write: 0, 1, either side of the first sector's end, the end.
    Boundary,
    /// In the otadata write.
    Otadata,
    /// Asked for (`only`).
    Given,
}

/// A cut of the campaign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlannedCut {
    /// Where the power goes.
    pub cut: PowerCut,
    /// Why this point.
    pub origin: CutOrigin,
}

/// The cuts of a campaign on an image of `image_len` bytes: `seeded` distinct offsets in
/// `0..=image_len` drawn from `seed` (fewer when the image has fewer others), the boundaries,
/// then the otadata cuts; every offset once, offsets in increasing order.
pub fn cut_points(image_len: u64, seeded: usize, seed: u64) -> Vec<PlannedCut> {
    let mut boundaries: Vec<u64> =
        [0, 1, SECTOR - 1, SECTOR, SECTOR + 1, image_len.saturating_sub(1), image_len].into_iter().collect();
    boundaries.retain(|at| *at <= image_len);
    boundaries.sort_unstable();
    boundaries.dedup();
    let others = (image_len + 1).saturating_sub(boundaries.len() as u64);
    let wanted = (seeded as u64).min(others);
    let mut drawn = std::collections::BTreeSet::new();
    let mut seeded_numbers = Seeded::new(seed);
    while (drawn.len() as u64) < wanted {
        let at = seeded_numbers.up_to(image_len);
        if !boundaries.contains(&at) {
            drawn.insert(at);
        }
    }
    let mut cuts: Vec<PlannedCut> = boundaries
        .into_iter()
        .map(|at| (at, CutOrigin::Boundary))
        .chain(drawn.into_iter().map(|at| (at, CutOrigin::Seeded)))
        .map(|(at, origin)| PlannedCut { cut: PowerCut::AfterBytes(at), origin })
        .collect();
    cuts.sort_by_key(|planned| match planned.cut {
        PowerCut::AfterBytes(at) => at,
        _ => 0,
    });
    let otadata =
        OTADATA_CUTS.map(|bytes| PlannedCut { cut: PowerCut::OtadataBytes(bytes), origin: CutOrigin::Otadata });
    cuts.extend(otadata);
    cuts
}

/// A cut as a user names it: `N` or `image:N` (the power goes once N bytes of the image are
/// written), `otadata:N` (once N bytes of the new otadata entry are); `None` for anything else.
pub fn parse_cut(text: &str) -> Option<PowerCut> {
    let (phase, bytes) = text.split_once(':').unwrap_or(("image", text));
    match phase {
        "image" => bytes.parse().ok().map(PowerCut::AfterBytes),
        "otadata" => {
            bytes.parse().ok().filter(|n| *n <= crate::firmware::start::OTADATA_ENTRY_BYTES).map(PowerCut::OtadataBytes)
        }
        _ => None,
    }
}

/// A cut as [`parse_cut`] reads it back: `image:4096`, `otadata:28`.
pub fn cut_name(cut: PowerCut) -> String {
    match (cut, cut.otadata_bytes()) {
        (PowerCut::AfterBytes(at), _) => format!("image:{at}"),
        (_, bytes) => format!("otadata:{}", bytes.unwrap_or(0)),
    }
}

/// Where the power went, as the report gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CutPhase {
    /// Writing the image into the update partition.
    Image,
    /// Writing the otadata entry that selects it.
    Otadata,
}

/// How the update went after a cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AfterCut {
    /// The old firmware booted and its update, tried again, went through.
    Updated,
    /// The new firmware booted: the update had gone through before the cut.
    NotNeeded,
    /// The device did not end up running the new firmware (its outcome says how it ended).
    Failed,
    /// The rig could not run the cell.
    Error,
}

/// One cut and what followed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CutResult {
    /// Where the power went: the image or the otadata write.
    pub phase: CutPhase,
    /// Bytes of the image (or of the otadata entry) written before the cut.
    pub bytes: u64,
    /// Why this point is in the campaign.
    pub origin: CutOrigin,
    /// Where the power-on boot after the cut landed; `None` when the rig could not run the
    /// cell.
    pub booted: Option<Landed>,
    /// The partition the bootloader loaded after the cut, when it loaded one.
    pub loaded: Option<u32>,
    /// Whether the device then ran the new firmware.
    pub update: AfterCut,
    /// The cell's outcome: `updated` when the device ended on the new firmware.
    pub outcome: Option<Outcome>,
    /// What went wrong in the rig, for [`AfterCut::Error`].
    pub error: Option<String>,
    /// The device the cell ran on.
    pub board: String,
    /// The cell's wall time.
    pub duration_ms: u64,
    /// Where the transcript was kept, for a cut that did not hold (with `keep`).
    pub kept: Option<PathBuf>,
    /// The cell's transcript, relative to the run's directory.
    #[serde(skip)]
    pub transcript: String,
}

impl CutResult {
    /// The cut, as the run armed it.
    pub fn cut(&self) -> PowerCut {
        match self.phase {
            CutPhase::Image => PowerCut::AfterBytes(self.bytes),
            CutPhase::Otadata => PowerCut::OtadataBytes(self.bytes as u8),
        }
    }

    /// The device landed on a working image (the old or the new firmware) and then ran the new
    /// one.
    pub fn holds(&self) -> bool {
        matches!(self.booted, Some(Landed::Old | Landed::New))
            && matches!(self.update, AfterCut::Updated | AfterCut::NotNeeded)
    }

    /// The cut was not measured: the rig failed.
    pub fn is_error(&self) -> bool {
        self.update == AfterCut::Error
    }

    /// Reads a finished cell of cut `planned`: its transcript (`transcript`, `None` when it
    /// could not be read) and its result line.
    fn read(planned: PlannedCut, record: &CellRecord, transcript: Result<Vec<u8>, FaultsError>) -> Self {
        let (phase, bytes) = match planned.cut {
            PowerCut::AfterBytes(at) => (CutPhase::Image, at),
            other => (CutPhase::Otadata, u64::from(other.otadata_bytes().unwrap_or(0))),
        };
        let mut result = CutResult {
            phase,
            bytes,
            origin: planned.origin,
            booted: None,
            loaded: None,
            update: AfterCut::Error,
            outcome: record.observed.as_ref().map(|observed| observed.outcome),
            error: record.error.clone(),
            board: record.board.clone(),
            duration_ms: record.duration_ms,
            kept: None,
            transcript: record.transcript.clone(),
        };
        if record.verdict == Verdict::Error {
            return result;
        }
        let transcript = match transcript {
            Ok(transcript) => transcript,
            Err(err) => {
                result.error = Some(err.to_string());
                return result;
            }
        };
        let trace = UpdateTrace::read(&transcript);
        let landing = trace.first_landing();
        result.booted = Some(landing.map_or(Landed::Nothing, |(landed, _)| landed));
        result.loaded = landing.and_then(|(_, boot)| boot.loaded);
        let updated = result.outcome.is_some_and(|o| o.outcome == OutcomeClass::Updated);
        result.update = match result.booted {
            Some(Landed::New) if updated => AfterCut::NotNeeded,
            _ if updated => AfterCut::Updated,
            _ => AfterCut::Failed,
        };
        result
    }
}

/// The campaign's counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PowerCutFigures {
    /// Cuts whose cell ended (errors included).
    pub cuts: usize,
    /// The power-on boot landed on the old firmware.
    pub booted_old: usize,
    /// It landed on the new firmware.
    pub booted_new: usize,
    /// No app started, or one from a partition that is neither the old nor the new firmware.
    pub booted_nothing: usize,
    /// The device ended on the new firmware (updated again after booting the old one, or
    /// already there).
    pub updated: usize,
    /// Cuts the rig could not run.
    pub errors: usize,
    /// Cuts planned but not run (the campaign was stopped).
    pub not_run: usize,
    /// From the first cell to the last, in milliseconds.
    pub wall_ms: u64,
}

/// What a campaign found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PowerCutReport {
    /// The firmware's manifest id.
    pub firmware: String,
    /// The scenario's id.
    pub scenario: String,
    /// The seed the offsets were drawn from.
    pub seed: u64,
    /// The length of the image offered as the update.
    pub image_bytes: u64,
    /// Each cut that ended, in the campaign's order.
    pub cuts: Vec<CutResult>,
    /// The counts.
    pub figures: PowerCutFigures,
    /// The campaign was stopped before every cut ended.
    pub stopped: bool,
}

impl PowerCutReport {
    /// Cuts after which the device did not land on a working image or did not update.
    pub fn failing(&self) -> impl Iterator<Item = &CutResult> {
        self.cuts.iter().filter(|cut| !cut.holds() && !cut.is_error())
    }
}

/// Progress of a campaign.
#[derive(Debug)]
pub enum PowerCutEvent<'a> {
    /// The cuts are planned; the cells start.
    Planned {
        /// Every cut, in order.
        cuts: &'a [PlannedCut],
        /// The length of the image offered as the update.
        image_bytes: u64,
    },
    /// What the run under the campaign reports (its cells are the cuts, in order).
    Run(RunEvent<'a>),
    /// A cut's cell ended and was read back.
    Cut {
        /// How many cuts have ended, this one included.
        done: usize,
        /// How many cuts the campaign has.
        total: usize,
        /// What the cut did.
        result: &'a CutResult,
    },
}

/// Runs the campaign: each cut a cell of `options`' run (its `out` is the run's directory, a
/// fresh one), read back as it ends. With `keep`, the transcripts of cuts that did not hold go
/// to `keep/transcripts/`.
pub fn run_power_cuts(
    dirs: &LabDirs,
    campaign: &PowerCutCampaign,
    options: &RunOptions,
    keep: Option<&Path>,
    on_event: impl Fn(PowerCutEvent<'_>) + Sync,
) -> Result<PowerCutReport, FaultsError> {
    let plan = super::update_plan(dirs, &campaign.firmware, &campaign.scenario)?;
    let base = plan.scenarios[0].clone();
    if base.power_cut.is_some() {
        return Err(FaultsError::HasFault { scenario: base.id, what: "power cut" });
    }
    super::check_power_cut_devices(&plan, options)?;
    let image_bytes = super::offered_len(&plan)?;
    let planned: Vec<PlannedCut> = if campaign.only.is_empty() {
        cut_points(image_bytes, campaign.seeded, campaign.seed)
    } else {
        campaign.only.iter().map(|&cut| PlannedCut { cut, origin: CutOrigin::Given }).collect()
    };
    if planned.is_empty() {
        return Err(FaultsError::Nothing("no cut".to_owned()));
    }
    let variants = planned
        .iter()
        .map(|planned| {
            let mut variant = base.clone();
            variant.id = format!("{}@{}", base.id, cut_name(planned.cut).replace(':', "-"));
            variant.power_cut = Some(planned.cut);
            variant
        })
        .collect();
    let plan = super::with_variants(plan, variants);
    on_event(PowerCutEvent::Planned { cuts: &planned, image_bytes });

    let started = Instant::now();
    let ended: Mutex<Vec<Option<CutResult>>> = Mutex::new(vec![None; planned.len()]);
    let summary = crate::run::run(&plan, options, |event| {
        let RunEvent::CellFinished { index, done, total, result } = &event else {
            on_event(PowerCutEvent::Run(event));
            return;
        };
        let Some(&cut) = planned.get(*index) else { return };
        let read = CutResult::read(cut, result, read_transcript(&options.out, result));
        on_event(PowerCutEvent::Cut { done: *done, total: *total, result: &read });
        ended.lock().unwrap_or_else(PoisonError::into_inner)[*index] = Some(read);
    })?;
    let wall_ms = started.elapsed().as_millis() as u64;

    let mut cuts: Vec<CutResult> =
        ended.into_inner().unwrap_or_else(PoisonError::into_inner).into_iter().flatten().collect();
    if let Some(keep) = keep {
        keep_failing(&mut cuts, &options.out, keep)?;
    }
    let figures = figures(&cuts, planned.len(), wall_ms);
    Ok(PowerCutReport {
        firmware: campaign.firmware.clone(),
        scenario: base.id,
        seed: campaign.seed,
        image_bytes,
        cuts,
        figures,
        stopped: summary.stopped,
    })
}

/// Copies the transcripts of the cuts that did not hold into `keep`.
fn keep_failing(cuts: &mut [CutResult], out: &Path, keep: &Path) -> Result<(), FaultsError> {
    for cut in cuts.iter_mut().filter(|cut| !cut.holds()) {
        let name = cut_name(cut.cut()).replace(':', "-");
        cut.kept = Some(keep_transcript(out, &cut.transcript, keep, &name)?);
    }
    Ok(())
}

/// The counts of `cuts`, of `planned` planned.
fn figures(cuts: &[CutResult], planned: usize, wall_ms: u64) -> PowerCutFigures {
    let count = |f: &dyn Fn(&CutResult) -> bool| cuts.iter().filter(|cut| f(cut)).count();
    PowerCutFigures {
        cuts: cuts.len(),
        booted_old: count(&|c| c.booted == Some(Landed::Old)),
        booted_new: count(&|c| c.booted == Some(Landed::New)),
        booted_nothing: count(&|c| matches!(c.booted, Some(Landed::Nothing | Landed::Other))),
        updated: count(&|c| matches!(c.update, AfterCut::Updated | AfterCut::NotNeeded)),
        errors: count(&|c| c.is_error()),
        not_run: planned.saturating_sub(cuts.len()),
        wall_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cuts_are_the_boundaries_the_seeded_offsets_and_the_otadata_write() {
        let cuts = cut_points(938_000, 20, 1);
        assert_eq!(cuts.len(), 7 + 20 + 5);
        let offsets: Vec<u64> = cuts
            .iter()
            .filter_map(|c| match c.cut {
                PowerCut::AfterBytes(at) => Some(at),
                _ => None,
            })
            .collect();
        assert!(offsets.windows(2).all(|w| w[0] < w[1]), "distinct, in order: {offsets:?}");
        for boundary in [0, 1, 4095, 4096, 4097, 937_999, 938_000] {
            let cut = cuts.iter().find(|c| c.cut == PowerCut::AfterBytes(boundary)).unwrap();
            assert_eq!(cut.origin, CutOrigin::Boundary);
        }
        assert!(offsets.iter().all(|at| *at <= 938_000));
        let otadata: Vec<PowerCut> = cuts[27..].iter().map(|c| c.cut).collect();
        assert_eq!(otadata, OTADATA_CUTS.map(PowerCut::OtadataBytes));
        assert_eq!(cut_points(938_000, 20, 1), cuts, "the same seed, the same cuts");
        assert_ne!(cut_points(938_000, 20, 2), cuts, "another seed, other offsets");
    }

    #[test]
    fn a_small_image_gives_as_many_offsets_as_it_has() {
        let cuts = cut_points(10, 200, 1);
        let image: Vec<&PlannedCut> = cuts.iter().filter(|c| c.cut.otadata_bytes().is_none()).collect();
        assert_eq!(image.len(), 11, "0..=10");
    }

    #[test]
    fn a_cut_after_which_no_app_starts_does_not_hold() {
        let transcript = "rst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\n\
                          I (501) boot: Loaded app from partition at offset 0x10000\n\
                          I (576) cpu_start: Pro cpu start user code\n\
                          I (4138) esp_https_ota: Writing to partition subtype 16 at offset 0x110000\n\
                          rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\n\
                          E (118) boot: No bootable app partitions in the partition table\n";
        let record = CellRecord {
            firmware: "f".into(),
            scenario: "s@image-4096".into(),
            board: "twin-1".into(),
            expected: Some(Outcome::of(OutcomeClass::Updated)),
            observed: Some(crate::results::Observed {
                outcome: Outcome::of(OutcomeClass::Timeout),
                evidence: Vec::new(),
            }),
            verdict: Verdict::Fail,
            transcript: "transcripts/f__s@image-4096.log".into(),
            error: None,
            duration_ms: 30_000,
            details: Default::default(),
            scenario_facts: Default::default(),
            other: Default::default(),
        };
        let planned = PlannedCut { cut: PowerCut::AfterBytes(4096), origin: CutOrigin::Boundary };
        let cut = CutResult::read(planned, &record, Ok(transcript.as_bytes().to_vec()));
        assert_eq!((cut.booted, cut.loaded, cut.update), (Some(Landed::Nothing), None, AfterCut::Failed));
        assert!(!cut.holds() && !cut.is_error());
        let report = PowerCutReport {
            firmware: "f".into(),
            scenario: "s".into(),
            seed: 1,
            image_bytes: 8192,
            figures: figures(std::slice::from_ref(&cut), 1, 30_000),
            cuts: vec![cut],
            stopped: false,
        };
        assert_eq!(report.failing().count(), 1);
        assert_eq!((report.figures.booted_nothing, report.figures.updated), (1, 0));

        let error = CellRecord { verdict: Verdict::Error, observed: None, error: Some("twin: gone".into()), ..record };
        let cut = CutResult::read(planned, &error, Ok(Vec::new()));
        assert!(cut.is_error() && !cut.holds() && cut.booted.is_none());
    }

    #[test]
    fn cuts_are_named_and_read_back() {
        for cut in [PowerCut::AfterBytes(4096), PowerCut::OtadataBytes(28)] {
            assert_eq!(parse_cut(&cut_name(cut)), Some(cut));
        }
        assert_eq!(parse_cut("4095"), Some(PowerCut::AfterBytes(4095)));
        assert_eq!(parse_cut("otadata:33"), None);
        assert_eq!(parse_cut("flash:1"), None);
        assert_eq!(parse_cut("x"), None);
    }
}
