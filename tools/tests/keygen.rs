//! `coap keygen`: writes a 0600 COSE_Key file and prints the matching CCS in EDN; never
//! overwrites; bad input is a one-line error with exit code 2.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_coap");

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("coap-keygen-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn keygen(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).arg("keygen").args(args).output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (
        out.status.code().unwrap_or(-1),
        text(out.stdout),
        text(out.stderr),
    )
}

#[test]
fn writes_a_private_key_file_and_prints_its_ccs() {
    let dir = scratch("ok");
    let key = dir.join("me.cosekey");
    let (code, stdout, stderr) = keygen(&[
        key.to_str().unwrap(),
        "--kid",
        "2b",
        "--subject",
        "sensor-1",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let bytes = std::fs::read(&key).unwrap();
    // {1: 2, -1: 1, -4: h'<32 bytes>'}
    assert_eq!(
        &bytes[..8],
        &[0xa3, 0x01, 0x02, 0x20, 0x01, 0x23, 0x58, 0x20]
    );
    assert_eq!(bytes.len(), 40);
    let line = stdout.trim();
    assert!(
        line.starts_with("{14: {2: \"sensor-1\", 8: {1: {1: 2, 2: h'2b', -1: 1, -2: h'"),
        "{line}"
    );
    // The printed public key is the one of the file's private key.
    let loaded = coap_tokio::glue::edhoc::EdhocKey::load(&key).unwrap();
    assert_eq!(loaded.ccs(Some(&[0x2b]), Some("sensor-1")).kccs_edn(), line);

    // A second run does not overwrite it.
    let (code, _, stderr) = keygen(&[key.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("exists already"), "{stderr}");
    assert_eq!(std::fs::read(&key).unwrap(), bytes);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_kid_is_a_usage_error() {
    let dir = scratch("bad");
    let key = dir.join("k");
    let (code, _, stderr) = keygen(&[key.to_str().unwrap(), "--kid", "zz"]);
    assert_eq!(code, 2);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!key.exists());
    let _ = std::fs::remove_dir_all(&dir);
}
