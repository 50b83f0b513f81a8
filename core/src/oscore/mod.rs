//! OSCORE (RFC 8613): object security for CoAP. (Filled in by the OSCORE work.)
