//! The vanishing serial port campaign.
