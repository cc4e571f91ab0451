//! compass: the back office of an AI readiness consultancy, as one library and a thin binary.

pub mod clock;
pub mod config;
pub mod db;
pub mod money;
pub mod order;
