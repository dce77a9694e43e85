//! The lab network's own services, each on a UDP thread of its own: the DNS responder that
//! points the boards' OTA host names at the rig ([`dns`]), and the SNTP responder that tells
//! each board its cell's date, with the client side a twin uses to ask such a server ([`sntp`]).
//!
//! Both the lab (for its boards) and the twin (standing in for a board on the lab's network)
//! use them; neither owns them.

pub mod dns;
pub mod sntp;
mod udp;
