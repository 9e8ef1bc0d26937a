//! `tapio-agent`: see `tapio-agent --help`. Exit codes: 0 clean stop,
//! 1 runtime failure, 2 bad flags or config (an unsafe data dir included),
//! 3 host cannot run the agent (preflight, or no observer could load: one
//! line per observer).

use std::process::ExitCode;

use tapio_agent::settings::Settings;
use tapio_agent::{app, args, preflight, sinks::error_chain};

fn main() -> ExitCode {
    let args = match args::parse(std::env::args_os().skip(1)) {
        Ok(args::Parsed::Run(a)) => *a,
        Ok(args::Parsed::Help) => {
            print!("{}", args::help());
            return ExitCode::SUCCESS;
        }
        Ok(args::Parsed::Version) => {
            print!("{}", args::version());
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("tapio-agent: {e}\n\nFor more information, try '--help'.");
            return ExitCode::from(2);
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
    let data_dir = match app::open_data_dir(&settings) {
        Ok(d) => d,
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
    preflight::limit_malloc_arenas();
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
    match rt.block_on(app::run(settings, initial, data_dir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(app::RunError::NoObserver { reasons }) => {
            eprintln!("tapio-agent: no observer could start on this host:");
            for r in &reasons {
                eprintln!("tapio-agent:   {}", app::one_line(r, app::MAX_REASON_CHARS));
            }
            ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("tapio-agent: {}", error_chain(&e));
            ExitCode::from(e.exit_code())
        }
    }
}
