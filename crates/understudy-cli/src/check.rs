//! `understudy check FILE`: validate a configuration without starting anything.

use std::path::Path;

use understudy::config::{load_file, ConfigError, Loaded};
use understudy::route::RouteTable;

/// Loads and validates; returns a human summary, or the error naming file, line and key.
pub fn check(path: &Path) -> Result<(Loaded, String), ConfigError> {
    let loaded = load_file(path)?;
    let table = RouteTable::from_config(&loaded.config, Default::default());
    let mut s = format!("{}: ok\n", path.display());
    s.push_str(&format!("  providers: {}\n", loaded.config.providers.keys().cloned().collect::<Vec<_>>().join(", ")));
    for r in table.routes() {
        let steps: Vec<String> =
            r.steps.iter().map(|step| step.iter().map(|d| d.id.clone()).collect::<Vec<_>>().join(" | ")).collect();
        s.push_str(&format!("  route {}: {} (deadline {:?})\n", r.name, steps.join(" -> "), r.limits.deadline));
    }
    for w in &loaded.warnings {
        s.push_str(&format!("  warning: {w}\n"));
    }
    Ok((loaded, s))
}
