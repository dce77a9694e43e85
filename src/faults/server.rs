//! The server campaign.
