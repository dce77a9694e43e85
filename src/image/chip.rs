//! The chips the rig knows: one type for what an image was built for, what a board has and what a
//! manifest or the lab config names.

use std::fmt;

/// An Espressif chip: the one an image was built for (the extended header's `chip_id`), a board
/// of the lab has, or a manifest names. Manifests and the lab config spell it as esptool does
/// (`esp32`, `esp32c3`); people read Espressif's name (`ESP32-C3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Chip {
    /// ESP32 (`chip_id` 0), `esp32`.
    Esp32,
    /// ESP32-S2 (`chip_id` 2), `esp32s2`.
    Esp32S2,
    /// ESP32-C3 (`chip_id` 5), `esp32c3`.
    Esp32C3,
    /// ESP32-S3 (`chip_id` 9), `esp32s3`.
    Esp32S3,
    /// ESP32-C2 (`chip_id` 12), `esp32c2`.
    Esp32C2,
    /// ESP32-C6 (`chip_id` 13), `esp32c6`.
    Esp32C6,
    /// ESP32-H2 (`chip_id` 16), `esp32h2`.
    Esp32H2,
    /// ESP32-P4 (`chip_id` 18), `esp32p4`.
    Esp32P4,
    /// An id this rig does not know; the segments are then not classified.
    Unknown(u16),
}

impl Chip {
    /// The chip for an `esp_chip_id_t` value. ESP-IDF v3.2 images have reserved zero bytes
    /// there, which reads as ESP32, the only chip v3.2 builds for.
    pub(crate) fn from_id(id: u16) -> Chip {
        match id {
            0x0000 => Chip::Esp32,
            0x0002 => Chip::Esp32S2,
            0x0005 => Chip::Esp32C3,
            0x0009 => Chip::Esp32S3,
            0x000C => Chip::Esp32C2,
            0x000D => Chip::Esp32C6,
            0x0010 => Chip::Esp32H2,
            0x0012 => Chip::Esp32P4,
            other => Chip::Unknown(other),
        }
    }

    /// The `esp_chip_id_t` value.
    pub fn id(self) -> u16 {
        match self {
            Chip::Esp32 => 0x0000,
            Chip::Esp32S2 => 0x0002,
            Chip::Esp32C3 => 0x0005,
            Chip::Esp32S3 => 0x0009,
            Chip::Esp32C2 => 0x000C,
            Chip::Esp32C6 => 0x000D,
            Chip::Esp32H2 => 0x0010,
            Chip::Esp32P4 => 0x0012,
            Chip::Unknown(id) => id,
        }
    }

    /// The name Espressif prints (`ESP32-C3`), `None` for an unknown id.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Chip::Esp32 => "ESP32",
            Chip::Esp32S2 => "ESP32-S2",
            Chip::Esp32C3 => "ESP32-C3",
            Chip::Esp32S3 => "ESP32-S3",
            Chip::Esp32C2 => "ESP32-C2",
            Chip::Esp32C6 => "ESP32-C6",
            Chip::Esp32H2 => "ESP32-H2",
            Chip::Esp32P4 => "ESP32-P4",
            Chip::Unknown(_) => return None,
        })
    }

    /// The name manifests, the lab config, esptool and probe-rs use (`esp32c3`); `None` for an
    /// unknown id.
    pub(crate) fn config_name(self) -> Option<&'static str> {
        Some(match self {
            Chip::Esp32 => "esp32",
            Chip::Esp32S2 => "esp32s2",
            Chip::Esp32C3 => "esp32c3",
            Chip::Esp32S3 => "esp32s3",
            Chip::Esp32C2 => "esp32c2",
            Chip::Esp32C6 => "esp32c6",
            Chip::Esp32H2 => "esp32h2",
            Chip::Esp32P4 => "esp32p4",
            Chip::Unknown(_) => return None,
        })
    }

    /// The config name, or `chip 0x00NN` for an unknown id: for messages about lab configs and
    /// manifests, which spell chips that way.
    pub fn config_label(self) -> String {
        match self.config_name() {
            Some(name) => name.to_owned(),
            None => format!("chip {:#06x}", self.id()),
        }
    }

    /// Every chip with a name, in `esp_chip_id_t` order.
    pub(crate) const KNOWN: [Chip; 8] = [
        Chip::Esp32,
        Chip::Esp32S2,
        Chip::Esp32C3,
        Chip::Esp32S3,
        Chip::Esp32C2,
        Chip::Esp32C6,
        Chip::Esp32H2,
        Chip::Esp32P4,
    ];

    /// The chip a manifest or lab config names (`esp32`, `esp32c3`, any case).
    pub(crate) fn from_config_name(name: &str) -> Option<Chip> {
        Self::KNOWN.into_iter().find(|chip| chip.config_name().is_some_and(|n| n.eq_ignore_ascii_case(name)))
    }
}

impl fmt::Display for Chip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "unknown chip {:#06x}", self.id()),
        }
    }
}

impl serde::Serialize for Chip {
    /// As the lab config spells it (`esp32c3`); an unknown id as its number.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.config_name() {
            Some(name) => serializer.serialize_str(name),
            None => serializer.serialize_u16(self.id()),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Chip {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Chip::from_config_name(&name).ok_or_else(|| {
            let known: Vec<&str> = Chip::KNOWN.iter().filter_map(|c| c.config_name()).collect();
            serde::de::Error::custom(format!("unknown chip `{name}`, expected one of: {}", known.join(", ")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_round_trip_and_unknown_ids_have_none() {
        for chip in Chip::KNOWN {
            assert_eq!(Chip::from_config_name(chip.config_name().unwrap()), Some(chip));
            assert_eq!(Chip::from_id(chip.id()), chip);
        }
        assert_eq!(Chip::from_config_name("ESP32C3"), Some(Chip::Esp32C3));
        assert_eq!(Chip::from_config_name("esp8266"), None);
        assert_eq!(Chip::Unknown(0x77).config_name(), None);
        assert_eq!(Chip::Esp32C3.to_string(), "ESP32-C3");
    }
}
