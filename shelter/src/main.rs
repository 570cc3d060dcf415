//! Command-line entry point of `evac-shelter` (see shelter/README.md for every command).

mod cli;
mod run;

fn main() {
    match cli::main() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("evac-shelter: {e:#}");
            std::process::exit(1);
        }
    }
}
