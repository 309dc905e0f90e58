use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = convene::cli::Cli::parse();
    match cli.command {
        convene::cli::Command::Serve(args) => serve(args),
        cmd => convene::cli::run_admin(cli.global, cmd),
    }
}

fn serve(args: convene::config::ServeArgs) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CONVENE_LOG")
                .unwrap_or_else(|_| "convene=info,warn,rtc=error,rtc_ice=error,rtc_dtls=error,rtc_srtp=error,rtc_interceptor=error,rtc_sctp=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = match convene::config::Config::from_args(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("convene: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("convene: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let listener = match convene::serve::bind(config.listen) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("convene: cannot listen on {}: {e}", config.listen);
                return ExitCode::FAILURE;
            }
        };
        let addr = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let public = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        eprintln!("convene: serving on http://{addr}");
        if let Some(www) = &config.www_dir {
            // Name only the pages that exist, so the banner never points at a 404.
            for (file, what, path) in [
                ("index.html", "home page", "/"),
                ("join.html", "join page (invite links)", "/join"),
                ("admin.html", "admin page", "/admin"),
            ] {
                if www.join(file).is_file() {
                    eprintln!("convene: {what} at {public}{path}");
                }
            }
        }
        match convene::run(listener, config, shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("convene: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Resolves on the first SIGINT or SIGTERM; a second one exits at once.
async fn shutdown_signal() {
    wait_for_signal().await;
    eprintln!("convene: shutting down (send the signal again to force)");
    tokio::spawn(async {
        wait_for_signal().await;
        eprintln!("convene: forced exit");
        std::process::exit(130);
    });
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
