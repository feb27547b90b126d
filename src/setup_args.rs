//! The first-run flags of `rollcall serve` (SPEC.md §4.23.6).

use clap::Args;

/// First-run settings.
#[derive(Args, Debug, Clone)]
pub struct SetupArgs {
    /// Fill an empty data directory with a demo school and print its logins
    /// (refused on a data directory with users or courses).
    #[arg(long)]
    pub demo: bool,
    /// Lifetime of the first-run setup link, seconds.
    #[arg(long, env = "SETUP_TTL_SECS", default_value_t = 3600)]
    pub setup_ttl_secs: u64,
}

impl Default for SetupArgs {
    fn default() -> Self {
        SetupArgs {
            demo: false,
            setup_ttl_secs: 3600,
        }
    }
}
