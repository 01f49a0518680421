//! The suite as data: which programs exist ([`manifest`]), what each
//! scenario sends and expects ([`scenario`]), and which cells of scenario ×
//! server × client run ([`plan`]). Everything here is read and validated
//! before anything runs; nothing here touches the network.

pub(crate) mod conditions;
pub(crate) mod declaration;
pub mod manifest;
pub mod message;
pub(crate) mod pairing;
pub(crate) mod plan;
pub(crate) mod scenario;

pub use pairing::{PairingId, NO_SERVER};
pub use plan::{PlannedCell, Selection, Shard, Skip};
pub use scenario::{Outcome, Scenario};
