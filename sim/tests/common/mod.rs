//! Running the built `pgmsim` binary from the CLI tests.

use std::process::Command;

/// Runs `pgmsim ARGS`: exit code, standard output, standard error.
pub fn pgmsim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pgmsim"))
        .args(args)
        .output()
        .expect("run pgmsim");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
