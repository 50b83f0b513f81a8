//! URIs
