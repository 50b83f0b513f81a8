//! Logging: `defmt` with the `defmt` feature; without it the arguments are only
//! type-checked, so that both builds see the same code.

macro_rules! debug {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        defmt::debug!($($arg)*);
        #[cfg(not(feature = "defmt"))]
        let _ = || ($($arg)*,);
    }};
}

macro_rules! warn {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        defmt::warn!($($arg)*);
        #[cfg(not(feature = "defmt"))]
        let _ = || ($($arg)*,);
    }};
}
