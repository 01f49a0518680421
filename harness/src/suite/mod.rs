//! The suite as data: which programs exist ([`manifest`]), what each
//! scenario sends and expects ([`scenario`]), and which cells of scenario ×
//! server × client run ([`plan`]). Everything here is read and validated
//! before anything runs; nothing here touches the network.

pub mod declaration;
pub mod manifest;
pub mod pairing;
pub mod plan;
pub mod scenario;
