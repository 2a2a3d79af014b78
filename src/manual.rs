//! `failoverd man` and `failoverd completions`: the manual pages and shell completions of the
//! CLI's clap command (the Debian package ships both; `packaging/deb/build.sh` makes them).

use std::path::Path;
use std::process::ExitCode;

/// The completion script of `command` for `shell`, on standard output.
pub fn completions(mut command: clap::Command, shell: clap_complete::Shell) -> ExitCode {
    let name = command.get_name().to_owned();
    clap_complete::generate(shell, &mut command, name, &mut std::io::stdout());
    ExitCode::SUCCESS
}

/// The manual page of `command` on standard output, or with `dir` one page per command
/// (`failoverd.1`, `failoverd-run.1`, ...) written into that directory.
pub fn man_pages(command: clap::Command, dir: Option<&Path>) -> ExitCode {
    let written = match dir {
        Some(dir) => clap_mangen::generate_to(command, dir),
        None => clap_mangen::Man::new(command).render(&mut std::io::stdout()),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let place =
                dir.map_or_else(|| "standard output".to_owned(), |d| d.display().to_string());
            eprintln!("error: cannot write the manual pages to {place}: {e}");
            ExitCode::FAILURE
        }
    }
}
