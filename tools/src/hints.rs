//! Our names for the flags of libcoap's coap-client and aiocoap-client, for the error a
//! habit from those tools runs into (`coap get -N URI`: "coap-client's -N is --non here").

/// What a flag of another client is called here.
struct Habit {
    /// The flag as the other tool spells it.
    flag: &'static str,
    /// The tool.
    tool: &'static str,
    /// Our equivalent, or why there is none.
    ours: &'static str,
}

const HABITS: &[Habit] = &[
    Habit {
        flag: "-N",
        tool: "coap-client",
        ours: "--non",
    },
    Habit {
        flag: "-s",
        tool: "coap-client",
        ours: "--observe --duration S (-s DURATION)",
    },
    Habit {
        flag: "-B",
        tool: "coap-client",
        ours: "-t/--timeout S (-B SECONDS)",
    },
    Habit {
        flag: "-A",
        tool: "coap-client",
        ours: "-a/--accept TYPE",
    },
    Habit {
        flag: "-k",
        tool: "coap-client",
        ours: "--psk KEY",
    },
    Habit {
        flag: "-u",
        tool: "coap-client",
        ours: "--psk-identity ID",
    },
    Habit {
        flag: "-P",
        tool: "coap-client",
        ours: "--proxy URI",
    },
    Habit {
        flag: "-H",
        tool: "coap-client",
        ours: "--hop-limit N",
    },
    Habit {
        flag: "-e",
        tool: "coap-client",
        ours: "-p TEXT (--payload)",
    },
    Habit {
        flag: "-f",
        tool: "coap-client",
        ours: "-p @FILE",
    },
    Habit {
        flag: "-E",
        tool: "coap-client",
        ours: "--credentials FILE (OSCORE contexts in aiocoap's format)",
    },
    Habit {
        flag: "-K",
        tool: "coap-client",
        ours: "`coap ping URI` (keep-alive pings)",
    },
    Habit {
        flag: "-l",
        tool: "coap-client",
        ours: "nothing: no simulated loss",
    },
    Habit {
        flag: "--payload-initial-szx",
        tool: "aiocoap-client",
        ours: "-b/--block-size SIZE (SIZE = 16 << SZX)",
    },
    Habit {
        flag: "--pretty-print",
        tool: "aiocoap-client",
        ours: "--pretty",
    },
    Habit {
        flag: "--interactive",
        tool: "aiocoap-client",
        ours: "`coap shell URI`",
    },
];

/// The hint for the first flag of `args` (the command line without the program name) that
/// is another client's habit, if any.
pub fn for_args(args: &[String]) -> Option<String> {
    for (i, arg) in args.iter().enumerate() {
        if let Some(m) = method_flag(arg, args.get(i + 1)) {
            return Some(m);
        }
        let flag = arg.split('=').next().unwrap_or(arg);
        // `-N` or `-s10` (a short flag with its value attached).
        let found = HABITS.iter().find(|h| {
            flag == h.flag
                || (h.flag.len() == 2
                    && arg.starts_with(h.flag)
                    && arg.len() > 2
                    && !arg.starts_with("--"))
        });
        if let Some(h) = found {
            return Some(format!("{}'s {} is {} here", h.tool, h.flag, h.ours));
        }
    }
    None
}

/// `-m METHOD` (both other clients): a command here.
fn method_flag(arg: &str, next: Option<&String>) -> Option<String> {
    let value = match arg {
        "-m" | "--method" => next.map(String::as_str).unwrap_or(""),
        a if a.starts_with("-m") && !a.starts_with("--") => &a[2..],
        a if a.starts_with("--method=") => &a[9..],
        _ => return None,
    };
    let known = coap_core::Method::ALL
        .iter()
        .find(|m| m.name().eq_ignore_ascii_case(value));
    Some(match known {
        Some(m) => format!(
            "-m {value} is a command here: use `coap {} URI`",
            m.name().to_ascii_lowercase()
        ),
        None => "-m METHOD is a command here: `coap get|post|put|delete|fetch|patch|ipatch URI`, \
                 or `coap request -m METHOD URI`"
            .to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(args: &[&str]) -> Option<String> {
        for_args(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn habits_are_named() {
        assert_eq!(
            hint(&["get", "-m", "put", "coap://h/"]).unwrap(),
            "-m put is a command here: use `coap put URI`"
        );
        assert!(hint(&["-m", "frob"]).unwrap().contains("coap request -m"));
        assert!(hint(&["get", "-N", "coap://h/"]).unwrap().contains("--non"));
        assert!(hint(&["get", "-s10", "u"]).unwrap().contains("--duration"));
        assert!(hint(&["get", "-k", "x"]).unwrap().contains("--psk KEY"));
        assert!(hint(&["get", "--pretty-print"])
            .unwrap()
            .contains("--pretty"));
        assert_eq!(hint(&["get", "--non", "coap://h/"]), None);
    }
}
