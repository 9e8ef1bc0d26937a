//! `tapio-agent`: see `tapio-agent --help`. Exit codes: 0 clean stop,
//! 1 runtime failure, 2 bad flags or config, 3 host cannot run the agent.

use std::process::ExitCode;

use clap::Parser;
use tapio_agent::settings::{Args, Settings};
use tapio_agent::{app, preflight, sinks::error_chain};

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let settings = match Settings::resolve(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tapio-agent: {}", error_chain(&e));
            return ExitCode::from(2);
        }
    };
    let _ = tapio_agent::log::StderrLog::install(settings.log);
    let initial = match app::initial_config(&settings) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tapio-agent: {}", error_chain(&e));
            return ExitCode::from(2);
        }
    };
    if let Err(e) = preflight::check_host() {
        eprintln!("tapio-agent: {e}");
        return ExitCode::from(3);
    }
    preflight::raise_memlock();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tapio-agent: tokio runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(app::run(settings, initial)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tapio-agent: {}", error_chain(&e));
            ExitCode::from(1)
        }
    }
}
