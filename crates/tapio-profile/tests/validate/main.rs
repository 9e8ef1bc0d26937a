//! Validation and compilation of EvidenceProfile documents.
//!
//! The shared helpers live here; the tests are grouped by concern: what a
//! valid profile compiles to, range limits, the closed schema, cross-field
//! consistency, YAML features profiles refuse, and input-size limits.

mod compile;
mod consistency;
mod limits;
mod ranges;
mod schema;
mod yaml;

use tapio_profile::{compile, validate};
use tapio_wire::CompiledConfig;

const HEAD: &str = "apiVersion: tapio.dev/v1\nkind: EvidenceProfile\nmetadata:\n  name: test\nspec:\n  base: production-default\n";

/// (path, line, column, message) of every problem.
fn problems(src: &str) -> Vec<(String, usize, usize, String)> {
    match validate(src) {
        Ok(_) => Vec::new(),
        Err(e) => e
            .problems()
            .iter()
            .map(|p| {
                (
                    p.path.clone(),
                    p.location.line,
                    p.location.column,
                    p.kind.to_string(),
                )
            })
            .collect(),
    }
}

fn with_spec(body: &str) -> String {
    format!("{HEAD}{body}")
}

fn compiled(src: &str) -> CompiledConfig {
    match validate(src) {
        Ok(v) => compile(&v),
        Err(e) => panic!("expected a valid profile, got {e}\n{src}"),
    }
}
