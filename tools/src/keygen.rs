//! `coap keygen`: a new EDHOC key (P-256) in a COSE_Key file only its owner can read,
//! and the matching CCS credential printed in EDN for a credentials file, as
//! `aiocoap-keygen generate` does (its key files and credentials are interchangeable).

use std::path::PathBuf;

use clap::Args;
use coap_tokio::glue::edhoc::EdhocKey;
use coap_tools::exit::{Exit, Fail};

/// Arguments of `coap keygen`.
#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// File to store the private key in (created with mode 0600; never overwritten).
    pub keyfile: PathBuf,
    /// Key identifier in hex (ID_CRED by reference; lakers needs one).
    #[arg(long, default_value = "01")]
    pub kid: String,
    /// Subject placed in the CCS.
    #[arg(long, default_value = "")]
    pub subject: String,
}

/// Writes the key and prints `{14: {...}}` on stdout.
pub fn run(args: KeygenArgs) -> Result<Exit, Fail> {
    let kid = coap_tokio::glue::credentials::hex(&args.kid)
        .map_err(|e| Fail::usage(format!("--kid: {e}")))?;
    if kid.is_empty() || kid.len() > 23 {
        return Err(Fail::usage("--kid: 1 to 23 bytes of hex"));
    }
    if args.subject.len() > 255 {
        return Err(Fail::usage("--subject: at most 255 bytes"));
    }
    let key = EdhocKey::generate().map_err(|e| Fail::failure(format!("random generator: {e}")))?;
    key.write_new(&args.keyfile).map_err(Fail::failure)?;
    println!("{}", key.ccs(Some(&kid), Some(&args.subject)).kccs_edn());
    Ok(Exit::Success)
}
