//! Small, strongly typed quantities for the sensor pipeline.
//!
//! Every physical quantity gets its own type. A `Celsius` is a newtype around
//! an `f64`, and so is a `Millis` around a `u64`. The wrapper costs nothing at
//! run time (it has exactly the layout of the value inside), but the compiler
//! now refuses to add a temperature to a duration, and a function that asks
//! for `Millis` cannot be handed a number of seconds by mistake. This is the
//! newtype pattern, and it is also the usual place to put validation: if the
//! only constructor checks its input, every value of the type is valid.
//!
//! Changelog: 0.4.1 renamed `Temp` to `Celsius`; 0.4.0 added `Millis`.

use std::borrow::Cow;
use std::fmt;
use std::ops::Add;

/// A temperature in degrees Celsius.
///
/// The field is private and the only way to build one is `Celsius::new`,
/// which rejects values below absolute zero and NaN. Code that receives a
/// `Celsius` never has to check it again.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Celsius(f64);

/// Returned when a reading is not a physically possible temperature.
#[derive(Debug, Clone, PartialEq)]
pub struct BelowAbsoluteZero(pub f64);

impl Celsius {
    pub const ABSOLUTE_ZERO: f64 = -273.15;

    pub fn new(value: f64) -> Result<Self, BelowAbsoluteZero> {
        if value.is_nan() || value < Self::ABSOLUTE_ZERO {
            Err(BelowAbsoluteZero(value))
        } else {
            Ok(Celsius(value))
        }
    }

    /// Gives the raw number back, for the few places that really need it.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl fmt::Display for Celsius {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1} C", self.0)
    }
}

/// A duration in whole milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Millis(pub u64);

impl Add for Millis {
    type Output = Millis;

    fn add(self, other: Millis) -> Millis {
        Millis(self.0 + other.0)
    }
}

/// Adds unit constructors to the primitive number types, so that call sites
/// read `250_u64.ms()` or `21.5_f64.celsius()`.
///
/// We cannot give `u64` or `f64` new inherent methods, because those types are
/// defined in the standard library. Instead we declare a trait of our own,
/// implement it for the foreign types, and users opt in with
/// `use units::UnitExt;`. This is an extension trait; the `Ext` suffix on the
/// name is the usual convention, and it is how crates such as `itertools` add
/// methods to every iterator.
pub trait UnitExt {
    type Output;

    fn ms(self) -> Millis;
    fn celsius(self) -> Self::Output;
}

impl UnitExt for u64 {
    type Output = Result<Celsius, BelowAbsoluteZero>;

    fn ms(self) -> Millis {
        Millis(self)
    }

    fn celsius(self) -> Self::Output {
        Celsius::new(self as f64)
    }
}

impl UnitExt for f64 {
    type Output = Result<Celsius, BelowAbsoluteZero>;

    fn ms(self) -> Millis {
        Millis(self.round().max(0.0) as u64)
    }

    fn celsius(self) -> Self::Output {
        Celsius::new(self)
    }
}

fn is_clean(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-'
}

/// Turns a raw sensor label into the form shown on the dashboard.
///
/// Almost every label is already clean, so in the common case we hand the
/// borrowed input straight back and allocate nothing. Only a label that
/// really contains spaces or punctuation gets copied into a new `String`.
/// The caller receives a `Cow<str>` either way and can use it like a `&str`,
/// or call `into_owned()` if it has to keep it.
pub fn display_label(raw: &str) -> Cow<'_, str> {
    if raw.chars().all(is_clean) {
        Cow::Borrowed(raw)
    } else {
        let cleaned: String = raw
            .chars()
            .map(|c| if is_clean(c) { c } else { '-' })
            .collect();
        Cow::Owned(cleaned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_impossible_temperatures() {
        assert!(Celsius::new(-300.0).is_err());
        assert_eq!((-40.0_f64).celsius().unwrap().get(), -40.0);
    }

    #[test]
    fn durations_add_up() {
        assert_eq!(250_u64.ms() + 750_u64.ms(), Millis(1000));
    }

    #[test]
    fn clean_labels_are_not_copied() {
        assert!(matches!(display_label("boiler-2"), Cow::Borrowed(_)));
        assert_eq!(display_label("boiler 2 (old)"), "boiler-2--old-");
    }
}
