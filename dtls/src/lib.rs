//! CoAP over DTLS (RFC 7252 §9): a sans-IO session layer between a socket and the CoAP endpoint.
