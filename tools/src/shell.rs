//! `coap shell URI`: requests typed one a line (rustyline: editing, history), relative to a
//! base URI, all on one client endpoint — one DTLS session, one OSCORE context — for the
//! whole session. Ctrl-C cancels the running request, not the shell.

use clap::Parser;
use coap_core::Method;
use coap_tools::exit::{one_line, Exit, Fail};
use coap_tools::input;
use rustyline::error::ReadlineError;

use crate::cli::{ShellArgs, ShellCommand, ShellLine, ShellRequest};
use crate::stderr_line;

pub fn run(args: ShellArgs) -> Result<Exit, Fail> {
    let rt = crate::runtime(false)?;
    let base = input::uri_with_zone(&args.base);
    let client = rt.block_on(open(&args, &base))?;
    let mut editor = rustyline::DefaultEditor::new()
        .map_err(|e| Fail::failure(format_args!("cannot start line editing: {e}")))?;
    stderr_line(&format!(
        "coap shell on {base}: get|post|put|delete|fetch|patch|ipatch|observe PATH [PAYLOAD] \
         [FLAGS], help, quit"
    ));
    loop {
        let line = match editor.readline("coap> ") {
            Ok(line) => line,
            // Ctrl-C at the prompt: a fresh line.
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(Fail::failure(format_args!("cannot read a line: {e}"))),
        };
        if line.trim().is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(line.as_str());
        match parse(&line, &base) {
            Ok(Parsed::Quit) => break,
            Ok(Parsed::Request(code, request)) => {
                let outcome = rt.block_on(async {
                    tokio::select! {
                        r = crate::request::run_with(code, *request, Some(&client)) => Some(r),
                        _ = tokio::signal::ctrl_c() => None,
                    }
                });
                match outcome {
                    None => stderr_line("cancelled"),
                    Some(Ok(_)) => {}
                    Some(Err(fail)) => stderr_line(&format!("error: {fail}")),
                }
            }
            Ok(Parsed::Help(text)) => stderr_line(text.trim_end()),
            Err(message) => stderr_line(&message),
        }
    }
    Ok(Exit::Success)
}

/// The session's endpoint: of the base URI's address family, with its security.
async fn open(args: &ShellArgs, base: &str) -> Result<coap_tokio::Client, Fail> {
    let target = crate::request::target_of(base, true).await?;
    let credentials = coap_tools::input::credentials(args.credentials.as_deref())?;
    let psk = match (&args.psk_identity, &args.psk) {
        (Some(identity), Some(key)) => Some(coap_tokio::Psk {
            identity: identity.as_bytes().to_vec(),
            key: crate::request::psk_value(key).map_err(Fail::usage)?,
        }),
        _ => None,
    };
    let psk = psk.map(|p| (p, coap_tokio::DtlsConfig::default()));
    crate::request::bind(
        target.local,
        coap_tokio::Config::default(),
        credentials.as_ref(),
        psk,
        args.credentials.as_deref(),
    )
    .await
}

#[derive(Debug)]
enum Parsed {
    Request(coap_core::Code, Box<crate::cli::RequestArgs>),
    Help(String),
    Quit,
}

/// A line as a request, its URI resolved against `base`.
fn parse(line: &str, base: &str) -> Result<Parsed, String> {
    let mut words = words(line)?;
    if words.first().is_some_and(|w| w == "observe") {
        words[0] = "get".into();
        words.push("--observe".into());
    }
    if words.first().is_some_and(|w| w == "help") {
        words[0] = "--help".into();
    }
    let parsed = match ShellLine::try_parse_from(&words) {
        Ok(p) => p,
        Err(e) => {
            let text = e.render().to_string();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp => Ok(Parsed::Help(text)),
                _ => Err(one_line(
                    text.split("\n\n").next().unwrap_or("error: bad line"),
                )),
            };
        }
    };
    let (code, request) = match parsed.command {
        ShellCommand::Quit => return Ok(Parsed::Quit),
        ShellCommand::Get(r) => (Method::Get.code(), r),
        ShellCommand::Post(r) => (Method::Post.code(), r),
        ShellCommand::Put(r) => (Method::Put.code(), r),
        ShellCommand::Delete(r) => (Method::Delete.code(), r),
        ShellCommand::Fetch(r) => (Method::Fetch.code(), r),
        ShellCommand::Patch(r) => (Method::Patch.code(), r),
        ShellCommand::IPatch(r) => (Method::IPatch.code(), r),
        ShellCommand::Request { method, line } => (method, line),
    };
    let ShellRequest { mut args, text } = request;
    args.uri = resolve(base, &args.uri);
    if args.payload.is_none() {
        args.payload = text;
    }
    Ok(Parsed::Request(code, Box::new(args)))
}

/// `path` against the base URI: a whole URI as it is, `/x` from the base's origin, `x`
/// below the base's path.
fn resolve(base: &str, path: &str) -> String {
    if path.contains("://") {
        return path.to_owned();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("coap", base));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let origin = format!("{scheme}://{}", &rest[..end]);
    if path.starts_with('/') {
        return format!("{origin}{path}");
    }
    let base_path = rest[end..].split(['?', '#']).next().unwrap_or("");
    let dir = match base_path.rfind('/') {
        Some(i) => &base_path[..=i],
        None => "/",
    };
    format!("{origin}{dir}{path}")
}

/// A line split into words as a POSIX shell would for plain words, '...' and "..." (with
/// backslash escapes outside single quotes).
fn words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("error: unterminated ' quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => word.push(c),
                            None => return Err("error: unterminated \" quote".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("error: unterminated \" quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    word.push(c);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        out.push(word);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_like_a_shell() {
        assert_eq!(
            words(r#"post /echo 'a b' "c \"d\"" e\ f"#).unwrap(),
            ["post", "/echo", "a b", "c \"d\"", "e f"]
        );
        assert_eq!(words("  ").unwrap(), Vec::<String>::new());
        assert_eq!(words("x ''").unwrap(), ["x", ""]);
        assert!(words("'open").is_err());
    }

    #[test]
    fn paths_resolve_against_the_base() {
        let b = "coap://h:1/api/v1";
        assert_eq!(resolve(b, "/hello"), "coap://h:1/hello");
        assert_eq!(resolve(b, "x?y=1"), "coap://h:1/api/x?y=1");
        assert_eq!(resolve("coap://h:1/api/", "x"), "coap://h:1/api/x");
        assert_eq!(resolve("coap://h", "x"), "coap://h/x");
        assert_eq!(resolve(b, "coaps://o/p"), "coaps://o/p");
    }

    #[test]
    fn lines_become_requests() {
        let Ok(Parsed::Request(code, args)) = parse("post /echo 'hi there' -c text", "coap://h/")
        else {
            panic!("a request");
        };
        assert_eq!(code, coap_core::Code::POST);
        assert_eq!(args.uri, "coap://h/echo");
        assert_eq!(args.payload.as_deref(), Some("hi there"));
        let Ok(Parsed::Request(_, args)) = parse("observe time --count 2", "coap://h/") else {
            panic!("a request");
        };
        assert!(args.observe && args.count == Some(2));
        assert!(matches!(parse("quit", "coap://h/"), Ok(Parsed::Quit)));
        assert!(parse("frob /x", "coap://h/").unwrap_err().contains("frob"));
    }
}
