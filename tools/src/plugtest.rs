//! The ETSI CoAP plugtest server resources (filled in by the plugtest work).
