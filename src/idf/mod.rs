//! ESP-IDF releases: version strings as builds and manifests carry them, and what each release
//! has (the facts the twin, `predict` and the fleet's manifests depend on).

mod release;
mod version;

pub use release::{Generation, Unsupported, mbedtls_of};
pub(crate) use version::find_versions;
pub use version::{BuildVersion, IdfVersion, PreRelease, VersionError};
