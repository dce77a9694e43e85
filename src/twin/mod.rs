//! The ESP32 twin: a software ESP32 that a flasher and the rig talk to like a board.
//!
//! This part is its pure core: SLIP framing ([`slip`]), the NOR flash ([`flash`]) and the ROM
//! serial loader ([`rom`]). The serial line and boot emulation are wired on top of it.

pub mod boot;
pub mod flash;
pub mod rom;
pub mod slip;
