//! The config the agent starts with, and what each observer's apply result
//! does to the agent's state.

use tapio_common::status::ObserverState;
use tapio_common::Observer;
use tapio_wire::CompiledConfig;

use super::RunError;
use crate::config_source::{disabled_by, read_compiled, ApplyTracker, Tracked};
use crate::drain::{ApplyResult, ConfigUpdate};
use crate::settings::Settings;
use crate::state::AgentState;

/// The config the agent starts with: the local CompiledConfig file when one
/// is set, else the built-in production-default; `None` in controller mode
/// (a controller endpoint is set): the observers stay inert (all-zeros
/// carriers) until the controller's config arrives.
///
/// # Errors
/// The file cannot be read or is not a CompiledConfig.
pub fn initial_config(settings: &Settings) -> Result<Option<CompiledConfig>, RunError> {
    if settings.controller_endpoint.is_some() {
        if settings.compiled_config.is_some() {
            tracing::warn!("controller mode: `compiled_config` is ignored");
        }
        return Ok(None);
    }
    let Some(path) = &settings.compiled_config else {
        return Ok(Some(CompiledConfig::production_default()));
    };
    read_compiled(path)
        .map(Some)
        .map_err(|message| RunError::CompiledConfig {
            path: path.clone(),
            message,
        })
}

/// Records one observer's apply result in the agent state.
pub(super) fn record_apply(
    state: &AgentState,
    tracker: &mut ApplyTracker,
    current: Option<&ConfigUpdate>,
    o: Observer,
    r: &ApplyResult,
) {
    let took = matches!(r, ApplyResult::Applied { generation } if current.is_some_and(|c| c.generation == *generation));
    if let (true, Some(c)) = (took, current) {
        state.set_observer_config(o, true);
        if disabled_by(&c.config, o) {
            let why = format!("disabled by profile `{}`", c.config.profile);
            state.set_observer(o, ObserverState::Disabled, Some(why));
        } else {
            state.set_observer(o, ObserverState::Running, None);
        }
    } else if let ApplyResult::Failed { generation, reason } = r {
        state.set_observer_config(o, false);
        tracing::error!(observer = %o, generation, reason = %reason, "config not applied");
    }
    match tracker.result(o, r) {
        Tracked::Nothing => {}
        Tracked::Applied(a) => {
            tracing::info!(generation = a.generation, hash = %a.hash, "config applied");
            state.set_applied(a);
        }
        Tracked::NotApplied(a) => {
            tracing::error!(
                generation = a.generation,
                "config not applied: an observer's carrier refused it"
            );
            state.set_applied(a);
        }
    }
}
