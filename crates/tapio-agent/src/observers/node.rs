//! Node observer: not built yet (see the README's "not done yet").

use tapio_wire::CompiledConfig;

use super::Classifier;

/// The classifier of this observer, when built.
#[must_use]
pub fn classifier() -> Option<Box<dyn Classifier>> {
    None
}

/// The `tapio_config` carrier for `cfg`, when this observer has one.
#[must_use]
pub fn carrier(_cfg: &CompiledConfig, _generation: u64) -> Option<Vec<u8>> {
    None
}

/// Attaches the programs a generic tracepoint loader cannot (perf events).
///
/// # Errors
/// Why the observer cannot run on this host.
pub fn attach(
    _obj: &mut crate::loader::LoadedObject,
    _settings: &crate::settings::Settings,
) -> Result<(), String> {
    Ok(())
}
