//! Discount rates, stored as whole percentages.
//!
//! Every price calculation in the service used to take a bare `u8` and check
//! `rate <= 100` itself, and two of them forgot. A `Percent` can only be made through
//! `Percent::new` (or the `TryFrom` impl, which calls it), so a value of this type is a
//! proof that the check already happened: functions that take a `Percent` do not check
//! again, and a `u8` that was never validated cannot be passed where a rate is expected.

use std::convert::TryFrom;
use std::fmt;

/// A whole percentage between 0 and 100 inclusive.
///
/// The field is private on purpose. If it were `pub`, any module could write
/// `Percent(250)` and the guarantee would be gone; keeping it private means the one
/// constructor below is the only door into the type. The wrapper is a single-field tuple
/// struct, so it has the same size and layout as the `u8` inside and costs nothing at run
/// time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Percent(u8);

/// Returned when a number above 100 is offered as a percentage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfRange(pub u8);

impl fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is not a percentage", self.0)
    }
}

impl std::error::Error for OutOfRange {}

impl Percent {
    /// Checks the range once and wraps the value; the only constructor.
    pub fn new(value: u8) -> Result<Self, OutOfRange> {
        if value <= 100 {
            Ok(Percent(value))
        } else {
            Err(OutOfRange(value))
        }
    }

    /// The rate as a plain number, for display and arithmetic.
    pub fn get(self) -> u8 {
        self.0
    }

    /// Applies the discount to a price given in cents, rounding down.
    pub fn discount(self, cents: u64) -> u64 {
        cents - cents * u64::from(self.0) / 100
    }
}

/// Fallible conversion from a plain number, through the standard `TryFrom` trait.
///
/// A conversion that can fail gets `TryFrom` rather than `From` (which promises never to
/// fail) and rather than an ad hoc `from_u8` method. Because the trait is the standard one,
/// the matching `TryInto` comes for free: callers can write `let rate: Percent =
/// raw.try_into()?;`, and generic code bounded on `T: TryFrom<u8>` accepts `Percent`
/// without knowing about it. The associated `Error` type tells the caller exactly what
/// went wrong.
impl TryFrom<u8> for Percent {
    type Error = OutOfRange;

    fn try_from(value: u8) -> Result<Self, Self::Error> {
        Percent::new(value)
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_above_hundred() {
        assert!(Percent::new(101).is_err());
        assert_eq!(Percent::try_from(25).map(Percent::get), Ok(25));
    }

    #[test]
    fn discounts() {
        let rates = vec![0u8, 50, 100];
        let prices: Vec<u64> = rates
            .into_iter()
            .map(|r| Percent::new(r).unwrap().discount(1000))
            .collect();
        assert_eq!(prices, vec![1000, 500, 0]);
    }
}
