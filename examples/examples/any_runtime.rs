//! Code written once for every runtime: `coap_std::Client<R>` is the one client type,
//! generic over the runtime `R`, so the same `async fn` runs on tokio and on smol.
//!
//! `any_runtime URI`: GETs URI once from a tokio runtime and once from smol, with the
//! same function, and prints both answers.
//!
//! `cargo run -p coap-examples --example any_runtime -- coap://127.0.0.1/hello`
use coap_std::{Client, ClientError, Runtime};

/// Written once: the runtime is a type parameter.
async fn fetch<R: Runtime>(uri: &str) -> Result<String, ClientError> {
    let client = Client::<R>::new().await?;
    let r = client.get(uri).await?.error_for_status()?;
    Ok(format!("{}: {}", r.code, r.payload_str().unwrap_or("")))
}

fn main() -> std::process::ExitCode {
    let Some(uri) = std::env::args().nth(1) else {
        eprintln!("usage: any_runtime URI");
        return std::process::ExitCode::from(2);
    };
    let on_tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ClientError::Io)
        .and_then(|rt| rt.block_on(fetch::<coap_tokio::Tokio>(&uri)));
    let on_smol = smol::block_on(fetch::<coap_smol::Smol>(&uri));
    let mut status = std::process::ExitCode::SUCCESS;
    for (runtime, outcome) in [("tokio", on_tokio), ("smol", on_smol)] {
        match outcome {
            Ok(answer) => println!("{runtime}: {answer}"),
            Err(e) => {
                eprintln!("{runtime}: {e}");
                status = std::process::ExitCode::FAILURE;
            }
        }
    }
    status
}
