use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = convene::cli::Cli::parse();
    match cli.command {
        convene::cli::Command::Serve(args) => serve(*args),
        cmd => convene::cli::run_admin(cli.global, cmd),
    }
}

fn serve(args: convene::config::ServeArgs) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONVENE_LOG")
        .unwrap_or_else(|_| "convene=info,warn,rtc=error,rtc_ice=error,rtc_dtls=error,rtc_srtp=error,rtc_interceptor=error,rtc_sctp=error".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match std::env::var("CONVENE_LOG_FORMAT").as_deref() {
        // One JSON object per line, with the request's span (its id) in each.
        Ok("json") => {
            logs.json().with_current_span(true).init();
            convene::console::use_json(true);
        }
        Ok("text") | Err(_) => logs.init(),
        Ok(other) => {
            logs.init();
            tracing::warn!("CONVENE_LOG_FORMAT '{other}' is not text or json; using text");
        }
    }
    let config = match convene::config::Config::from_args(args) {
        Ok(c) => c,
        Err(e) => {
            convene::console::fail(&e.to_string());
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            convene::console::fail(&format!("cannot start the runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let listener = match convene::serve::bind(config.listen) {
            Ok(l) => l,
            Err(e) => {
                convene::console::fail(&format!("cannot listen on {}: {e}", config.listen));
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
        convene::console::say(&format!("serving on http://{addr}"));
        if let Some(www) = &config.www_dir {
            // Name only the pages that exist, so the banner never points at a 404.
            for (file, what, path) in [
                ("index.html", "home page", "/"),
                ("join.html", "join page (invite links)", "/join"),
                ("admin.html", "admin page", "/admin"),
            ] {
                if www.join(file).is_file() {
                    convene::console::say(&format!("{what} at {public}{path}"));
                }
            }
        }
        match convene::run(listener, config, shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                convene::console::fail(&e.to_string());
                ExitCode::FAILURE
            }
        }
    })
}

/// Resolves on the first SIGINT or SIGTERM; a second one exits at once.
async fn shutdown_signal() {
    wait_for_signal().await;
    convene::console::say("shutting down (send the signal again to force)");
    tokio::spawn(async {
        wait_for_signal().await;
        convene::console::say("forced exit");
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
