//! The vanishing port campaign: a run of cells on boards, one of which loses its serial port in
//! the middle of a cell, as a USB hub drops a board at night. What `otarig run` must do then:
//! end that board's cell as the rig's `error` (never an outcome of the firmware), go on with the
//! other boards (the vanished board leaves the run, its cells go to them), and keep every
//! result written (`results.jsonl` whole, one valid line per cell).
//!
//! Without a lab config the boards are twins reached through the serial backend, as a lab's
//! boards are: each twin on a pseudo-terminal named by a link (as udev names a USB serial
//! device), in download mode before each cell (`reset = "none"`), its network the lab's (the
//! update server's shared listener, the lab's SNTP responder, an address of its own). The
//! chosen twin's port vanishes after a seeded number of bytes of its chosen cell (flashing
//! replies and console alike): its pseudo-terminal closes and its link goes. With a lab config,
//! the chosen board's `power` command switches it off a seeded time into its chosen cell (a hub
//! port switched off drops the board's USB device as a flaky hub does), and on again once the
//! run has ended.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::FaultsError;
use super::seed::Seeded;
use crate::board::port::PortSelector;
use crate::board::power::{PowerAction, PowerValues};
use crate::board::serial::SerialSpec;
use crate::board::{Chip, ResetStrategy};
use crate::lab::{DeviceSpec, DnsConfig, LabConfig, ServerConfig, SntpConfig, Timeouts};
use crate::results::{CellRecord, Verdict, read_results};
use crate::run::{BoardLeft, LabDirs, Plan, PreflightCheck, RunEvent, RunOptions, Selection};
use crate::twin::device::{TwinConfig, TwinDevice, TwinHandle};
use crate::twin::network::{LabNetwork, TimeService};

/// The bytes of a cell a twin's port may vanish within: flashing's replies and the console
/// (a whole flashing replies with some 15 KB, a boot log is about 3 KB).
pub const VANISH_SPAN: u64 = 20_000;
/// The time into a cell a lab board's power may go, in milliseconds.
pub const VANISH_MILLIS: u64 = 20_000;

/// What to run, and on how many boards.
#[derive(Clone, Debug)]
pub struct PortVanishCampaign {
    /// The cells: firmware and scenarios, as `otarig run` selects them.
    pub selection: Selection,
    /// Twins standing in for boards, without a lab config (at least 2: one vanishes, the
    /// others go on).
    pub boards: usize,
    /// The seed the board, its cell and the point in it are drawn from.
    pub seed: u64,
}

/// Where the port vanishes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VanishPoint {
    /// The board whose port vanishes.
    pub board: String,
    /// Its cell the port vanishes in, counted from 1 among the cells it starts.
    pub cell: usize,
    /// On a twin: after this many bytes of the cell sent on its port.
    pub after_bytes: Option<u64>,
    /// On a lab board: this long into the cell, its power switched off.
    pub after_ms: Option<u64>,
}

/// One requirement of a run whose board vanished, and whether it held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What is required.
    pub what: String,
    /// It held.
    pub held: bool,
    /// What was found.
    pub found: String,
}

/// A board's cells in the run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BoardCells {
    /// The board's id (empty: cells no device could take).
    pub board: String,
    /// Cells by verdict.
    pub pass: usize,
    /// Cells whose outcome was not the expected one.
    pub fail: usize,
    /// Cells the rig could not run.
    pub error: usize,
    /// Cells with nothing expected.
    pub observed: usize,
}

/// What the campaign found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PortVanishReport {
    /// The seed the point was drawn from.
    pub seed: u64,
    /// Where the port was to vanish.
    pub point: VanishPoint,
    /// The port did vanish (the board got as far as the chosen cell).
    pub vanished: bool,
    /// The cell under way when it vanished: `firmware × scenario`, the board's first `error`.
    pub hit: Option<String>,
    /// Boards that left the run, with why.
    pub left: Vec<(String, String)>,
    /// The run's cells.
    pub cells: usize,
    /// Each board's cells.
    pub boards: Vec<BoardCells>,
    /// The requirements, each checked.
    pub checks: Vec<Check>,
    /// The run was stopped before every cell ended.
    pub stopped: bool,
    /// From the first cell to the last, in milliseconds.
    pub wall_ms: u64,
    /// Where the run's results and the transcripts of its `error` cells were kept, when the
    /// campaign did not hold (with `keep`).
    pub kept: Option<PathBuf>,
}

impl PortVanishReport {
    /// The port vanished and every requirement held.
    pub fn holds(&self) -> bool {
        self.vanished && self.checks.iter().all(|check| check.held)
    }
}

/// Progress of the campaign.
#[derive(Debug)]
pub enum PortVanishEvent<'a> {
    /// The point is drawn; the run starts.
    Planned {
        /// Where the port is to vanish.
        point: &'a VanishPoint,
        /// The run's cells.
        cells: usize,
        /// The boards' ids.
        boards: &'a [String],
    },
    /// What the run reports.
    Run(RunEvent<'a>),
}

/// Runs the campaign: `options`' run (its `out` a fresh directory) on `options.lab`'s boards,
/// or on `campaign.boards` twins standing in for boards when it has none. With `keep`, a
/// campaign that did not hold leaves the run's `results.jsonl` and the transcripts of its
/// `error` cells there.
pub fn run_port_vanish(
    dirs: &LabDirs,
    campaign: &PortVanishCampaign,
    options: &RunOptions,
    keep: Option<&std::path::Path>,
    on_event: impl Fn(PortVanishEvent<'_>) + Sync,
) -> Result<PortVanishReport, FaultsError> {
    let plan = Plan::new(dirs, &campaign.selection)?;
    let mut options = options.clone();
    let mut seeded = Seeded::new(campaign.seed);
    let bench = match &options.lab {
        Some(lab) => Bench::Lab(lab_boards(lab)?),
        None => Bench::Twins(TwinBench::start(&plan, campaign.boards.max(2), &options.out.join("ports"))?),
    };
    let boards = bench.boards();
    let board = boards[seeded.up_to(boards.len() as u64 - 1) as usize].clone();
    // A cell the board reaches while others remain: within the first half of its share.
    let share = plan.cells.len().div_ceil(boards.len());
    let cell = 1 + seeded.up_to((share / 2).max(1) as u64 - 1) as usize;
    let point = match &bench {
        Bench::Twins(_) => VanishPoint { board, cell, after_bytes: Some(seeded.up_to(VANISH_SPAN)), after_ms: None },
        Bench::Lab(_) => VanishPoint { board, cell, after_bytes: None, after_ms: Some(seeded.up_to(VANISH_MILLIS)) },
    };
    let (lab, preflight) = bench.arm(&point);
    if let Some(lab) = lab {
        options.lab = Some(lab);
    }
    options.preflight = Some(preflight.clone());
    on_event(PortVanishEvent::Planned { point: &point, cells: plan.cells.len(), boards: &boards });

    let started = Instant::now();
    let summary = crate::run::run(&plan, &options, |event| on_event(PortVanishEvent::Run(event)));
    let wall_ms = started.elapsed().as_millis() as u64;
    let vanished = bench.vanished(&point);
    bench.restore(&point);
    let summary = summary?;
    let results = read_results(&options.out);
    let mut report =
        judge(campaign.seed, point, vanished, plan.cells.len(), &results, &summary.left, summary.stopped, wall_ms);
    if let Some(keep) = keep
        && !report.holds()
    {
        keep_run(&options.out, results.as_deref().unwrap_or_default(), keep)?;
        report.kept = Some(keep.to_owned());
    }
    Ok(report)
}

/// Copies the run's `results.jsonl` and its `error` cells' transcripts into `keep`.
fn keep_run(out: &std::path::Path, lines: &[CellRecord], keep: &std::path::Path) -> Result<(), FaultsError> {
    let io = |path: PathBuf| move |source| FaultsError::Transcript { path: path.clone(), source };
    std::fs::create_dir_all(keep).map_err(io(keep.to_owned()))?;
    let results = out.join(crate::results::RESULTS_FILE);
    std::fs::copy(&results, keep.join(crate::results::RESULTS_FILE)).map_err(io(results))?;
    for line in lines.iter().filter(|l| l.verdict == Verdict::Error) {
        let name = format!("{}__{}", line.firmware, line.scenario);
        super::keep_transcript(out, &line.transcript, keep, &name)?;
    }
    Ok(())
}

/// The requirements, checked against the run's results.
#[allow(clippy::too_many_arguments)]
fn judge(
    seed: u64,
    point: VanishPoint,
    vanished: bool,
    cells: usize,
    results: &Result<Vec<CellRecord>, crate::results::ResultsError>,
    left: &[BoardLeft],
    stopped: bool,
    wall_ms: u64,
) -> PortVanishReport {
    let mut checks = Vec::new();
    let mut check = |what: &str, held: bool, found: String| checks.push(Check { what: what.to_owned(), held, found });
    let empty = Vec::new();
    let lines = match results {
        Ok(lines) => {
            check("results.jsonl reads back, every line valid", true, format!("{} lines", lines.len()));
            lines
        }
        Err(err) => {
            check("results.jsonl reads back, every line valid", false, err.to_string());
            &empty
        }
    };
    let keys: BTreeSet<(String, String)> = lines.iter().map(|l| (l.firmware.clone(), l.scenario.clone())).collect();
    check(
        "one line per cell, none lost or twice",
        keys.len() == lines.len() && (stopped || lines.len() == cells),
        format!("{} lines for {} cells, {} distinct", lines.len(), cells, keys.len()),
    );
    let on_board: Vec<&CellRecord> = lines.iter().filter(|l| l.board == point.board).collect();
    let hit = on_board.iter().find(|l| l.verdict == Verdict::Error);
    let after_hit: Vec<&&CellRecord> = match hit {
        Some(hit) => on_board.iter().skip_while(|l| !std::ptr::eq(**l, *hit)).skip(1).collect(),
        None => Vec::new(),
    };
    check(
        "the cell under way when the port vanished is the rig's error",
        hit.is_some_and(|h| h.observed.is_none()),
        match hit {
            Some(hit) => format!("{} x {}: {}", hit.firmware, hit.scenario, hit.error.as_deref().unwrap_or_default()),
            None => format!("no error on {}", point.board),
        },
    );
    check(
        "no cell ran on the vanished board after it",
        after_hit.iter().all(|l| l.verdict == Verdict::Error),
        format!("{} cells on {} after it", after_hit.len(), point.board),
    );
    check(
        "the board left the run",
        left.iter().any(|l| l.board == point.board),
        left.iter().map(|l| format!("{}: {}", l.board, l.why)).collect::<Vec<_>>().join("; "),
    );
    let on_others = || lines.iter().filter(|l| l.board != point.board && !l.board.is_empty());
    let others = on_others().count();
    let others_errors = on_others().filter(|l| l.verdict == Verdict::Error).count();
    check(
        "the other boards went on, without errors of the rig",
        others > 0 && others_errors == 0,
        format!("{others} cells on the other boards, {others_errors} errors"),
    );
    let mut boards: BTreeMap<String, BoardCells> = BTreeMap::new();
    for line in lines {
        let counts = boards
            .entry(line.board.clone())
            .or_insert_with(|| BoardCells { board: line.board.clone(), ..BoardCells::default() });
        match line.verdict {
            Verdict::Pass => counts.pass += 1,
            Verdict::Fail => counts.fail += 1,
            Verdict::Error => counts.error += 1,
            Verdict::Observed => counts.observed += 1,
        }
    }
    PortVanishReport {
        seed,
        hit: hit.map(|h| format!("{} x {}", h.firmware, h.scenario)),
        point,
        vanished,
        left: left.iter().map(|l| (l.board.clone(), l.why.clone())).collect(),
        cells,
        boards: boards.into_values().collect(),
        checks,
        stopped,
        wall_ms,
        kept: None,
    }
}

/// The lab config, when it has two boards or more, one of them with a `power` command (the
/// one that can vanish).
fn lab_boards(lab: &LabConfig) -> Result<LabConfig, FaultsError> {
    let boards = lab.boards().count();
    if boards < 2 {
        return Err(FaultsError::NoDevice(format!(
            "a port-vanish campaign needs two boards, one to vanish and one to go on; the lab config has {boards}"
        )));
    }
    if lab.boards().all(|b| b.power.is_none()) {
        return Err(FaultsError::NoDevice(
            "a lab board's port vanishes when its power is switched off (`power`, as uhubctl switches a hub port);              no board of the lab config has a power command"
                .to_owned(),
        ));
    }
    Ok(lab.clone())
}

/// Where the campaign's boards are.
enum Bench {
    /// Twins standing in for boards.
    Twins(TwinBench),
    /// The lab config's boards.
    Lab(LabConfig),
}

type Preflight = Arc<dyn Fn(&PreflightCheck<'_>) -> Result<(), String> + Send + Sync>;

impl Bench {
    fn boards(&self) -> Vec<String> {
        match self {
            Bench::Twins(bench) => bench.twins.keys().cloned().collect(),
            // Only a board whose power the rig switches can vanish.
            Bench::Lab(lab) => lab.boards().filter(|b| b.power.is_some()).map(|b| b.id.clone()).collect(),
        }
    }

    /// The lab config the run uses (the twins' bench's), and the check before each attempt
    /// that puts twins into download mode and makes the port vanish at `point`.
    fn arm(&self, point: &VanishPoint) -> (Option<LabConfig>, Preflight) {
        let starts: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let counted = move |check: &PreflightCheck<'_>| {
            let mut starts = starts.lock().unwrap_or_else(PoisonError::into_inner);
            let n = starts.entry(check.board.to_owned()).or_default();
            if check.attempt == 1 {
                *n += 1;
            }
            *n
        };
        let point = point.clone();
        match self {
            Bench::Twins(bench) => {
                let twins = bench.twins.clone();
                let preflight = move |check: &PreflightCheck<'_>| {
                    let nth = counted(check);
                    if let Some(twin) = twins.get(check.board) {
                        // No reset wiring: the chip is put into its loader by hand, as at a bench.
                        twin.reset(true);
                        if check.board == point.board && nth == point.cell && check.attempt == 1 {
                            twin.vanish(point.after_bytes.unwrap_or(0));
                        }
                    }
                    Ok(())
                };
                (Some(bench.lab.clone()), Arc::new(preflight))
            }
            Bench::Lab(lab) => {
                let spec = lab.boards().find(|b| b.id == point.board).cloned();
                let preflight = move |check: &PreflightCheck<'_>| {
                    let nth = counted(check);
                    if let Some(spec) = &spec
                        && check.board == point.board
                        && nth == point.cell
                        && check.attempt == 1
                    {
                        switch_off_later(spec.clone(), Duration::from_millis(point.after_ms.unwrap_or(0)));
                    }
                    Ok(())
                };
                (None, Arc::new(preflight))
            }
        }
    }

    /// Whether the port did vanish.
    fn vanished(&self, point: &VanishPoint) -> bool {
        match self {
            Bench::Twins(bench) => bench.twins.get(&point.board).is_some_and(|t| t.wait_for_vanish(Duration::ZERO)),
            Bench::Lab(lab) => lab.boards().find(|b| b.id == point.board).is_some_and(|b| !b.port_present()),
        }
    }

    /// After the run: a lab board's power back on.
    fn restore(&self, point: &VanishPoint) {
        if let Bench::Lab(lab) = self
            && let Some(spec) = lab.boards().find(|b| b.id == point.board)
        {
            switch(spec, PowerAction::On);
        }
    }
}

/// Switches `spec`'s power off `after` from now, on a thread of its own (the cell goes on).
fn switch_off_later(spec: SerialSpec, after: Duration) {
    let id = spec.id.clone();
    let spawned = std::thread::Builder::new().name("otarig-vanish".into()).spawn(move || {
        std::thread::sleep(after);
        switch(&spec, PowerAction::Off);
    });
    if let Err(err) = spawned {
        tracing::warn!("{id}: cannot switch its power: {err}");
    }
}

/// Runs `spec`'s power command for `action`, if it has one.
fn switch(spec: &SerialSpec, action: PowerAction) {
    let Some(control) = &spec.power else {
        tracing::warn!("{}: no power command to switch {action}", spec.id);
        return;
    };
    let (port, usb_serial) = match &spec.selector {
        PortSelector::Path(path) => (Some(path.as_path()), None),
        PortSelector::UsbSerial { serial, .. } => (None, Some(serial.as_str())),
        PortSelector::VidPid(..) => (None, None),
    };
    let values = PowerValues { action, id: &spec.id, port, usb_serial };
    if let Err(err) = control.run(&values, spec.power_timeout) {
        tracing::warn!("{}: power {action}: {err}", spec.id);
    }
}

/// Twins standing in for boards on the lab network: each on a pseudo-terminal named by a link,
/// reached through the serial backend.
struct TwinBench {
    /// By board id.
    twins: BTreeMap<String, Arc<TwinHandle>>,
    lab: LabConfig,
}

impl TwinBench {
    /// `n` twins, their links in `ports`, and the lab config that names them as boards.
    fn start(plan: &Plan, n: usize, ports: &std::path::Path) -> Result<Self, FaultsError> {
        let bench = |what: String| move |source| FaultsError::Bench { what: what.clone(), source };
        std::fs::create_dir_all(ports).map_err(bench(format!("the ports' folder {}", ports.display())))?;
        // Free loopback ports for the lab's server and SNTP responder, which the run binds.
        let server = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(bench("a loopback port for the update server".into()))?;
        let sntp = UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .map_err(bench("a loopback port for SNTP".into()))?;
        let hosts: BTreeMap<String, SocketAddr> = hosts_of(plan).into_iter().map(|h| (h, server)).collect();
        let mut twins = BTreeMap::new();
        let mut devices = Vec::new();
        for i in 1..=n {
            let id = format!("board-{i}");
            let address = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + i as u8));
            let link = ports.join(&id);
            let network = LabNetwork { hosts: hosts.clone(), time: TimeService::Server(sntp), address: Some(address) };
            let config = TwinConfig { network, download: true, link: Some(link.clone()), ..TwinConfig::default() };
            let twin = TwinDevice::spawn(config)
                .map_err(|err| FaultsError::NoDevice(format!("the twin standing in for {id}: {err}")))?;
            twins.insert(id.clone(), Arc::new(twin));
            devices.push(DeviceSpec::Board(Box::new(SerialSpec {
                id,
                chip: Chip::Esp32,
                selector: PortSelector::Path(link),
                reset: Some(ResetStrategy::None),
                baud: None,
                flash_size: None,
                power: None,
                power_timeout: Duration::from_secs(1),
                flash_timeout: Duration::from_secs(60),
                probe: None,
                address: Some(address),
            })));
        }
        let secs = Duration::from_secs;
        let lab = LabConfig {
            path: PathBuf::new(),
            devices,
            server: Some(ServerConfig { listen: server }),
            dns: DnsConfig::default(),
            sntp: Some(SntpConfig { listen: sntp }),
            timeouts: Timeouts { flash: secs(60), boot: secs(10), update: secs(20), total: secs(60), power: secs(1) },
            retries: 0,
            prepare: BTreeMap::new(),
        };
        Ok(Self { twins, lab })
    }
}

/// Every host name the plan's firmware update from and its scenarios serve.
fn hosts_of(plan: &Plan) -> BTreeSet<String> {
    let firmware =
        plan.cells.iter().filter_map(|c| plan.fleet.get(&c.firmware)?.ota_url.as_ref().map(|u| u.host.clone()));
    let scenarios = plan.scenarios.iter().flat_map(|s| s.hosts.iter().map(|h| h.name.to_ascii_lowercase()));
    firmware.chain(scenarios).collect()
}
