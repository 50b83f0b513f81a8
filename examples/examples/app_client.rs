//! A client of `app_server` on tokio, one step per subcommand; exits non-zero when the
//! server does not answer as expected.
//!
//! - `app_client slow coap://[::1]/slow`: a GET answered after 2 s (separate response).
//! - `app_client json coap://[::1]/items`: POST a JSON string, then GET the JSON list.
//! - `app_client cbor coap://[::1]/readings`: POST a CBOR map, read the CBOR answer.
//! - `app_client upload coap://[::1]/upload`: POST 64 KB of JSON (sent block-wise by the
//!   client, reassembled by the server's router).
//!
//! `cargo run -p coap-examples --example app_client -- json coap://[::1]/items`
use std::error::Error;
use std::process::ExitCode;
use std::time::Instant;

use coap_tokio::Client;

async fn slow(client: &Client, uri: &str) -> Result<(), Box<dyn Error>> {
    let start = Instant::now();
    let r = client.get(uri).await?.error_for_status()?;
    println!(
        "{}: {:?} after {:.1} s",
        r.code,
        r.payload_str().unwrap_or(""),
        start.elapsed().as_secs_f32()
    );
    Ok(())
}

async fn json(client: &Client, uri: &str) -> Result<(), Box<dyn Error>> {
    let r = client
        .post(uri)
        .json("tea")?
        .send()
        .await?
        .error_for_status()?;
    println!("{}: {} items", r.code, r.json::<usize>()?);
    let items: Vec<String> = client.get(uri).await?.error_for_status()?.json()?;
    println!("items: {items:?}");
    Ok(())
}

async fn cbor(client: &Client, uri: &str) -> Result<(), Box<dyn Error>> {
    let readings: std::collections::BTreeMap<&str, f64> =
        [("kitchen", 21.0), ("cellar", 12.5), ("attic", 26.0)].into();
    let r = client
        .post(uri)
        .cbor(&readings)?
        .send()
        .await?
        .error_for_status()?;
    println!("{}: mean {:.2} (CBOR)", r.code, r.cbor::<f64>()?);
    Ok(())
}

async fn upload(client: &Client, uri: &str) -> Result<(), Box<dyn Error>> {
    let readings: Vec<serde_json::Value> = (0..1200)
        .map(|i| serde_json::json!({ "n": i, "t": 20.0 + f64::from(i % 50) / 10.0, "unit": "Cel" }))
        .collect();
    let mut body = serde_json::to_vec(&readings)?;
    body.resize(64 * 1024, b' '); // exactly 64 KB; JSON allows trailing whitespace
    let r = client
        .post(uri)
        .content_format(coap_tokio::ContentFormat::JSON)
        .payload(body)
        .send()
        .await?
        .error_for_status()?;
    println!("{}: {}", r.code, r.payload_str().unwrap_or(""));
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [step, uri] = args.as_slice() else {
        eprintln!("usage: app_client slow|json|cbor|upload URI");
        return ExitCode::from(2);
    };
    let outcome = async {
        let client = Client::new().await?;
        match step.as_str() {
            "slow" => slow(&client, uri).await,
            "json" => json(&client, uri).await,
            "cbor" => cbor(&client, uri).await,
            "upload" => upload(&client, uri).await,
            other => Err(format!("unknown step {other:?}").into()),
        }
    };
    match outcome.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("app_client: {e}");
            ExitCode::FAILURE
        }
    }
}
