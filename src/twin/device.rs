//! The twin as a serial device: the master side of a pseudo-terminal, or an RFC 2217 server
//! ([`Serve`]), with one thread that plays the chip. A flasher or the rig opens the slave side
//! (`/dev/pts/N`) or `rfc2217://HOST:PORT` like a board's UART.
//!
//! In download mode the thread feeds the line to the SLIP decoder and answers each frame with
//! the `RomLoader`; when the loader exits (FLASH_END, FLASH_DEFL_END) it writes the boot log
//! computed from the flash and then idles, reading and discarding what arrives, as a chip
//! running an app that does not read its UART. The [`TwinHandle`] resets it (into download mode
//! or to boot from flash) and cuts its power, each call returning once done; it snapshots the
//! flash, and stops the thread on drop.
//!
//! DTR/RTS do not exist on a pseudo-terminal, so there resets come through the handle, and
//! flashers must connect without a reset (espflash `ResetBeforeOperation::NoReset`). Over RFC
//! 2217 the client's DTR and RTS drive EN and GPIO0 through a DevKit's auto-reset circuit
//! (`twin::circuit`), so flashers and monitors reset the twin as they reset a board.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serialport::{SerialPort, TTYPort};

use crate::firmware::profile::{FirmwareProfile, KnownBuild};
use crate::firmware::start::PowerCut;
use crate::twin::boot::{Booted, ResetReason, boot_log};
use crate::twin::circuit::{AutoReset, Pins};
use crate::twin::clock::BootClock;
use crate::twin::flash::{DEFAULT_SIZE, VirtualFlash};
use crate::twin::network::LabNetwork;
use crate::twin::ota;
use crate::twin::remote::{Input, RemotePort};
use crate::twin::rom::{LAB_MAC, LoaderExit, RomLoader};
use crate::twin::slip::{self, SlipDecoder};

/// How often the device thread looks at its commands while the line is quiet.
const POLL: Duration = Duration::from_millis(5);
/// How long one write may wait for a reader to drain the line before the rest is dropped (a
/// UART sends whether or not anyone listens).
const WRITE_PATIENCE: Duration = Duration::from_secs(1);
/// What the ROM prints on its way into the serial loader (strapping pins in download mode),
/// after a reset for `reason`.
fn download_banner(reason: ResetReason) -> String {
    let (code, name) = reason.code_and_name();
    format!(
        "ets Jun  8 2016 00:22:57\r\n\r\n\
         rst:{code:#x} ({name}),boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\n\
         waiting for download\r\n"
    )
}

/// Where the twin's UART is served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Serve {
    /// On a new pseudo-terminal (no DTR/RTS: resets come through the [`TwinHandle`]).
    #[default]
    Pty,
    /// As an RFC 2217 remote serial port listening on this address (port 0: a free port); the
    /// client's DTR and RTS drive EN and GPIO0.
    Rfc2217(SocketAddr),
}

/// What the twin is when it starts.
#[derive(Clone, Debug)]
pub struct TwinConfig {
    /// Where its UART is served.
    pub serve: Serve,
    /// Flash size in bytes (rounded up to whole sectors).
    pub flash_size: u32,
    /// Start in the ROM's serial loader; otherwise boot from the (erased) flash.
    pub download: bool,
    /// The factory MAC in the eFuses.
    pub mac: [u8; 6],
    /// Seed of the boot log's timestamp jitter.
    pub clock_seed: u64,
    /// Keep the flash in this file (created erased, loaded when present, written through).
    pub flash_file: Option<PathBuf>,
    /// DNS and SNTP as the firmware's update client sees them.
    pub network: LabNetwork,
    /// A power cut armed for the first update the firmware runs (a device-side fault).
    pub power_cut: Option<PowerCut>,
    /// What is stated about real builds it may boot (their images cannot say it all).
    pub builds: Vec<KnownBuild>,
    /// A symbolic link made to the port, as udev makes one for a USB serial device
    /// (`/dev/serial/by-id/...`); it goes when the port vanishes ([`TwinHandle::vanish`]) or the
    /// twin stops. Pseudo-terminals only: an RFC 2217 port has no path.
    pub link: Option<PathBuf>,
}

impl Default for TwinConfig {
    fn default() -> Self {
        Self {
            serve: Serve::Pty,
            flash_size: DEFAULT_SIZE,
            download: true,
            mac: LAB_MAC,
            clock_seed: 0,
            flash_file: None,
            network: LabNetwork::default(),
            power_cut: None,
            builds: Vec::new(),
            link: None,
        }
    }
}

/// A twin that cannot be started.
#[derive(Debug, thiserror::Error)]
pub enum TwinError {
    /// No pseudo-terminal could be opened.
    #[error("cannot open a pseudo-terminal")]
    Pty(#[source] serialport::Error),
    /// The pseudo-terminal has no path a flasher could open.
    #[error("the pseudo-terminal has no slave path")]
    NoPortPath,
    /// The RFC 2217 server cannot listen on its address.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why not.
        #[source]
        source: io::Error,
    },
    /// The device's thread could not be started.
    #[error("cannot start the device thread")]
    Thread(#[source] io::Error),
    /// The flash file cannot be used.
    #[error(transparent)]
    FlashFile(#[from] super::flash_file::FlashFileError),
    /// The link to the port cannot be made.
    #[error("cannot link {link} to the port: {source}")]
    Link {
        /// The link asked for.
        link: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// What the handle asks of the device thread.
#[derive(Debug)]
enum Command {
    Reset {
        download: bool,
    },
    PowerCut,
    /// The lab network the firmware sees from now on.
    Network(Box<LabNetwork>),
    /// A power cut for the next update (or none), in place of what was armed.
    Arm(Option<PowerCut>),
    /// What is stated about real builds the twin may boot.
    Builds(Vec<KnownBuild>),
    /// The port vanishes once this many more bytes went out (0: now).
    Vanish(u64),
    Stop,
}

/// A command and the channel on which the device thread says it is done.
type Request = (Command, SyncSender<()>);

/// What the chip is doing.
enum Mode {
    /// In the ROM's serial loader.
    Download(Box<RomLoader>),
    /// Booted (or left the loader for a RAM program that is not emulated): input is discarded.
    Running,
    /// No power: silent until the next reset.
    Off,
}

/// The chip behind the pseudo-terminal; lives on its own thread (see [`TwinDevice::spawn`]).
pub struct TwinDevice {
    flash: Arc<Mutex<VirtualFlash>>,
    mode: Mode,
    mac: [u8; 6],
    clock: BootClock,
    network: LabNetwork,
    builds: Vec<KnownBuild>,
    /// An app just started from this partition offset, as its image says it behaves; it runs
    /// on the thread's next turn.
    app_started: Option<(u32, FirmwareProfile)>,
    /// The armed power cut, taken by the next update.
    power_cut: Option<PowerCut>,
    /// Set when an armed power cut fired.
    power_lost: Arc<Latch>,
    decoder: SlipDecoder,
    line: Line,
    /// DTR/RTS to EN/GPIO0 (moved only by an RFC 2217 client's lines).
    circuit: AutoReset,
    /// The circuit's clock.
    started: Instant,
    commands: Receiver<Request>,
}

/// The serial line: the pseudo-terminal's master side or the RFC 2217 server, until it vanishes
/// (a USB serial device unplugged, its hub dropping it): the master and the slave the device
/// holds are closed, so whoever has the port open reads an error, and its path and link are
/// gone; the RFC 2217 listener and its client are closed.
struct Line {
    /// `None` once the port vanished, or when the port is served over RFC 2217.
    master: Option<TTYPort>,
    /// Held so the line stays up while no one has the slave open (the master would read EIO).
    slave: Option<TTYPort>,
    /// The RFC 2217 server, when the port is served so; `None` once it vanished.
    remote: Option<RemotePort>,
    /// The udev-like link to the port, removed when it vanishes.
    link: Option<PathBuf>,
    /// The port vanishes once this many more bytes went out.
    vanish_after: Option<u64>,
    /// Set when the port vanished.
    vanished: Arc<Latch>,
}

/// The rig's side of a running twin. Dropping it stops the device thread.
pub struct TwinHandle {
    port: String,
    flash: Arc<Mutex<VirtualFlash>>,
    commands: Sender<Request>,
    thread: Option<JoinHandle<()>>,
    power_lost: Arc<Latch>,
    vanished: Arc<Latch>,
    link: Option<PathBuf>,
}

/// Whether something armed has happened (a power cut fired, the port vanished), with a way to
/// wait for it.
#[derive(Debug, Default)]
struct Latch {
    fired: Mutex<bool>,
    changed: Condvar,
}

impl TwinDevice {
    /// Opens a pseudo-terminal and starts the twin on it: in download mode, or booting from its
    /// flash (printing the boot log), as `config` says.
    pub fn spawn(config: TwinConfig) -> Result<TwinHandle, TwinError> {
        let vanished = Arc::new(Latch::default());
        let mut line = Line {
            master: None,
            slave: None,
            remote: None,
            link: None,
            vanish_after: None,
            vanished: Arc::clone(&vanished),
        };
        let port = match config.serve {
            Serve::Pty => {
                let (mut master, slave) = TTYPort::pair().map_err(TwinError::Pty)?;
                master.set_timeout(POLL).map_err(TwinError::Pty)?;
                nonblocking(&master).map_err(|e| TwinError::Pty(e.into()))?;
                let port = slave.name().ok_or(TwinError::NoPortPath)?;
                if let Some(link) = &config.link {
                    let _ = std::fs::remove_file(link);
                    std::os::unix::fs::symlink(&port, link)
                        .map_err(|source| TwinError::Link { link: link.clone(), source })?;
                    line.link = Some(link.clone());
                }
                line.master = Some(master);
                line.slave = Some(slave);
                port
            }
            Serve::Rfc2217(addr) => {
                let listen = |source| TwinError::Listen { addr, source };
                let remote = RemotePort::bind(addr).map_err(listen)?;
                let port = format!("rfc2217://{}", remote.local_addr().map_err(listen)?);
                line.remote = Some(remote);
                port
            }
        };
        let link = line.link.clone();
        let flash = match &config.flash_file {
            Some(path) => super::flash_file::open_backed(path, config.flash_size).map_err(TwinError::FlashFile)?,
            None => VirtualFlash::new(config.flash_size),
        };
        let flash = Arc::new(Mutex::new(flash));
        let (sender, commands) = mpsc::channel();
        let power_lost = Arc::new(Latch::default());
        let mut device = TwinDevice {
            flash: Arc::clone(&flash),
            mode: Mode::Off,
            mac: config.mac,
            clock: BootClock::new(config.clock_seed),
            network: config.network.clone(),
            builds: config.builds.clone(),
            app_started: None,
            power_cut: config.power_cut,
            power_lost: Arc::clone(&power_lost),
            decoder: SlipDecoder::default(),
            line,
            circuit: AutoReset::default(),
            started: Instant::now(),
            commands,
        };
        // Before the thread starts, so what the chip prints at power-on is on the line before
        // anyone can open the port (a flasher clears it before its first command).
        device.reset(config.download, ResetReason::PowerOn);
        let thread = std::thread::Builder::new()
            .name("twin-device".into())
            .spawn(move || device.run())
            .map_err(TwinError::Thread)?;
        Ok(TwinHandle { port, flash, commands: sender, thread: Some(thread), power_lost, vanished, link })
    }

    fn run(&mut self) {
        let mut buf = [0u8; 4096];
        loop {
            match self.commands.try_recv() {
                Ok((command, done)) => {
                    match command {
                        Command::Reset { download } => self.reset(download, ResetReason::PowerOn),
                        Command::PowerCut => self.power_cut(),
                        Command::Network(network) => self.network = *network,
                        Command::Builds(builds) => self.builds = builds,
                        Command::Arm(cut) => {
                            self.power_cut = cut;
                            *self.power_lost.fired.lock().unwrap_or_else(PoisonError::into_inner) = false;
                        }
                        Command::Vanish(0) => self.line.vanish(),
                        Command::Vanish(after) => self.line.vanish_after = Some(after),
                        Command::Stop => return,
                    }
                    let _ = done.send(());
                }
                Err(TryRecvError::Disconnected) => return,
                Err(TryRecvError::Empty) => {}
            }
            if let Some((partition_offset, profile)) = self.app_started.take() {
                self.run_app(partition_offset, &profile);
                continue;
            }
            let inputs = match self.line.poll(&mut buf) {
                Ok(inputs) => inputs,
                Err(e) => {
                    tracing::warn!("twin: the line failed, device stops: {e}");
                    return;
                }
            };
            for input in inputs {
                match input {
                    Input::Data(bytes) => self.receive(&bytes),
                    Input::Lines { dtr, rts } => {
                        let now = self.started.elapsed();
                        if let Some(pins) = self.circuit.lines(dtr, rts, now) {
                            self.pins(pins);
                        }
                    }
                    // The twin answers at any rate; the ROM follows CHANGE_BAUDRATE, not the
                    // host's UART setting.
                    Input::Baud(baud) => tracing::debug!("twin: the client set {baud} baud"),
                }
            }
            if let Some(pins) = self.circuit.tick(self.started.elapsed()) {
                self.pins(pins);
            }
        }
    }

    /// EN or GPIO0 moved by the auto-reset circuit.
    fn pins(&mut self, pins: Pins) {
        match pins {
            // In reset: silent, deaf, what was written stays.
            Pins::Hold => self.power_cut(),
            Pins::Release { download } => self.reset(download, ResetReason::PowerOn),
        }
    }

    /// The EN pin pulsed: into the serial loader, or booting from flash.
    fn reset(&mut self, download: bool, reason: ResetReason) {
        self.decoder = SlipDecoder::default();
        self.app_started = None;
        if download {
            self.mode = Mode::Download(Box::new(RomLoader::new(self.mac)));
            self.send(download_banner(reason).as_bytes());
        } else {
            self.boot(reason);
        }
    }

    /// Power removed: what is programmed stays, a transfer under way is lost, nothing is said.
    fn power_cut(&mut self) {
        self.decoder = SlipDecoder::default();
        self.app_started = None;
        self.mode = Mode::Off;
    }

    /// Boots from flash: the boot log goes out and the app starts (an app on trial after an
    /// update confirms itself in its start-up, unless it never does); what it does next runs
    /// on the device thread's next turn ([`TwinDevice::run_app`]), after the reset is
    /// acknowledged.
    fn boot(&mut self, reason: ResetReason) {
        let outcome = boot_log(lock(&self.flash).as_bytes(), reason, &mut self.clock, &self.builds);
        if let Some((offset, otadata)) = &outcome.otadata_write {
            ota::write_otadata(&mut lock(&self.flash), *offset, otadata);
        }
        self.mode = Mode::Running;
        self.send(&outcome.bytes);
        if let Booted::App { partition_offset, profile } = outcome.result {
            if profile.confirms.value && profile.rollback.value {
                ota::confirm_running_app(&self.flash, partition_offset);
            }
            self.app_started = Some((partition_offset, *profile));
        }
    }

    /// The app loaded from `partition_offset` runs: a firmware with an update URL runs its
    /// update client (and the chip boots again when that restarts it); otherwise, and after a
    /// failed update, it idles and ignores its UART.
    fn run_app(&mut self, partition_offset: u32, profile: &FirmwareProfile) {
        if profile.is_update || profile.ota_url.is_none() {
            return;
        }
        let device = ota::Device {
            flash: &self.flash,
            network: &self.network,
            profile,
            running: partition_offset,
            power_cut: self.power_cut.take(),
        };
        let line = &mut self.line;
        let mut emit = |bytes: &[u8]| line.send(bytes);
        match ota::run_update(&device, &mut self.clock, &mut emit) {
            ota::UpdateEnd::Restart => self.boot(ResetReason::SoftwareCpu),
            ota::UpdateEnd::Idle => {}
            ota::UpdateEnd::PowerLost => {
                self.power_cut();
                *self.power_lost.fired.lock().unwrap_or_else(PoisonError::into_inner) = true;
                self.power_lost.changed.notify_all();
            }
        }
    }

    fn receive(&mut self, bytes: &[u8]) {
        let Mode::Download(loader) = &mut self.mode else {
            return;
        };
        let mut out = Vec::new();
        let mut exit = None;
        let had_stub = loader.stub().is_some();
        for frame in self.decoder.feed(bytes) {
            let replies = loader.handle(&frame, &mut lock(&self.flash));
            for reply in replies {
                out.extend_from_slice(&slip::encode(&reply));
            }
            exit = loader.exit();
            if exit.is_some() {
                break;
            }
        }
        if let (false, Some(stub)) = (had_stub, loader.stub()) {
            tracing::info!("twin: the flasher stub was loaded ({stub}); the twin speaks its protocol");
        }
        // The reply to FLASH_END goes out before the chip resets.
        self.send(&out);
        match exit {
            // The ROM resets the chip for both; the bootloader then loads the app.
            Some(LoaderExit::Reboot | LoaderExit::RunUserCode) => self.boot(ResetReason::SoftwareCpu),
            Some(LoaderExit::StubReset) => self.reset(true, ResetReason::SoftwareCpu),
            Some(LoaderExit::RunRam { entry }) => {
                tracing::warn!(
                    "twin: a RAM program was started at {entry:#010x}; it is no flasher stub the twin knows \
                     and the twin runs no code: the chip stays silent until it is reset"
                );
                self.mode = Mode::Running;
            }
            None => {}
        }
    }

    /// Writes to the line (see [`Line::send`]).
    fn send(&mut self, bytes: &[u8]) {
        self.line.send(bytes);
    }
}

impl Line {
    /// What arrives within [`POLL`]; an error when the line failed for good. Once the port
    /// vanished nothing arrives: the chip runs on, heard by no one, until told to stop.
    fn poll(&mut self, buf: &mut [u8]) -> io::Result<Vec<Input>> {
        if let Some(master) = &mut self.master {
            return match master.read(buf) {
                Ok(n) => Ok(vec![Input::Data(buf[..n].to_vec())]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    Ok(Vec::new())
                }
                Err(e) => Err(e),
            };
        }
        if let Some(remote) = &mut self.remote {
            return Ok(remote.poll(POLL));
        }
        std::thread::sleep(POLL);
        Ok(Vec::new())
    }

    /// Writes to the line, up to where it is to vanish (then it vanishes); nothing once it
    /// has.
    fn send(&mut self, bytes: &[u8]) {
        match &mut self.vanish_after {
            Some(left) if (bytes.len() as u64) >= *left => {
                let now = *left as usize;
                self.write(&bytes[..now]);
                self.vanish();
            }
            Some(left) => {
                *left -= bytes.len() as u64;
                self.write(bytes);
            }
            None => self.write(bytes),
        }
    }

    /// The bytes onto the pseudo-terminal (see [`send_on`]) or to the RFC 2217 client.
    fn write(&mut self, bytes: &[u8]) {
        if let Some(master) = &mut self.master {
            send_on(master, bytes);
        } else if let Some(remote) = &mut self.remote {
            remote.send(bytes);
        }
    }

    /// The port vanishes: its link first (as udev removes it when the device goes), then the
    /// pseudo-terminal's ends, so its path goes too and a reader gets an error.
    fn vanish(&mut self) {
        if let Some(link) = self.link.take() {
            let _ = std::fs::remove_file(link);
        }
        self.master = None;
        self.slave = None;
        self.remote = None;
        self.vanish_after = None;
        *self.vanished.fired.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.vanished.changed.notify_all();
    }
}

/// Makes writes to the pseudo-terminal's master return what fits instead of blocking until a
/// reader makes room for the whole buffer (a stub's streamed read writes far more than a
/// pseudo-terminal holds).
fn nonblocking(master: &TTYPort) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = master.as_raw_fd();
    // SAFETY: `fd` is the master's open descriptor, borrowed for these two calls; F_GETFL and
    // F_SETFL read and set its status flags and touch no memory.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Writes to the line, waiting at most [`WRITE_PATIENCE`] for a reader to make room.
fn send_on(master: &mut TTYPort, mut bytes: &[u8]) {
    {
        let deadline = Instant::now() + WRITE_PATIENCE;
        while !bytes.is_empty() {
            match master.write(bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    tracing::debug!("twin: write failed, {} bytes dropped: {e}", bytes.len());
                    return;
                }
            }
            if Instant::now() >= deadline {
                tracing::debug!("twin: no reader, {} bytes dropped", bytes.len());
                return;
            }
        }
        let _ = master.flush();
    }
}

impl TwinHandle {
    /// The serial port to open: the pseudo-terminal's slave side, such as `/dev/pts/3`, or the
    /// RFC 2217 URL, such as `rfc2217://127.0.0.1:4000`.
    pub fn port(&self) -> &str {
        &self.port
    }

    /// [`TwinHandle::port`] as a path (a pseudo-terminal's; an RFC 2217 URL is no path).
    pub fn port_path(&self) -> PathBuf {
        PathBuf::from(&self.port)
    }

    /// A copy of the whole flash as it is now.
    pub fn flash(&self) -> Vec<u8> {
        lock(&self.flash).as_bytes().to_vec()
    }

    /// Pulses EN (a power-on reset): into the serial loader if `download`, else booting from
    /// flash. Returns once the chip has reset and what it prints first (the ROM's download
    /// banner, or the whole boot log) is on the line.
    pub fn reset(&self, download: bool) {
        self.request(Command::Reset { download });
    }

    /// Removes power: the twin goes silent (a transfer under way is lost) until [`reset`].
    /// Returns once the chip is off: everything written before is in the flash, nothing after.
    ///
    /// [`reset`]: TwinHandle::reset
    pub fn power_cut(&self) {
        self.request(Command::PowerCut);
    }

    /// Gives the firmware `network` (DNS and SNTP) from now on: a twin kept between cells sees
    /// each cell's server and date.
    pub(crate) fn set_network(&self, network: LabNetwork) {
        self.request(Command::Network(Box::new(network)));
    }

    /// States what is known about real builds the twin may boot (see [`KnownBuild`]).
    pub(crate) fn set_builds(&self, builds: Vec<KnownBuild>) {
        self.request(Command::Builds(builds));
    }

    /// Arms `cut` for the next update the firmware runs, in place of what was armed (`None`:
    /// nothing); a cut that fired before is forgotten.
    pub(crate) fn arm_power_cut(&self, cut: Option<PowerCut>) {
        self.request(Command::Arm(cut));
    }

    /// Waits until the armed power cut ([`TwinConfig::power_cut`], `TwinHandle::arm_power_cut`) has fired, at most
    /// `timeout`; whether it did. The twin is then off until [`reset`](TwinHandle::reset).
    pub fn wait_for_power_cut(&self, timeout: Duration) -> bool {
        self.power_lost.wait(timeout)
    }

    /// The serial port vanishes once the chip has sent `after` more bytes on it (0: at once),
    /// as a USB serial device its hub drops: its link ([`TwinConfig::link`]) is removed, the
    /// pseudo-terminal closed (a reader gets an error, its path goes) or the RFC 2217 listener
    /// and its client closed, and the port never comes back; the chip runs on unheard. Returns
    /// once armed (or gone, for 0).
    pub fn vanish(&self, after: u64) {
        self.request(Command::Vanish(after));
    }

    /// Waits at most `timeout` for the port to vanish (see [`TwinHandle::vanish`]); whether it
    /// has.
    pub fn wait_for_vanish(&self, timeout: Duration) -> bool {
        self.vanished.wait(timeout)
    }

    /// Sends a command and waits until the device thread has carried it out (or has ended).
    fn request(&self, command: Command) {
        let (done, finished) = mpsc::sync_channel(1);
        if self.commands.send((command, done)).is_ok() {
            let _ = finished.recv();
        }
    }
}

impl Latch {
    /// Waits at most `timeout` for it to happen; whether it has.
    fn wait(&self, timeout: Duration) -> bool {
        let fired = self.fired.lock().unwrap_or_else(PoisonError::into_inner);
        let (fired, _) =
            self.changed.wait_timeout_while(fired, timeout, |fired| !*fired).unwrap_or_else(PoisonError::into_inner);
        *fired
    }
}

impl Drop for TwinHandle {
    fn drop(&mut self) {
        let (done, _) = mpsc::sync_channel(1);
        let _ = self.commands.send((Command::Stop, done));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some(link) = &self.link {
            // A link that still names the port, when the twin stops without its port vanishing.
            if std::fs::read_link(link).is_ok_and(|to| to == self.port_path()) {
                let _ = std::fs::remove_file(link);
            }
        }
    }
}

fn lock(flash: &Mutex<VirtualFlash>) -> MutexGuard<'_, VirtualFlash> {
    flash.lock().unwrap_or_else(PoisonError::into_inner)
}
