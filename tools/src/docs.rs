//! `coap completions SHELL` and `coap man`: shell completions (clap_complete) and man
//! pages (clap_mangen), both from the argument definitions of [`crate::cli`].

use std::path::Path;

use clap::CommandFactory;
use coap_tools::exit::{Exit, Fail};
use coap_tools::input::io_reason;

use crate::cli::Cli;
use crate::show::write_stdout;

/// The completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<Exit, Fail> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "coap", &mut out);
    write_stdout(&out)?;
    Ok(Exit::Success)
}

/// `coap.1` on stdout, or with `dir` one page per command there (`coap.1`, `coap-get.1`,
/// ...).
pub fn man(dir: Option<&Path>) -> Result<Exit, Fail> {
    let cmd = Cli::command();
    match dir {
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .map_err(|e| Fail::failure(format_args!("cannot render the man page: {e}")))?;
            write_stdout(&out)?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| {
                Fail::failure(format_args!(
                    "cannot create {}: {}",
                    dir.display(),
                    io_reason(&e)
                ))
            })?;
            clap_mangen::generate_to(cmd, dir).map_err(|e| {
                Fail::failure(format_args!(
                    "cannot write the man pages to {}: {}",
                    dir.display(),
                    io_reason(&e)
                ))
            })?;
        }
    }
    Ok(Exit::Success)
}
