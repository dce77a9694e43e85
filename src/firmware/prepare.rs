//! The bytes to flash for a firmware: its real build with the manifest's transplants applied
//! (a production root swapped for its lab look-alike), or an image built for it.

use std::path::PathBuf;

use super::build::build;
use super::{FirmwareManifest, Fleet};
use crate::image::transplant::{Replacement, Target, TransplantError, transplant};
use crate::pki::{LabPki, PkiError};

/// What goes into flash.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The app image: the real build, transplants applied, or one built for the firmware.
    pub app: Vec<u8>,
    /// The bootloader to flash with it (built for the ESP-IDF version, or the manifest's real
    /// one); `None` when a real image comes without one.
    pub bootloader: Option<Vec<u8>>,
    /// A root was swapped for a lab authority: the image is lab-only.
    pub transplanted: bool,
}

/// A firmware that cannot be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The real image or bootloader the manifest names cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Building an image needs lab certificates that cannot be had.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// A transplant step that fails on the real image.
    #[error("{firmware}: transplant of `{replace}`: {source}")]
    Transplant {
        /// The firmware's id.
        firmware: String,
        /// The step's root to replace, as written.
        replace: String,
        /// Why it fails.
        source: Box<TransplantError>,
    },
}

/// The images of `firmware`, ready to flash.
pub fn prepare(firmware: &FirmwareManifest, fleet: &Fleet, pki: &LabPki) -> Result<Prepared, PrepareError> {
    let Some(image) = &firmware.image else {
        let built = build(firmware, fleet, pki)?;
        return Ok(Prepared { app: built.app, bootloader: Some(built.bootloader), transplanted: false });
    };
    let dir = firmware.path.parent().map(PathBuf::from).unwrap_or_default();
    let read = |path: &PathBuf| {
        let path = dir.join(path);
        crate::input::read_image(&path).map_err(|source| PrepareError::Read { path, source })
    };
    let mut app = read(image)?;
    for step in &firmware.transplant {
        let fail = |source| PrepareError::Transplant {
            firmware: firmware.id.clone(),
            replace: step.replace.clone(),
            source: Box::new(source),
        };
        let replacement = Replacement::lab(pki, &step.with).map_err(fail)?;
        app = transplant(&app, &Target::parse(&step.replace), &replacement).map_err(fail)?.bytes;
    }
    let bootloader = firmware.bootloader.as_ref().map(read).transpose()?;
    Ok(Prepared { app, bootloader, transplanted: !firmware.transplant.is_empty() })
}
