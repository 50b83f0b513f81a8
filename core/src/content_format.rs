//! Content-Format registry (RFC 7252 §12.3 and the IANA "CoAP Content-Formats" registry),
//! so that tools can print and parse formats by name.

use core::fmt;

/// A Content-Format number as carried in Content-Format and Accept options.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ContentFormat(pub u16);

macro_rules! formats {
    ($( $(#[$doc:meta])* $name:ident = $num:literal, $mime:literal; )*) => {
        impl ContentFormat {
            $( $(#[$doc])* pub const $name: ContentFormat = ContentFormat($num); )*
        }
        /// Registered Content-Formats this crate knows: (number, media type with parameters).
        pub const REGISTRY: &[(ContentFormat, &str)] = &[ $( (ContentFormat($num), $mime), )* ];
    };
}

formats! {
    /// text/plain; charset=utf-8 (0).
    TEXT_PLAIN = 0, "text/plain;charset=utf-8";
    /// COSE_Encrypt0 (16).
    COSE_ENCRYPT0 = 16, "application/cose;cose-type=\"cose-encrypt0\"";
    /// COSE_Mac0 (17).
    COSE_MAC0 = 17, "application/cose;cose-type=\"cose-mac0\"";
    /// COSE_Sign1 (18).
    COSE_SIGN1 = 18, "application/cose;cose-type=\"cose-sign1\"";
    /// application/link-format (40), RFC 6690.
    LINK_FORMAT = 40, "application/link-format";
    /// application/xml (41).
    XML = 41, "application/xml";
    /// application/octet-stream (42).
    OCTET_STREAM = 42, "application/octet-stream";
    /// application/exi (47).
    EXI = 47, "application/exi";
    /// application/json (50).
    JSON = 50, "application/json";
    /// application/json-patch+json (51).
    JSON_PATCH = 51, "application/json-patch+json";
    /// application/merge-patch+json (52).
    MERGE_PATCH = 52, "application/merge-patch+json";
    /// application/cbor (60).
    CBOR = 60, "application/cbor";
    /// application/cwt (61).
    CWT = 61, "application/cwt";
    /// application/multipart-core (62).
    MULTIPART_CORE = 62, "application/multipart-core";
    /// application/cbor-seq (63).
    CBOR_SEQ = 63, "application/cbor-seq";
    /// COSE_Encrypt (96).
    COSE_ENCRYPT = 96, "application/cose;cose-type=\"cose-encrypt\"";
    /// COSE_Mac (97).
    COSE_MAC = 97, "application/cose;cose-type=\"cose-mac\"";
    /// COSE_Sign (98).
    COSE_SIGN = 98, "application/cose;cose-type=\"cose-sign\"";
    /// application/cose-key (101).
    COSE_KEY = 101, "application/cose-key";
    /// application/cose-key-set (102).
    COSE_KEY_SET = 102, "application/cose-key-set";
    /// application/senml+json (110).
    SENML_JSON = 110, "application/senml+json";
    /// application/sensml+json (111).
    SENSML_JSON = 111, "application/sensml+json";
    /// application/senml+cbor (112).
    SENML_CBOR = 112, "application/senml+cbor";
    /// application/sensml+cbor (113).
    SENSML_CBOR = 113, "application/sensml+cbor";
    /// application/senml-exi (114).
    SENML_EXI = 114, "application/senml-exi";
    /// application/sensml-exi (115).
    SENSML_EXI = 115, "application/sensml-exi";
    /// application/coap-group+json (256).
    COAP_GROUP_JSON = 256, "application/coap-group+json";
    /// application/missing-blocks+cbor-seq (272), RFC 9177.
    MISSING_BLOCKS = 272, "application/missing-blocks+cbor-seq";
    /// application/pkcs7-mime; smime-type=server-generated-key (280).
    PKCS7_SERVER_GENERATED_KEY = 280, "application/pkcs7-mime;smime-type=server-generated-key";
    /// application/pkcs7-mime; smime-type=certs-only (281).
    PKCS7_CERTS_ONLY = 281, "application/pkcs7-mime;smime-type=certs-only";
    /// application/pkcs8 (284).
    PKCS8 = 284, "application/pkcs8";
    /// application/csrattrs (285).
    CSRATTRS = 285, "application/csrattrs";
    /// application/pkcs10 (286).
    PKCS10 = 286, "application/pkcs10";
    /// application/pkix-cert (287).
    PKIX_CERT = 287, "application/pkix-cert";
    /// application/senml+xml (310).
    SENML_XML = 310, "application/senml+xml";
    /// application/sensml+xml (311).
    SENSML_XML = 311, "application/sensml+xml";
    /// application/senml-etch+json (320).
    SENML_ETCH_JSON = 320, "application/senml-etch+json";
    /// application/senml-etch+cbor (322).
    SENML_ETCH_CBOR = 322, "application/senml-etch+cbor";
    /// application/yang-data+cbor (340).
    YANG_DATA_CBOR = 340, "application/yang-data+cbor";
    /// application/td+json (432).
    TD_JSON = 432, "application/td+json";
    /// application/vnd.ocf+cbor (10000).
    OCF_CBOR = 10000, "application/vnd.ocf+cbor";
    /// application/vnd.oma.lwm2m+tlv (11542).
    LWM2M_TLV = 11542, "application/vnd.oma.lwm2m+tlv";
    /// application/vnd.oma.lwm2m+json (11543).
    LWM2M_JSON = 11543, "application/vnd.oma.lwm2m+json";
    /// application/vnd.oma.lwm2m+cbor (11544).
    LWM2M_CBOR = 11544, "application/vnd.oma.lwm2m+cbor";
    /// text/css (20000).
    TEXT_CSS = 20000, "text/css";
    /// image/svg+xml (30000).
    SVG = 30000, "image/svg+xml";
}

/// Short names accepted on input besides the full media types.
const ALIASES: &[(&str, ContentFormat)] = &[
    ("text", ContentFormat::TEXT_PLAIN),
    ("text/plain", ContentFormat::TEXT_PLAIN),
    ("link", ContentFormat::LINK_FORMAT),
    ("link-format", ContentFormat::LINK_FORMAT),
    ("xml", ContentFormat::XML),
    ("octet-stream", ContentFormat::OCTET_STREAM),
    ("binary", ContentFormat::OCTET_STREAM),
    ("exi", ContentFormat::EXI),
    ("json", ContentFormat::JSON),
    ("cbor", ContentFormat::CBOR),
    ("senml+json", ContentFormat::SENML_JSON),
    ("senml+cbor", ContentFormat::SENML_CBOR),
];

/// What kind of representation a format carries; decides how tools print it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Family {
    /// Human-readable text (text/*).
    Text,
    /// JSON and JSON-based formats.
    Json,
    /// CBOR and CBOR-based formats.
    Cbor,
    /// RFC 6690 link format.
    LinkFormat,
    /// XML and XML-based formats.
    Xml,
    /// Anything else: opaque bytes.
    Binary,
}

impl ContentFormat {
    /// The registered media type (with parameters), if known.
    pub fn media_type(self) -> Option<&'static str> {
        REGISTRY
            .binary_search_by_key(&self, |e| e.0)
            .ok()
            .and_then(|i| REGISTRY.get(i))
            .map(|e| e.1)
    }

    /// Parses a number, a registered media type (spaces after `;` ignored) or a short alias
    /// such as `json`, `cbor`, `text`, `link-format`.
    pub fn from_name(s: &str) -> Option<ContentFormat> {
        let s = s.trim();
        if let Ok(n) = s.parse::<u16>() {
            return Some(ContentFormat(n));
        }
        if let Some((_, f)) = ALIASES.iter().find(|(a, _)| a.eq_ignore_ascii_case(s)) {
            return Some(*f);
        }
        REGISTRY
            .iter()
            .find(|(_, m)| media_type_eq(m, s))
            .map(|(f, _)| *f)
    }

    /// The family this format belongs to.
    pub fn family(self) -> Family {
        let Some(m) = self.media_type() else {
            return Family::Binary;
        };
        let base = m.split(';').next().unwrap_or(m);
        if self == ContentFormat::LINK_FORMAT {
            Family::LinkFormat
        } else if base.starts_with("text/") {
            Family::Text
        } else if base.ends_with("json") {
            Family::Json
        } else if base.ends_with("cbor") || base.ends_with("cbor-seq") || self == Self::CWT {
            Family::Cbor
        } else if base.ends_with("xml") {
            Family::Xml
        } else {
            Family::Binary
        }
    }
}

/// Compares media types ignoring ASCII case and whitespace around `;`.
fn media_type_eq(registered: &str, given: &str) -> bool {
    let mut a = registered.bytes().filter(|b| !b.is_ascii_whitespace());
    let mut b = given.bytes().filter(|b| !b.is_ascii_whitespace());
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) if x.eq_ignore_ascii_case(&y) => {}
            _ => return false,
        }
    }
}

/// The media type, or the number for unregistered formats.
impl fmt::Display for ContentFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.media_type() {
            Some(m) => f.write_str(m),
            None => write!(f, "{}", self.0),
        }
    }
}

/// A registry number as a Content-Format, so that APIs taking `impl Into<ContentFormat>`
/// accept plain numbers too.
impl From<u16> for ContentFormat {
    fn from(n: u16) -> Self {
        ContentFormat(n)
    }
}

/// The registry number of a Content-Format.
impl From<ContentFormat> for u16 {
    fn from(f: ContentFormat) -> Self {
        f.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_sorted() {
        assert!(REGISTRY.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn names_round_trip() {
        for (f, m) in REGISTRY {
            assert_eq!(ContentFormat::from_name(m), Some(*f), "{m}");
            assert_eq!(f.media_type(), Some(*m));
        }
        assert_eq!(
            ContentFormat::from_name("text/plain; charset=utf-8"),
            Some(ContentFormat::TEXT_PLAIN)
        );
        assert_eq!(ContentFormat::from_name("json"), Some(ContentFormat::JSON));
        assert_eq!(
            ContentFormat::from_name("112"),
            Some(ContentFormat::SENML_CBOR)
        );
        assert_eq!(ContentFormat::from_name("65536"), None);
        assert_eq!(ContentFormat::from_name("image/gif"), None);
    }

    #[test]
    fn families() {
        assert_eq!(ContentFormat::JSON.family(), Family::Json);
        assert_eq!(ContentFormat::SENML_CBOR.family(), Family::Cbor);
        assert_eq!(ContentFormat::LINK_FORMAT.family(), Family::LinkFormat);
        assert_eq!(ContentFormat::TEXT_PLAIN.family(), Family::Text);
        assert_eq!(ContentFormat::OCTET_STREAM.family(), Family::Binary);
        assert_eq!(ContentFormat(9999).family(), Family::Binary);
    }
}
