//! Resource directory client (RFC 9176). (Filled in by the link-format work.)
