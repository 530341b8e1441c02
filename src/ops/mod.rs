//! Operator commands that look at the machine or wrap a tool:
//! `nanokube check-config` (k3s's check-config: kernel, cgroups, binaries,
//! sysctls) and `nanokube kubectl` (kubectl with the admin kubeconfig).

mod checks;
mod kubectl;
mod machine;
mod report;

use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} required check(s) failed: see the MISSING lines above")]
    Required(usize),
    #[error(
        "kubectl not found on PATH: install kubectl (https://kubernetes.io/docs/tasks/tools/), then run nanokube kubectl again"
    )]
    KubectlMissing,
    #[error("running {}: {source}", path.display())]
    Exec {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Flags of `nanokube check-config`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckConfigArgs {
    /// Kernel config file to read (default: /proc/config.gz, /boot/config-<release>, …)
    #[arg(long, value_name = "PATH")]
    pub kernel_config: Option<PathBuf>,
}

/// `nanokube kubectl ARGS...`: every argument goes to kubectl unchanged.
#[derive(Debug, Clone, clap::Args)]
pub struct KubectlArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<OsString>,
}

/// Prints each check with OK, WARN or MISSING and what to do, then one
/// summary line; an error when a required one fails.
pub fn check_config(args: CheckConfigArgs) -> Result<(), Error> {
    let machine = machine::Machine::real(args.kernel_config);
    let lines = checks::run(&machine);
    let mut out = std::io::stdout().lock();
    let failed = report::print(&mut out, &lines);
    if failed > 0 {
        return Err(Error::Required(failed));
    }
    Ok(())
}

/// Runs kubectl with the admin kubeconfig (unless `KUBECONFIG` is set);
/// returns its exit code, or does not return at all (exec).
pub fn kubectl(args: KubectlArgs) -> Result<i32, Error> {
    kubectl::run(args.args)
}
